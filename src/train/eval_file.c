#include "train/eval_file.h"

#include <stdio.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "input/shard.h"
#include "nn/ops.h"
#include "train/eval.h"

int eval_file_open(eval_file *ef, const char *weights, const char *data_glob, int64_t batch, const dist_ctx *d,
                   int weights_flags, char *err, int err_sz) {
  memset(ef, 0, sizeof *ef);
  char e[512];
  if (weights_read_meta(weights, &ef->meta, e, sizeof e) != 0) {
    snprintf(err, (size_t)err_sz, "setting 'weights': %s", e);
    return -1;
  }
  ef->have_meta = 1;
  ef->npaths = shard_glob(data_glob, &ef->paths);
  if (ef->npaths <= 0) {
    snprintf(err, (size_t)err_sz, "setting 'data': no shards match '%.900s'", data_glob);
    return -1;
  }
  const weights_meta *wm = &ef->meta;
  loader_cfg lc;
  loader_cfg_defaults(&lc);
  lc.shards = ef->paths;
  lc.nshards = ef->npaths;
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
  lc.eval_resize_ratio = wm->eval_resize_ratio;   // the transform the model was validated with
  lc.num_classes = 0;   // the shards' own count, compared with the weights' below
  lc.clamp_batch = 1;   // a batch larger than a rank's samples only costs memory
  dp_err lerr;
  dp_err_clear(&lerr);
  ef->l = loader_create(&lc, &lerr);
  if (!ef->l) {
    snprintf(err, (size_t)err_sz, "setting 'data': %s", lerr.msg);
    return -1;
  }
  if (shard_class_names_diff((const char *const *)wm->class_names, wm->num_classes, weights,
                             loader_class_names(ef->l), loader_num_classes(ef->l), "the evaluation shards", e,
                             sizeof e) &&
      (wm->class_names || loader_num_classes(ef->l) != wm->num_classes)) {
    snprintf(err, (size_t)err_sz, "setting 'data': the shards do not have the classes the weights were trained on: %s",
             e);
    return -1;
  }
  ef->batch = loader_batch_size(ef->l);
  ef->g = nn_graph_create(cpu_backend(), ef->batch, 1);
  model_build(ef->g, &wm->model);
  nn_xent_cfg xc = {0.0f, NULL, wm->num_classes};
  nn_softmax_xent(ef->g, "loss", ef->g->logits, &xc);
  nn_graph_finalize(ef->g);
  if (weights_load(weights, ef->g, weights_flags, e, sizeof e)) {
    snprintf(err, (size_t)err_sz, "setting 'weights': %s", e);
    return -1;
  }
  nn_graph_set_training(ef->g, 0);
  ef->params = nn_param_count(ef->g);
  ef->flops_per_image_fwd = nn_flops_per_image(ef->g);
  return 0;
}

double eval_file_run(eval_file *ef, dist_ctx *d, class_metrics *out) {
  return eval_run(ef->g, ef->l, d, ef->meta.num_classes, out);
}

void eval_file_close(eval_file *ef) {
  if (ef->g) nn_graph_destroy(ef->g);
  if (ef->l) loader_destroy(ef->l);
  if (ef->paths) shard_paths_free(ef->paths, ef->npaths);
  if (ef->have_meta) weights_meta_free(&ef->meta);
  memset(ef, 0, sizeof *ef);
}
