// dptrain study --results A/results.json B/results.json ... --out REPORT.md
// dptrain study sweep --ranks 1,2 --out-dir DIR [report options] -- TRAIN OPTIONS
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/check.h"
#include "core/opts.h"
#include "study/report.h"
#include "study/sweep.h"

typedef struct {
  const char **results;
  int nresults;
  const char **tune_batch;
  int ntune_batch;
  char out[1024], json[1024], hardware_table[1024], scenarios[1024], published[1024], input_bench[1024];
  double deadline_hours, budget_usd, images, image_kb, quality_target, memory_margin, storage_gbps, assume_gpu_cv,
      assume_mfu;
  int max_devices;
  // sweep only
  char ranks[256], out_dir[1024], launcher[512];
  int remeasure, keep_binding, per_node;
} study_args;

#define SA study_args
#define REPORT_OPTS                                                                                                   \
  DP_OPT_L(SA, "results", results, nresults, 0, "results.json files (training runs; eval files for quality)"),       \
      DP_OPT_S(SA, "out", out, 0, "Markdown report (- = stdout, no plots); SVG plots go next to it"),                 \
      DP_OPT_S(SA, "json", json, 0, "machine-readable report (empty: none)"),                                        \
      DP_OPT_F(SA, "deadline-hours", DP_OPT_DOUBLE, deadline_hours, 0, 1e6, DP_OPT_LO_OPEN, "deadline for a full run"), \
      DP_OPT_F(SA, "budget-usd", DP_OPT_DOUBLE, budget_usd, 0, 1e12, DP_OPT_LO_OPEN, "budget for a full run"),        \
      DP_OPT_F(SA, "images", DP_OPT_DOUBLE, images, 1, 1e13, 0, "dataset size of a full run"),                        \
      DP_OPT_F(SA, "image-kb", DP_OPT_DOUBLE, image_kb, 0, 1e6, DP_OPT_LO_OPEN, "mean encoded image size (KB)"),     \
      DP_OPT_F(SA, "quality-target", DP_OPT_DOUBLE, quality_target, 0, 1, 0, "macro-F1 target"),                      \
      DP_OPT_I(SA, "max-devices", DP_OPT_INT, max_devices, 1, 65536, 0, "largest device count of the grid"),          \
      DP_OPT_F(SA, "memory-margin", DP_OPT_DOUBLE, memory_margin, 0, 1, DP_OPT_HI_OPEN,                              \
               "share of device memory kept free by the memory term"),                                                \
      DP_OPT_S(SA, "hardware-table", hardware_table, 0, "hardware table (default bench/hardware.tsv)"),               \
      DP_OPT_S(SA, "scenarios", scenarios, 0, "scenarios (default bench/scenarios.tsv)"),                            \
      DP_OPT_S(SA, "published", published, 0, "published figures (default bench/published.tsv)"),                    \
      DP_OPT_S(SA, "input-bench", input_bench, 0,                                                                     \
               "input-pipeline bench JSON (default bench/results/input_180kb.json; none = not modelled)"),            \
      DP_OPT_L(SA, "tune-batch", tune_batch, ntune_batch, 0, "batch-size finder results (kind tune-batch)"),          \
      DP_OPT_F(SA, "storage-gbps", DP_OPT_DOUBLE, storage_gbps, 0, 1e6, DP_OPT_LO_OPEN,                              \
               "shard read bandwidth per node for rows without storage_GBps"),                                        \
      DP_OPT_F(SA, "assume-gpu-cv", DP_OPT_DOUBLE, assume_gpu_cv, 0, 10, 0,                                           \
               "step-time CV on devices without a measurement"),                                                      \
      DP_OPT_F(SA, "assume-mfu", DP_OPT_DOUBLE, assume_mfu, 0, 1, DP_OPT_LO_OPEN,                                    \
               "MFU when no measured or published figure exists at all")

