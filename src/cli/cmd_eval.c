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

#include "cli/commands.h"
#include "core/log.h"
#include "core/timer.h"
#include "dist/dist.h"
#include "train/eval_file.h"
#include "train/results.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: dptrain eval --weights FILE --data GLOB [--batch B] [--out DIR] [--threads T]\n"
          "                    [--loader-threads T]\n"
          "Evaluates FILE (model.safetensors from `dptrain train`) on the shards in GLOB and\n"
          "writes DIR/eval_results.json (default DIR: the weights file's directory).\n");
}

int cmd_eval(int argc, char **argv) {
  const char *weights = NULL, *data = NULL, *out = NULL;
  int64_t batch = 64;
  int threads = 0, lthreads = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "dptrain eval: '%s' needs a value (or is unknown)\n", a);
      return 2;
    }
    const char *v = argv[++i];
    if (!strcmp(a, "--weights")) weights = v;
    else if (!strcmp(a, "--data")) data = v;
    else if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--batch")) batch = atoll(v);
    else if (!strcmp(a, "--threads")) threads = atoi(v);
    else if (!strcmp(a, "--loader-threads")) lthreads = atoi(v);
    else {
      fprintf(stderr, "dptrain eval: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!weights || !data) {
    fprintf(stderr, "dptrain eval: bad configuration: --weights and --data are required\n");
    return 2;
  }
  if (batch < 1) {
    fprintf(stderr, "dptrain eval: bad configuration: setting 'batch': must be >= 1\n");
    return 2;
  }
  dist_ctx d;
  dist_init(&d, &argc, &argv);
  dist_bind(&d, threads, lthreads);
  double t0 = dp_now();
  char err[600];
  eval_file_info info;
  run_results r;
  run_results_init(&r);
  r.kind = "eval";
  if (eval_weights_file(weights, data, batch, &d, &r.q, &info, err, sizeof err) != 0) {
    if (d.rank == 0) fprintf(stderr, "dptrain eval: bad configuration: %s\n", err);
    run_results_free(&r);
    dist_finalize(&d);
    return 2;
  }
  const weights_meta wm = info.meta;
  r.evaluated = 1;
  if (d.rank == 0) {
    class_metrics_print(&r.q, (const char *const *)wm.class_names, stdout);
    r.world_size = d.world;
    r.nodes = d.node_count;
    r.cores_per_rank = d.cores;
    snprintf(r.model, sizeof r.model, "%s", wm.model.name);
    r.params = info.params;
    r.flops_per_image_fwd = info.flops_per_image_fwd;
    r.class_names = wm.class_names;
    r.total_wall_s = dp_now() - t0;
    char dirbuf[1024], path[1200];
    snprintf(dirbuf, sizeof dirbuf, "%s", weights);
    snprintf(path, sizeof path, "%s/eval_results.json", out ? out : dirname(dirbuf));
    if (run_results_write_json(&r, NULL, path) == 0) printf("wrote %s\n", path);
    fflush(stdout);
  }
  r.class_names = NULL;
  run_results_free(&r);
  eval_file_info_free(&info);
  dist_finalize(&d);
  return 0;
}
