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

#include "backend/cpu/cpu.h"
#include "cli/commands.h"
#include "core/afile.h"
#include "core/log.h"
#include "core/timer.h"
#include "dist/dist.h"
#include "input/loader.h"
#include "input/shard.h"
#include "nn/ops.h"
#include "train/results.h"
#include "train/eval.h"
#include "train/weights.h"

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
  double t0 = dp_now();
  weights_meta wm;
  char err[512];
  char **paths = NULL;
  int npaths = 0;
  int ok = weights_read_meta(weights, &wm, err, sizeof err) == 0;
  if (!ok && d.rank == 0) fprintf(stderr, "dptrain eval: bad configuration: setting 'weights': %s\n", err);
  if (ok) {
    npaths = shard_glob(data, &paths);
    if (npaths <= 0) {
      ok = 0;
      if (d.rank == 0) fprintf(stderr, "dptrain eval: bad configuration: setting 'data': no shards match '%s'\n", data);
    }
  }
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, d.comm), "agreeing on the configuration");
  if (!ok) {
    dist_finalize(&d);
    return 2;
  }
  dist_bind(&d, threads, lthreads);
  loader_cfg lc;
  loader_cfg_defaults(&lc);
  lc.shards = paths;
  lc.nshards = npaths;
  lc.rank = d.rank;
  lc.world = d.world;
  lc.batch = batch;
  lc.drop_last = 0;
  lc.shuffle = 0;
  lc.train = 0;
  lc.fill_skipped = 0;   // a corrupt record is excluded from the metrics, not replaced
  lc.threads = d.loader_threads > 0 ? d.loader_threads : 1;
  lc.out_size = (int)wm.model.image_size;
  lc.out_channels = wm.model.channels;
  memcpy(lc.mean, wm.mean, sizeof lc.mean);
  memcpy(lc.std, wm.std, sizeof lc.std);
  lc.num_classes = wm.num_classes;
  dp_err lerr;
  dp_err_clear(&lerr);
  loader *l = loader_create(&lc, &lerr);
  if (!l) DP_FATAL("opening the evaluation shards", "check --data", "%s", lerr.msg);
  if (loader_num_classes(l) != wm.num_classes)
    DP_FATAL("checking the evaluation shards", "evaluate on shards with the training classes",
             "setting 'data': shards have %d classes, the weights %d", loader_num_classes(l), wm.num_classes);
  nn_graph *g = nn_graph_create(cpu_backend(), batch, 1);
  model_build(g, &wm.model);
  nn_xent_cfg xc = {0.0f, NULL, wm.num_classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_finalize(g);
  if (weights_load(weights, g, err, sizeof err)) DP_FATAL("loading weights", "was it written for this model?", "%s", err);
  nn_graph_set_training(g, 0);
  run_results r;
  run_results_init(&r);
  r.kind = "eval";
  // The weights' post-hoc logit adjustment (tuned on val by training), if any,
  // is applied and reported beside the raw argmax.
  eval_extra x = {wm.logit_bias, &r.q_adj, NULL};
  eval_run_ex(g, l, &d, wm.num_classes, &r.q, &x);
  r.evaluated = 1;
  if (wm.logit_bias) {
    r.adjusted = 1;
    r.logit_bias = dp_malloc((size_t)wm.num_classes * sizeof(float), "logit bias");
    memcpy(r.logit_bias, wm.logit_bias, (size_t)wm.num_classes * sizeof(float));
    snprintf(r.adjust_split, sizeof r.adjust_split, "eval");
  }
  if (d.rank == 0) {
    printf("raw argmax:\n");
    class_metrics_print(&r.q, (const char *const *)wm.class_names, stdout);
    if (r.adjusted) {
      printf("logit-adjusted (offsets from the weights' metadata, tuned on the training run's val split):\n");
      class_metrics_print(&r.q_adj, (const char *const *)wm.class_names, stdout);
    }
    r.world_size = d.world;
    r.nodes = d.node_count;
    r.cores_per_rank = d.cores;
    snprintf(r.model, sizeof r.model, "%s", wm.model.name);
    r.params = g->nparam_elems;
    r.flops_per_image_fwd = nn_flops_per_image(g);
    r.class_names = wm.class_names;
    r.total_wall_s = dp_now() - t0;
    char dirbuf[1024], path[1200];
    snprintf(dirbuf, sizeof dirbuf, "%s", weights);
    dp_err me;
    dp_err_clear(&me);
    if (out && dp_mkdir_p(out, &me)) DP_FATAL("creating the output directory", "check --out", "%s", me.msg);
    snprintf(path, sizeof path, "%s/eval_results.json", out ? out : dirname(dirbuf));
    if (run_results_write_json(&r, NULL, path) == 0) printf("wrote %s\n", path);
    fflush(stdout);
  }
  r.class_names = NULL;
  run_results_free(&r);
  nn_graph_destroy(g);
  loader_destroy(l);
  shard_paths_free(paths, npaths);
  weights_meta_free(&wm);
  dist_finalize(&d);
  return 0;
}
