// `dptrain study`: the compute-selection report. Inputs: results.json files
// (measured runs), the hardware table, the scenarios, published figures, the
// input-pipeline bench and batch-size finder results. Outputs: a Markdown
// report with SVG plots (decision table per scenario, production and
// fallback picks, sensitivity, calibration, measured runs, full grid in an
// appendix) and, with json set, the same content for machines.
// docs/study.md describes the model and every source.
#ifndef DP_STUDY_REPORT_H
#define DP_STUDY_REPORT_H
#include <stdint.h>
#include <stdio.h>

#include "study/decide.h"

typedef struct {
  const char **results;         // results.json paths
  int nresults;
  const char **tune_batch;      // batch-size finder results (kind "tune-batch")
  int ntune_batch;
  const char *out;              // Markdown path ("-" = stdout; no plots then)
  const char *json;             // machine-readable report (NULL: none)
  const char *hardware_table;   // NULL: default
  const char *scenarios;        // NULL: <source>/bench/scenarios.tsv
  const char *published;        // NULL: <source>/bench/published.tsv
  const char *input_bench;      // NULL: <source>/bench/results/input_180kb.json ("" = none)
  const char *command;          // the command line, for the report's header
  dc_opts dc;
  double quality_target;        // macro-F1 target (0.84)
  wl_describe_fn describe;      // NULL: train/model_plan.h (tests: synthetic figures)
} study_opts;

void study_opts_defaults(study_opts *o);
// Returns 0, 2 for bad input (message printed naming the file), 1 on an output error.
int study_report(const study_opts *o);
#endif
