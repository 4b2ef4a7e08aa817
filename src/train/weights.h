// Model weights file: safetensors (8-byte little-endian header length, JSON
// header, raw little-endian data). Tensors use torchvision names: every
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
int weights_read_meta(const char *path, weights_meta *meta, char *err, int err_sz);
// Loads every parameter and BN buffer of g by name (shapes must match).
int weights_load(const char *path, nn_graph *g, char *err, int err_sz);
void weights_meta_free(weights_meta *meta);
#endif
