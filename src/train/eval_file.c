#include "train/eval_file.h"

#include <stdio.h>
#include <string.h>

#include "core/timer.h"
#include "backend/cpu/cpu.h"
#include "input/loader.h"
#include "input/shard.h"
#include "nn/ops.h"
#include "train/eval.h"

int eval_weights_file(const char *weights, const char *data_glob, int64_t batch, dist_ctx *d, class_metrics *out,
                      eval_file_info *info, char *err, int err_sz) {
  double t0 = dp_now();
  memset(info, 0, sizeof *info);
  err[0] = 0;
  char e[512];
  char **paths = NULL;
  int npaths = 0;
  int ok = weights_read_meta(weights, &info->meta, e, sizeof e) == 0;
  if (!ok) snprintf(err, (size_t)err_sz, "setting 'weights': %s", e);
  if (ok) {
    npaths = shard_glob(data_glob, &paths);
    if (npaths <= 0) ok = 0, snprintf(err, (size_t)err_sz, "setting 'data': no shards match '%s'", data_glob);
  }
  int mine = ok;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, d->comm), "agreeing on the evaluation inputs");
  if (!ok) {
    if (mine && !err[0]) snprintf(err, (size_t)err_sz, "another rank cannot read the weights or the shards");
    if (paths) shard_paths_free(paths, npaths);
    weights_meta_free(&info->meta);
    return -1;
  }
  const weights_meta *wm = &info->meta;
  loader_cfg lc;
  loader_cfg_defaults(&lc);
  lc.shards = paths;
  lc.nshards = npaths;
  lc.rank = d->rank;
  lc.world = d->world;
  lc.batch = batch;
  lc.drop_last = 0;
  lc.shuffle = 0;
  lc.train = 0;
  lc.threads = d->loader_threads > 0 ? d->loader_threads : 1;
  lc.out_size = (int)wm->model.image_size;
  lc.out_channels = wm->model.channels;
  memcpy(lc.mean, wm->mean, sizeof lc.mean);
  memcpy(lc.std, wm->std, sizeof lc.std);
  lc.num_classes = wm->num_classes;
  dp_err lerr;
  dp_err_clear(&lerr);
  loader *l = loader_create(&lc, &lerr);
  if (!l) DP_FATAL("opening the evaluation shards", "check --data", "%s", lerr.msg);
  if (loader_num_classes(l) != wm->num_classes)
    DP_FATAL("checking the evaluation shards", "evaluate on shards with the training classes",
             "setting 'data': shards have %d classes, the weights %d", loader_num_classes(l), wm->num_classes);
  nn_graph *g = nn_graph_create(cpu_backend(), batch, 1);
  model_build(g, &wm->model);
  nn_xent_cfg xc = {0.0f, NULL, wm->num_classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_finalize(g);
  if (weights_load(weights, g, e, sizeof e)) DP_FATAL("loading weights", "was it written for this model?", "%s", e);
  nn_graph_set_training(g, 0);
  eval_run(g, l, d, wm->num_classes, out);
  info->params = g->nparam_elems;
  info->flops_per_image_fwd = nn_flops_per_image(g);
  nn_graph_destroy(g);
  loader_destroy(l);
  shard_paths_free(paths, npaths);
  info->seconds = dp_now() - t0;
  return 0;
}

void eval_file_info_free(eval_file_info *info) {
  weights_meta_free(&info->meta);
  memset(info, 0, sizeof *info);
}