static const dp_opt report_list[] = {REPORT_OPTS};
static const dp_opt sweep_list[] = {
    REPORT_OPTS,
    DP_OPT_S(SA, "ranks", ranks, DP_OPT_REQUIRED, "rank counts, comma-separated (1,2,4)"),
    DP_OPT_S(SA, "out-dir", out_dir, DP_OPT_REQUIRED, "runs go to DIR/np<N>/, the report to DIR/study.md"),
    DP_OPT_S(SA, "launcher", launcher, 0,
             "launch command: {n} = ranks, {nodes} = ceil(n / per-node) (env DPTRAIN_LAUNCHER; "
             "in Slurm: srun --mpi=pmix -n {n} -N {nodes})"),
    DP_OPT_I(SA, "per-node", DP_OPT_INT, per_node, 0, 65536, 0, "ranks per node, for {nodes}"),
    DP_OPT_I(SA, "remeasure", DP_OPT_INT, remeasure, 0, 5, 0, "run a noisy run again up to this many times"),
    DP_OPT_I(SA, "keep-binding", DP_OPT_INT, keep_binding, 0, 1, 0,
             "keep the launcher's core binding (1 core per rank under mpirun -np <= 2)"),
};
#define USAGE_TAIL                                                                                              \
  "The compute-selection report (docs/study.md): per scenario (bench/scenarios.tsv) a decision table for\n"    \
  "CPU / 1 GPU / multi-GPU / multi-node / TPU under the deadline and budget with the binding term (compute,\n" \
  "stragglers, communication, input pipeline, storage, memory), production and fallback picks, sensitivity,\n"  \
  "calibration against the measured runs, SVG plots and the full grid.\n"                                        \
  "Exit status: 0 ok, 1 runtime failure, 2 bad input or configuration.\n"
static const dp_opts report_table = {"dptrain study", report_list, (int)(sizeof report_list / sizeof report_list[0]),
                                     "usage: dptrain study --results FILE [FILE ...] [--out REPORT.md] [options]\n"
                                     "       dptrain study sweep --ranks 1,2 --out-dir DIR [options] -- TRAIN OPTIONS\n" USAGE_TAIL,
                                     0};
static const dp_opts sweep_table = {"dptrain study sweep", sweep_list, (int)(sizeof sweep_list / sizeof sweep_list[0]),
                                    "usage: dptrain study sweep --ranks 1,2[,4...] --out-dir DIR [options] -- TRAIN OPTIONS\n"
                                    "Runs `dptrain train TRAIN OPTIONS --out DIR/np<N>` at each rank count (the 1-rank run is\n"
                                    "the others' --baseline), then writes the report over those runs (and any --results).\n" USAGE_TAIL,
                                    0};

static int parse_ranks(const char *s, int *r, int *n) {
  *n = 0;
  for (const char *p = s; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 65536 || *n >= 16 || (*end && *end != ',')) return -1;
    r[(*n)++] = (int)v;
    p = *end ? end + 1 : end;
  }
  return *n ? 0 : -1;
}

