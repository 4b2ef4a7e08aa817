// `dptrain study`: many results.json -> a Markdown report with the measured
// runs, projections to the hardware table's accelerators (labelled as
// estimates, with the model that produced them) and, per model family, a
// recommendation under a deadline and a budget for a full run.
#ifndef DP_STUDY_REPORT_H
#define DP_STUDY_REPORT_H
#include <stdint.h>
#include <stdio.h>

typedef struct {
  const char **results;      // results.json paths
  int nresults;
  const char *out;           // Markdown path ("-" = stdout)
  double deadline_hours;     // 8
  double budget_usd;         // 250
  int64_t images;            // dataset size (1.2M)
  int64_t epochs;            // 0: each run's project-epochs
  double assume_mfu;         // MFU assumed for projections (0.35)
  double assume_efficiency;  // multi-device scaling efficiency assumed for projections (0.9)
  const char *hardware_table;   // NULL: default
} study_opts;

// Returns 0; -2 (bad input: a results file unreadable or not a training
// record) or -1 (runtime: the report cannot be written) after printing why.
int study_report(const study_opts *o);
#endif
