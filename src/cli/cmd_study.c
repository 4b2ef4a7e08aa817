// dptrain study --results A/results.json B/results.json ... --out REPORT.md
// dptrain study sweep --ranks 1,2 --out-dir DIR [report options] -- TRAIN OPTIONS
// The parsing is deliberately plain (one flag, one value): it is expected to
// move to config.c's option table.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/check.h"
#include "study/report.h"
#include "study/sweep.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: dptrain study --results FILE [FILE ...] [--out REPORT.md] [--json REPORT.json]\n"
          "         [--deadline-hours 8] [--budget-usd 250] [--images 1200000] [--image-kb 180]\n"
          "         [--quality-target 0.84] [--max-devices 64] [--memory-margin 0.10]\n"
          "         [--hardware-table FILE] [--scenarios FILE] [--published FILE] [--input-bench FILE]\n"
          "         [--tune-batch FILE [FILE ...]] [--storage-gbps 2] [--assume-gpu-cv 0.02] [--assume-mfu 0.30]\n"
          "       dptrain study sweep --ranks 1,2[,4...] --out-dir DIR [--launcher \"mpirun -np {n}\"]\n"
          "         [--remeasure 1] [--keep-binding 1] [the report options above] -- TRAIN OPTIONS...\n"
          "The compute-selection report (docs/study.md): per scenario (bench/scenarios.tsv) a decision table\n"
          "for CPU / 1 GPU / multi-GPU / multi-node / TPU under the deadline and budget, the binding term\n"
          "(compute, stragglers, communication, input pipeline, storage, memory), production and fallback\n"
          "picks, sensitivity, calibration against the measured runs, SVG plots, and the full grid.\n"
          "sweep runs `dptrain train TRAIN OPTIONS --out DIR/np<N>` at each rank count, then the report.\n");
}

static int parse_ranks(const char *s, int *r, int *n) {
  *n = 0;
  for (const char *p = s; *p && *n < 16;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 4096) return -1;
    r[(*n)++] = (int)v;
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return *n ? 0 : -1;
}

static int num_arg(const char *opt, const char *v, double lo, double *out) {
  char *end;
  double x = strtod(v, &end);
  if (end == v || *end || !(x >= lo)) {
    fprintf(stderr, "dptrain study: bad configuration: setting '%s': '%s' is not a number >= %g\n", opt + 2, v, lo);
    return -1;
  }
  *out = x;
  return 0;
}

