// Model weights file: safetensors (core/safetensors.h: validated on read,
// written atomically). Tensors use torchvision names: every
// parameter (F32, torch layout), every BN running buffer (F32) and, per BN
// module, "<bn>.num_batches_tracked" (I64 scalar), so torch's
// model.load_state_dict(safetensors.torch.load_file(path)) accepts it.
// The "__metadata__" map holds the model configuration ("dptrain.model",
// "dptrain.image_size", ...), the class names and the input normalisation,
// so `dptrain eval --weights FILE` can rebuild the same model.
#ifndef DP_TRAIN_WEIGHTS_H
#define DP_TRAIN_WEIGHTS_H
#include <stdint.h>

#include "nn/graph.h"
#include "nn/models/models.h"

typedef struct {
  model_cfg model;
  float mean[3], std[3];
  int num_classes;
  char **class_names;    // (num_classes) or NULL
  int64_t steps;         // optimizer steps trained
  float *logit_bias;     // (num_classes) post-hoc logit adjustment ("dptrain.logit_bias"), or NULL
  char augment_policy[16];   // the training augmentation policy ("dptrain.augment_policy"), "" unknown
} weights_meta;

// Returns 0, or -1 with err filled.
// Non-const g: a CUDA graph's buffers are downloaded into its host views.
int weights_save(const char *path, nn_graph *g, const weights_meta *meta, char *err, int err_sz);
// Reads and checks the model metadata (strict integers and ranges; the class
// name count must match dptrain.classes).
int weights_read_meta(const char *path, weights_meta *meta, char *err, int err_sz);
// Loads every parameter and BN buffer of g by name. The file is validated by
// core/safetensors.h; then every tensor's dtype (F32) and shape must equal
// the model's, the file may hold no tensor the model lacks, and NaN/Inf
// values are refused unless flags has WEIGHTS_ALLOW_NONFINITE.
#define WEIGHTS_ALLOW_NONFINITE 1
int weights_load(const char *path, nn_graph *g, int flags, char *err, int err_sz);
void weights_meta_free(weights_meta *meta);
#endif
