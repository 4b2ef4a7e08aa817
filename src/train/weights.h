// Model weights file: safetensors (core/safetensors.h: validated on read,
// written atomically). Tensors use torchvision names: every
// parameter (F32, torch layout), every BN running buffer (F32) and, per BN
// module, "<bn>.num_batches_tracked" (I64 scalar), so torch's
// model.load_state_dict(safetensors.torch.load_file(path)) accepts it.
// The "__metadata__" map holds the model configuration ("dptrain.model",
// "dptrain.image_size", ...), the class names, the input normalisation and
// the evaluation transform (resize ratio, filter, crop), so `dptrain eval
// --weights FILE` and a scoring job (python/dptrain, docs/weights.md) can
// rebuild the same model and feed it the same input.
#ifndef DP_TRAIN_WEIGHTS_H
#define DP_TRAIN_WEIGHTS_H
#include <stdint.h>

#include "core/stpack.h"
#include "nn/graph.h"
#include "nn/models/models.h"

typedef struct {
  model_cfg model;
  float mean[3], std[3];
  float eval_resize_ratio;   // eval: shorter side -> image_size / ratio, then center crop
                             // (0 on save: the loader's default, 0.875)
  int num_classes;
  char **class_names;    // (num_classes) or NULL
  int64_t steps;         // optimizer steps trained
  float *logit_bias;     // (num_classes) post-hoc logit adjustment ("dptrain.logit_bias"), or NULL
  char augment_policy[16];   // the training augmentation policy ("dptrain.augment_policy"), "" unknown
} weights_meta;

// Adds the model's tensors (params and BN buffers from the given host
// copies, in g's layout) and metadata to a pack; copy = 1 snapshots the data
// (for a write that happens later, e.g. on the checkpoint thread).
// Returns 0, or -1 with err filled.
int weights_pack_add(st_pack *pk, const nn_graph *g, const float *params, const float *bufs,
                     const weights_meta *meta, int copy, char *err, int err_sz);
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

// Pretrained initialisation (--init-weights): every model tensor is looked
// up by its torchvision name, then (ViT) by its timm name. A tensor is
//   loaded      when found with the model's shape (F32, or F16/BF16/F64 converted);
//   excluded    when its name starts with one of the comma-separated prefixes;
//   head-skipped when it belongs to the classifier head and its shape differs
//               (a new class count: the head keeps its fresh initialisation);
//   mismatched  when found with another shape (kept fresh);
//   missing     when not in the file (kept fresh).
// Tensors of the file the model does not use are "unexpected" (ignored),
// except num_batches_tracked and dptrain's own checkpoint extras.
// BN running statistics are loaded like parameters. With strict, any
// missing, mismatched or unexpected tensor (the head-skip excepted) is an
// error. Non-finite values are refused unless allow_nonfinite.
typedef struct {
  const char *exclude;
  int strict;
  int allow_nonfinite;
} weights_init_opts;
typedef struct {
  int loaded, missing, unexpected, mismatched, excluded, head_skipped;
  char first_missing[128], first_unexpected[128], first_mismatch[256];
} weights_init_report;
int weights_init_load(const char *path, nn_graph *g, const weights_init_opts *o, weights_init_report *rep, char *err,
                      int err_sz);
#endif