int cmd_study(int argc, char **argv) {
  study_opts o;
  study_opts_defaults(&o);
  sweep_opts sw;
  memset(&sw, 0, sizeof sw);
  sw.launcher = getenv("DPTRAIN_LAUNCHER") ? getenv("DPTRAIN_LAUNCHER") : "mpirun -np {n}";
  sw.self = "/proc/self/exe";
  int sweep = argc > 1 && !strcmp(argv[1], "sweep");
  o.results = dp_calloc((size_t)argc + 1, sizeof(char *), "study args");
  o.tune_batch = dp_calloc((size_t)argc + 1, sizeof(char *), "study args");
  char cmd[2048] = "dptrain study";
  for (int i = 1; i < argc; i++) {
    size_t l = strlen(cmd);
    snprintf(cmd + l, sizeof cmd - l, " %s", argv[i]);
  }
  o.command = cmd;
  int rc = 2;
  for (int i = sweep ? 2 : 1; i < argc; i++) {
    const char *a = argv[i];
    double x = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      rc = 0;
      goto out;
    }
    if (sweep && !strcmp(a, "--")) {
      sw.train_args = argv + i + 1;
      sw.ntrain_args = argc - i - 1;
      break;
    }
    if (!strcmp(a, "--results") || !strcmp(a, "--tune-batch")) {
      int tb = !strcmp(a, "--tune-batch");
      while (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
        (tb ? o.tune_batch : o.results)[tb ? o.ntune_batch++ : o.nresults++] = argv[++i];
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "dptrain study: '%s' needs a value\n", a);
      goto out;
    }
    const char *v = argv[++i];
    int bad = 0;
    if (!strcmp(a, "--out")) o.out = v;
    else if (!strcmp(a, "--json")) o.json = v;
    else if (!strcmp(a, "--hardware-table")) o.hardware_table = v;
    else if (!strcmp(a, "--scenarios")) o.scenarios = v;
    else if (!strcmp(a, "--published")) o.published = v;
    else if (!strcmp(a, "--input-bench")) o.input_bench = v;
    else if (!strcmp(a, "--deadline-hours")) bad = num_arg(a, v, 1e-6, &o.dc.deadline_h);
    else if (!strcmp(a, "--budget-usd")) bad = num_arg(a, v, 1e-6, &o.dc.budget_usd);
    else if (!strcmp(a, "--images")) bad = num_arg(a, v, 1, &o.dc.images);
    else if (!strcmp(a, "--image-kb")) bad = num_arg(a, v, 0, &x), o.dc.image_bytes = x * 1024;
    else if (!strcmp(a, "--quality-target")) bad = num_arg(a, v, 0, &o.quality_target);
    else if (!strcmp(a, "--memory-margin")) bad = num_arg(a, v, 0, &o.dc.memory_margin) || o.dc.memory_margin >= 1;
    else if (!strcmp(a, "--storage-gbps")) bad = num_arg(a, v, 1e-6, &x), o.dc.default_storage_bps = x * 1e9;
    else if (!strcmp(a, "--assume-gpu-cv")) bad = num_arg(a, v, 0, &o.dc.assume_gpu_cv);
    else if (!strcmp(a, "--assume-mfu")) bad = num_arg(a, v, 1e-6, &o.dc.assume_mfu) || o.dc.assume_mfu > 1;
    else if (!strcmp(a, "--max-devices")) bad = num_arg(a, v, 1, &x), o.dc.max_devices = (int)x;
    else if (sweep && !strcmp(a, "--ranks")) bad = parse_ranks(v, sw.ranks, &sw.nranks);
    else if (sweep && !strcmp(a, "--out-dir")) sw.out_dir = v;
    else if (sweep && !strcmp(a, "--launcher")) sw.launcher = v;
    else if (sweep && !strcmp(a, "--remeasure")) bad = num_arg(a, v, 0, &x), sw.remeasure = (int)x;
    else if (sweep && !strcmp(a, "--keep-binding")) bad = num_arg(a, v, 0, &x), sw.keep_binding = x != 0;
    else {
      fprintf(stderr, "dptrain study: unknown option '%s'\n", a);
      usage(stderr);
      goto out;
    }
    if (bad) {
      fprintf(stderr, "dptrain study: bad configuration: setting '%s': '%s' is out of range\n", a + 2, v);
      goto out;
    }
  }
  if (sweep) {
    static char default_out[1100];
    if (sw.out_dir && !strcmp(o.out, "study.md")) {   // the report goes with the runs unless --out says otherwise
      snprintf(default_out, sizeof default_out, "%s/study.md", sw.out_dir);
      o.out = default_out;
    }
    if (!sw.nranks || !sw.out_dir || !sw.ntrain_args) {
      fprintf(stderr, "dptrain study sweep: bad configuration: --ranks, --out-dir and '-- TRAIN OPTIONS' are required\n");
      goto out;
    }
    char **paths = NULL;
    int src = study_sweep(&sw, &paths);
    for (int k = 0; !src && k < sw.nranks; k++) o.results[o.nresults++] = paths[k];
    if (!src) rc = study_report(&o);
    else rc = src == 2 ? 2 : 1;
    for (int k = 0; paths && k < sw.nranks; k++) free(paths[k]);
    free(paths);
    goto out;
  }
  rc = study_report(&o);
out:
  free(o.results);
  free(o.tune_batch);
  return rc;
}
