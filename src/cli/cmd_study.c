// dptrain study --results A/results.json B/results.json ... --out REPORT.md
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/check.h"
#include "core/opts.h"
#include "study/report.h"

typedef struct {
  const char **results;
  int nresults;
  char out[1024], hardware_table[1024];
  double deadline_hours, budget_usd, assume_mfu, assume_efficiency;
  int64_t images, epochs;
} study_args;

#define SA study_args
static const dp_opt study_opt_list[] = {
    DP_OPT_L(SA, "results", results, nresults, DP_OPT_REQUIRED, "results.json files (one or more)"),
    DP_OPT_S(SA, "out", out, 0, "Markdown report path (- = stdout)"),
    DP_OPT_F(SA, "deadline-hours", DP_OPT_DOUBLE, deadline_hours, 0, 1e6, DP_OPT_LO_OPEN, "deadline for a full run"),
    DP_OPT_F(SA, "budget-usd", DP_OPT_DOUBLE, budget_usd, 0, 1e12, DP_OPT_LO_OPEN, "budget for a full run"),
    DP_OPT_I(SA, "images", DP_OPT_I64, images, 1, (int64_t)1 << 40, 0, "dataset size of a full run"),
    DP_OPT_I(SA, "epochs", DP_OPT_I64, epochs, 0, 1000000, 0, "epochs of a full run (0: each run's --project-epochs)"),
    DP_OPT_F(SA, "assume-mfu", DP_OPT_DOUBLE, assume_mfu, 0, 1, DP_OPT_LO_OPEN, "MFU assumed for projections"),
    DP_OPT_F(SA, "assume-efficiency", DP_OPT_DOUBLE, assume_efficiency, 0, 1, DP_OPT_LO_OPEN,
             "multi-device scaling efficiency assumed for projections"),
    DP_OPT_S(SA, "hardware-table", hardware_table, 0, "hardware table (default bench/hardware.tsv)"),
};
static const dp_opts study_table = {
    "dptrain study", study_opt_list, (int)(sizeof study_opt_list / sizeof study_opt_list[0]),
    "usage: dptrain study --results FILE [FILE ...] [--out REPORT.md] [--deadline-hours 8]\n"
    "                     [--budget-usd 250] [--images 1200000] [--epochs E] [--assume-mfu 0.35]\n"
    "                     [--assume-efficiency 0.9] [--hardware-table FILE]\n"
    "Aggregates training results.json files into a Markdown table (ranks, img/s, scaling\n"
    "efficiency, full-run time and cost, macro-F1), projections to the hardware table's\n"
    "accelerators (labelled estimates) and a recommendation per model under the deadline\n"
    "and budget. --epochs defaults to each run's --project-epochs.\n"
    "Exit status: 0 ok, 1 runtime failure, 2 bad input or configuration.\n",
    0};

int cmd_study(int argc, char **argv) {
  study_args a;
  memset(&a, 0, sizeof a);
  snprintf(a.out, sizeof a.out, "study.md");
  a.deadline_hours = 8;
  a.budget_usd = 250;
  a.images = 1200000;
  a.assume_mfu = 0.35;
  a.assume_efficiency = 0.9;
  int rc = dp_opts_parse(&study_table, &a, argc, argv);
  if (rc) {
    free((void *)a.results);
    return rc > 0 ? 0 : 2;
  }
  study_opts o = {0};
  o.results = a.results;
  o.nresults = a.nresults;
  o.out = a.out;
  o.deadline_hours = a.deadline_hours;
  o.budget_usd = a.budget_usd;
  o.images = a.images;
  o.epochs = a.epochs;
  o.assume_mfu = a.assume_mfu;
  o.assume_efficiency = a.assume_efficiency;
  o.hardware_table = a.hardware_table[0] ? a.hardware_table : NULL;
  rc = study_report(&o);
  free((void *)a.results);
  return rc == -2 ? 2 : rc ? 1 : 0;
}
