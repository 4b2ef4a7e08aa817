// Evaluates a weights file (model.safetensors from `dptrain train`) on
// shards: the model is rebuilt from the file's metadata on a CPU graph and
// scored by the same code as training's evaluations (train/eval.h), so the
// figures are comparable with the ones training printed.
//
// Two steps, so the caller can make the ranks agree in between (cli/cli_util.h
// cli_agree): eval_file_open checks everything on this rank without any
// collective call (weights metadata, shards, the shards' class names against
// the weights', the weights against the model); eval_file_run is collective
// (every rank scores its share; the confusion matrix is all-reduced).
//
// Used by `dptrain eval` and by `dptrain registry register/promote`, which
// re-score models on test shards instead of trusting stored figures.
#ifndef DP_TRAIN_EVAL_FILE_H
#define DP_TRAIN_EVAL_FILE_H
#include <stdint.h>

#include "dist/dist.h"
#include "input/loader.h"
#include "nn/graph.h"
#include "train/metrics.h"
#include "train/weights.h"

typedef struct {
  weights_meta meta;           // of the weights file
  int have_meta;
  char **paths;
  int npaths;
  loader *l;
  nn_graph *g;
  int64_t batch;               // after clamping to this rank's samples
  int64_t params, flops_per_image_fwd;
} eval_file;

// Returns 0, or -1 with err set ("setting 'weights': ..." / "setting 'data':
// ..."); ef is then safe to close. weights_flags: WEIGHTS_ALLOW_NONFINITE or 0.
int eval_file_open(eval_file *ef, const char *weights, const char *data_glob, int64_t batch, const dist_ctx *d,
                   int weights_flags, char *err, int err_sz);
// Collective. Returns wall seconds. adjusted (or NULL): the metrics of
// argmax(logits + the weights' dptrain.logit_bias), filled when the weights
// have one (check ef->meta.logit_bias).
double eval_file_run(eval_file *ef, dist_ctx *d, class_metrics *out, class_metrics *adjusted);
void eval_file_close(eval_file *ef);
#endif
