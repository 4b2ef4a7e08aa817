// Model builders and the registry behind --model NAME.
// All models take input size, channels (1 or 3) and class count. Builders
// create the input tensor (N, H, W, C) on g, the network, and set g->input and
// g->logits (N, classes). The loss op is added by the caller (nn_softmax_xent).
// Builders also set each parameter's `stage` (0 = stem, increasing to the head)
// and `is_head`, used by fine-tuning parameter groups.
#ifndef DP_NN_MODELS_H
#define DP_NN_MODELS_H
#include <stdint.h>

#include "nn/graph.h"

typedef struct {
  char name[32];            // cnn, resnet18, resnet50, vit_ti16, vit_s16, vit_b16
  int64_t image_size;       // H = W
  int channels;             // 1 or 3
  int64_t classes;
  int small_stem;           // ResNet: 3x3 stride-1 stem conv, no max-pool (28-64 px)
  int zero_init_residual;   // ResNet: last BN of each block starts at 0
  int patch;                // ViT patch size (0 = the model's default, 16)
  float dropout;            // head / ViT dropout probability (0 = none)
  int cnn_width;            // CNN base width (0 = default 32)
} model_cfg;

// Fills defaults for name; returns 0 if the name is unknown.
int model_cfg_default(model_cfg *cfg, const char *name, int64_t image_size, int channels,
                      int64_t classes);
int model_known(const char *name);
const char *model_names(void);          // "cnn, resnet18, ..." for messages
void model_build(nn_graph *g, const model_cfg *cfg);
int model_num_stages(const model_cfg *cfg);   // for gradual unfreezing

// Individual builders (nn/models/*.c).
void cnn_build(nn_graph *g, const model_cfg *cfg);
void resnet_build(nn_graph *g, const model_cfg *cfg, int depth);   // 18 or 50
void vit_build(nn_graph *g, const model_cfg *cfg, int64_t dim, int heads, int depth);
// torchvision -> timm ViT parameter name map; returns 0 if no mapping.
int vit_name_to_timm(const char *tv_name, char *out, size_t outsz);
#endif
