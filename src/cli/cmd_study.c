// dptrain study --results A/results.json B/results.json ... --out REPORT.md
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/check.h"
#include "study/report.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: dptrain study --results FILE [FILE ...] [--out REPORT.md] [--deadline-hours 8]\n"
          "                     [--budget-usd 250] [--images 1200000] [--epochs E] [--assume-mfu 0.35]\n"
          "                     [--assume-efficiency 0.9] [--hardware-table FILE]\n"
          "Aggregates training results.json files into a Markdown table (ranks, img/s, scaling\n"
          "efficiency, full-run time and cost, macro-F1), projections to the hardware table's\n"
          "accelerators (labelled estimates) and a recommendation per model under the deadline\n"
          "and budget. --epochs defaults to each run's --project-epochs.\n");
}

int cmd_study(int argc, char **argv) {
  study_opts o = {0};
  o.out = "study.md";
  o.deadline_hours = 8;
  o.budget_usd = 250;
  o.images = 1200000;
  o.assume_mfu = 0.35;
  o.assume_efficiency = 0.9;
  o.results = dp_calloc((size_t)(argc > 1 ? argc : 1), sizeof(char *), "study args");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      free(o.results);
      return 0;
    }
    if (!strcmp(a, "--results")) {
      while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) o.results[o.nresults++] = argv[++i];
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "dptrain study: '%s' needs a value\n", a);
      free(o.results);
      return 2;
    }
    const char *v = argv[++i];
    if (!strcmp(a, "--out")) o.out = v;
    else if (!strcmp(a, "--deadline-hours")) o.deadline_hours = atof(v);
    else if (!strcmp(a, "--budget-usd")) o.budget_usd = atof(v);
    else if (!strcmp(a, "--images")) o.images = atoll(v);
    else if (!strcmp(a, "--epochs")) o.epochs = atoll(v);
    else if (!strcmp(a, "--assume-mfu")) o.assume_mfu = atof(v);
    else if (!strcmp(a, "--assume-efficiency")) o.assume_efficiency = atof(v);
    else if (!strcmp(a, "--hardware-table")) o.hardware_table = v;
    else {
      fprintf(stderr, "dptrain study: unknown option '%s'\n", a);
      usage(stderr);
      free(o.results);
      return 2;
    }
  }
  if (o.nresults == 0) {
    fprintf(stderr, "dptrain study: bad configuration: setting 'results': give at least one results.json\n");
    free(o.results);
    return 2;
  }
  if (!(o.deadline_hours > 0) || !(o.budget_usd > 0) || o.images < 1 || !(o.assume_mfu > 0)) {
    fprintf(stderr, "dptrain study: bad configuration: deadline, budget, images and assume-mfu must be > 0\n");
    free(o.results);
    return 2;
  }
  int rc = study_report(&o);
  free(o.results);
  return rc ? 1 : 0;
}
