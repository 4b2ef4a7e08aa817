// Evaluates a weights file (model.safetensors from `dptrain train`) on
// shards: the model is rebuilt from the file's metadata on a CPU graph and
// scored by the same code as training's evaluations (train/eval.h), so the
// figures are comparable with the ones training printed. Collective over d:
// every rank calls it; the confusion matrix is all-reduced.
//
// Used by `dptrain eval` and by `dptrain registry register/promote`, which
// re-score models on test shards instead of trusting stored figures.
#ifndef DP_TRAIN_EVAL_FILE_H
#define DP_TRAIN_EVAL_FILE_H
#include <stdint.h>

#include "dist/dist.h"
#include "train/metrics.h"
#include "train/weights.h"

typedef struct {
  weights_meta meta;           // of the weights file (free with eval_file_info_free)
  int64_t params, flops_per_image_fwd;
  double seconds;
} eval_file_info;

// Returns 0; or -1 on every rank, with err set (on rank 0 at least), when the
// weights or the shards are unusable (bad file, no shard matches, different
// class count). out is filled on every rank on success.
int eval_weights_file(const char *weights, const char *data_glob, int64_t batch, dist_ctx *d, class_metrics *out,
                      eval_file_info *info, char *err, int err_sz);
void eval_file_info_free(eval_file_info *info);
#endif
