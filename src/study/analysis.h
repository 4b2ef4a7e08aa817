// Everything the study computes before writing (study/report.c runs it,
// report_md.c and report_json.c render it): per scenario the decision grid,
// the sensitivity variants and the quality figure; the measured runs with
// their series; the calibration rows.
#ifndef DP_STUDY_ANALYSIS_H
#define DP_STUDY_ANALYSIS_H
#include "study/calib.h"
#include "study/decide.h"
#include "study/report.h"

#define SA_MAX_VARIANTS 16

typedef struct {
  char change[96];
  dc_variant v;
  dc_grid g;        // only production/fallback are read
} sa_variant;

typedef struct {
  const sr_run *run;   // NULL: none
  pv_kind kind;
  char src[600];
} sa_quality;

typedef struct {
  const sc_scenario *sc;
  const wl_model *wl;
  dc_grid g;
  sa_variant var[SA_MAX_VARIANTS];
  int nvar;
  sa_quality q;
  char svg[1100];      // cost-vs-time plot path ("" = none)
} sa_scenario;

// One measured series: same model, image size, batch and hardware row.
typedef struct {
  int idx[64];         // run indices sorted by ranks
  int n;
  int one;             // index of its 1-rank run, -1: none (no efficiency then)
} sa_series;

typedef struct {
  const study_opts *o;
  hw_table hw;
  study_sources src;
  sr_set runs;
  wl_cache wl;
  dc_ctx x;
  sa_scenario *s;
  int ns;
  sa_series *series;
  int nseries;
  cal_row *cal;
  int ncal;
  char scaling_svg[1100];
  char created[32];
  char input_note[400];   // why the input term is or is not modelled
} sa_study;

// Study efficiency of run k within its series: rate / (ranks x 1-rank rate
// of the same series), NAN without one.
double sa_series_efficiency(const sa_study *a, const sa_series *s, int k);
int sa_write_markdown(const sa_study *a, FILE *f);
int sa_write_json(const sa_study *a, FILE *f);
#endif