int cmd_study(int argc, char **argv) {
  int sweep = argc > 1 && !strcmp(argv[1], "sweep");
  // sweep: report options before "--", training options after it.
  int nopt = argc, ntrain = 0;
  char **train = NULL;
  if (sweep) {
    for (int i = 2; i < argc; i++)
      if (!strcmp(argv[i], "--")) {
        nopt = i, train = argv + i + 1, ntrain = argc - i - 1;
        break;
      }
  }
  study_args a;
  memset(&a, 0, sizeof a);
  snprintf(a.out, sizeof a.out, "study.md");
  a.deadline_hours = 8, a.budget_usd = 250, a.images = 1200000, a.image_kb = 180, a.quality_target = 0.84;
  a.max_devices = 64, a.memory_margin = 0.10, a.storage_gbps = 2, a.assume_gpu_cv = 0.02, a.assume_mfu = 0.30;
  const char *envl = getenv("DPTRAIN_LAUNCHER");
  snprintf(a.launcher, sizeof a.launcher, "%s", envl && *envl ? envl : "mpirun -np {n}");
  int rc = sweep ? dp_opts_parse(&sweep_table, &a, nopt - 1, argv + 1) : dp_opts_parse(&report_table, &a, argc, argv);
  char cmd[4096] = "dptrain study";
  for (int i = 1; i < argc; i++) {
    size_t l = strlen(cmd);
    snprintf(cmd + l, sizeof cmd - l, " %s", argv[i]);
  }
  sweep_opts sw;
  memset(&sw, 0, sizeof sw);
  char **paths = NULL;
  if (rc) {
    rc = rc > 0 ? 0 : 2;
    goto out;
  }
  if (!sweep && a.nresults == 0) {
    fprintf(stderr, "dptrain study: setting 'results': give at least one results.json\n");
    rc = 2;
    goto out;
  }
  if (sweep && (parse_ranks(a.ranks, sw.ranks, &sw.nranks) || !ntrain)) {
    fprintf(stderr, "dptrain study sweep: setting '%s': %s\n", ntrain ? "ranks" : "--",
            ntrain ? "give rank counts like 1,2,4" : "give the training options after '--'");
    rc = 2;
    goto out;
  }
  study_opts o;
  study_opts_defaults(&o);
  o.command = cmd;
  static char sweep_out[1100];
  if (sweep && !strcmp(a.out, "study.md")) {   // the report goes with the runs unless --out says otherwise
    snprintf(sweep_out, sizeof sweep_out, "%s/study.md", a.out_dir);
    o.out = sweep_out;
  } else {
    o.out = a.out;
  }
  o.json = a.json[0] ? a.json : NULL;
  o.hardware_table = a.hardware_table[0] ? a.hardware_table : NULL;
  o.scenarios = a.scenarios[0] ? a.scenarios : NULL;
  o.published = a.published[0] ? a.published : NULL;
  o.input_bench = !strcmp(a.input_bench, "none") ? "" : a.input_bench[0] ? a.input_bench : NULL;
  o.tune_batch = a.tune_batch;
  o.ntune_batch = a.ntune_batch;
  o.dc.deadline_h = a.deadline_hours;
  o.dc.budget_usd = a.budget_usd;
  o.dc.images = a.images;
  o.dc.image_bytes = a.image_kb * 1024;
  o.dc.max_devices = a.max_devices;
  o.dc.memory_margin = a.memory_margin;
  o.dc.default_storage_bps = a.storage_gbps * 1e9;
  o.dc.assume_gpu_cv = a.assume_gpu_cv;
  o.dc.assume_mfu = a.assume_mfu;
  o.quality_target = a.quality_target;
  const char **all = dp_calloc((size_t)(a.nresults + sw.nranks + 1), sizeof(char *), "study results");
  for (int i = 0; i < a.nresults; i++) all[i] = a.results[i];
  o.results = all;
  o.nresults = a.nresults;
  if (sweep) {
    sw.out_dir = a.out_dir;
    sw.launcher = a.launcher;
    // The launcher runs another program: it needs this binary's real path.
    static char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) {
      fprintf(stderr, "dptrain study sweep: cannot resolve /proc/self/exe: %s\n", dp_errno_str());
      rc = 1;
      free(all);
      goto out;
    }
    self[sl] = 0;
    sw.self = self;
    sw.train_args = train;
    sw.ntrain_args = ntrain;
    sw.remeasure = a.remeasure;
    sw.keep_binding = a.keep_binding;
    sw.per_node = a.per_node;
    int src = study_sweep(&sw, &paths);
    if (src) {
      rc = src == 2 ? 2 : 1;
      free(all);
      goto out;
    }
    for (int k = 0; k < sw.nranks; k++) all[o.nresults++] = paths[k];
  }
  rc = study_report(&o);
  free(all);
out:
  for (int k = 0; paths && k < sw.nranks; k++) free(paths[k]);
  free(paths);
  free((void *)a.results);
  free((void *)a.tune_batch);
  return rc;
}
