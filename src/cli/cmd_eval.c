// dptrain eval --weights FILE --data GLOB: the evaluation code training uses,
// on a weights file written by `dptrain train` (model config in its metadata).
// Runs on one rank or distributed (mpirun -np N): the confusion matrix is
// all-reduced. Prints accuracy, macro-F1, per-class P/R/F1/support and the
// loss (plain cross-entropy: no class weights, no label smoothing), and
// writes OUT/eval_results.json (results schema, kind "eval").
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/opts.h"
#include "core/log.h"
#include "core/timer.h"
#include "dist/dist.h"
#include "train/eval_file.h"
#include "train/results.h"

typedef struct {
  char weights[1024], data[4096], out[1024];
  int64_t batch;
  int threads, loader_threads, allow_nonfinite;
} eval_opts;

static const dp_opt eval_opt_list[] = {
    DP_OPT_S(eval_opts, "weights", weights, DP_OPT_REQUIRED, "weights file (model.safetensors from `dptrain train`)"),
    DP_OPT_S(eval_opts, "data", data, DP_OPT_REQUIRED, "shards: glob or comma list"),
    DP_OPT_S(eval_opts, "out", out, 0,
             "existing directory for eval_results.json (empty: the weights file's directory)"),
    DP_OPT_I(eval_opts, "batch", DP_OPT_I64, batch, 1, 1 << 20, 0, "batch per rank (at most the samples per rank)"),
    DP_OPT_I(eval_opts, "threads", DP_OPT_INT, threads, 0, 4096, DP_OPT_CORES, "compute threads per rank (0 = from the binding)"),
    DP_OPT_I(eval_opts, "loader-threads", DP_OPT_INT, loader_threads, 0, 4096, DP_OPT_CORES,
             "decode threads per rank (0 = from the binding)"),
    DP_OPT_I(eval_opts, "allow-nonfinite-weights", DP_OPT_INT, allow_nonfinite, 0, 1, DP_OPT_BARE,
             "load weights that hold NaN/Inf (refused by default)"),
};
static const dp_opts eval_table = {
    "dptrain eval", eval_opt_list, (int)(sizeof eval_opt_list / sizeof eval_opt_list[0]),
    "usage: dptrain eval --weights FILE --data GLOB [--batch B] [--out DIR] [--threads T]\n"
    "                    [--loader-threads T]\n"
    "Evaluates FILE (model.safetensors from `dptrain train`) on the shards in GLOB and\n"
    "writes DIR/eval_results.json (default DIR: the weights file's directory).\n"
    "Exit status: 0 ok, 1 runtime failure, 2 bad input or configuration.\n",
    0};

static void eval_defaults(eval_opts *o) {
  memset(o, 0, sizeof *o);
  o->batch = 64;
}

static int parse_eval(void *ctx, int argc, char **argv) { return dp_opts_parse(&eval_table, ctx, argc, argv); }

#define EVAL_BAD(...) (snprintf(msg, sizeof msg, "dptrain eval: bad configuration: " __VA_ARGS__), ok = 0)

int cmd_eval(int argc, char **argv) {
  eval_opts o;
  eval_defaults(&o);
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      dp_opts_usage(&eval_table, &o, stdout);
      return 0;
    }
  dist_ctx d;
  dist_init(&d, &argc, &argv);
  if (cli_parse_all_ranks(&d, parse_eval, &o, argc, argv)) {
    dist_finalize(&d);
    return 2;
  }
  const char *weights = o.weights;
  double t0 = dp_now();
  char err[1100], msg[1200] = "", outdir[1024];
  int ok = 1;
  dist_bind(&d, o.threads, o.loader_threads);
  eval_file ef;
  if (eval_file_open(&ef, weights, o.data, o.batch, &d, o.allow_nonfinite ? WEIGHTS_ALLOW_NONFINITE : 0, err,
                     sizeof err))
    EVAL_BAD("%s", err);
  // The output directory must exist before any work (it is not created:
  // a typo should not silently make a new directory tree).
  if (o.out[0]) snprintf(outdir, sizeof outdir, "%s", o.out);
  else {
    char dirbuf[1024];
    snprintf(dirbuf, sizeof dirbuf, "%s", weights);
    snprintf(outdir, sizeof outdir, "%s", dirname(dirbuf));
  }
  struct stat sb;
  if (ok && d.rank == 0 && (stat(outdir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
    EVAL_BAD("setting 'out': '%s' is not an existing directory", outdir);
  if (cli_agree(&d, ok, msg)) {
    eval_file_close(&ef);
    dist_finalize(&d);
    return 2;
  }
  const weights_meta *wm = &ef.meta;
  run_results r;
  run_results_init(&r);
  r.kind = "eval";
  // The weights' post-hoc logit adjustment (tuned on val by training), if any,
  // is applied and reported beside the raw argmax.
  eval_file_run(&ef, &d, &r.q, &r.q_adj);
  r.evaluated = 1;
  if (wm->logit_bias) {
    r.adjusted = 1;
    r.logit_bias = dp_malloc((size_t)wm->num_classes * sizeof(float), "logit bias");
    memcpy(r.logit_bias, wm->logit_bias, (size_t)wm->num_classes * sizeof(float));
    snprintf(r.adjust_split, sizeof r.adjust_split, "eval");
  }
  int write_failed = 0;
  if (d.rank == 0) {
    printf("raw argmax:\n");
    class_metrics_print(&r.q, (const char *const *)wm->class_names, stdout);
    if (r.adjusted) {
      printf("logit-adjusted (offsets from the weights' metadata, tuned on the training run's val split):\n");
      class_metrics_print(&r.q_adj, (const char *const *)wm->class_names, stdout);
    }
    r.world_size = d.world;
    r.nodes = d.node_count;
    r.cores_per_rank = d.cores;
    snprintf(r.model, sizeof r.model, "%s", wm->model.name);
    r.params = ef.params;
    r.flops_per_image_fwd = ef.flops_per_image_fwd;
    r.class_names = wm->class_names;
    r.total_wall_s = dp_now() - t0;
    char path[1200];
    snprintf(path, sizeof path, "%s/eval_results.json", outdir);
    if (run_results_write_json(&r, NULL, path) == 0) printf("wrote %s\n", path);
    else write_failed = 1;   // run_results_write_json named the path and the reason
    fflush(stdout);
  }
  r.class_names = NULL;
  run_results_free(&r);
  eval_file_close(&ef);
  MPI_CHECK(MPI_Bcast(&write_failed, 1, MPI_INT, 0, d.comm), "sharing the outcome");
  dist_finalize(&d);
  return write_failed ? 1 : 0;
}
