// Baseline CNN ("cnn"). Exact layout, for width w = cfg->cnn_width (default
// 32) and input (N, S, S, C), C = 1 or 3:
//
//   stage i = 0..3, channels c_i = w * 2^i (32, 64, 128, 256):
//     stages.i.0   conv3x3 stride 1 pad 1, no bias (stages.i.0.conv.weight)
//                  BN + ReLU                      (stages.i.0.bn.*)
//     stages.i.1   conv3x3 stride 1 pad 1, no bias (stages.i.1.conv.weight)
//                  BN + ReLU                      (stages.i.1.bn.*)
//     stages.i.2   max-pool 2x2 stride 2          -> S / 2^(i+1) (floor)
//   global average pool                           -> (N, 8w)
//   dropout(p) when cfg->dropout > 0
//   fc: Linear(8w, classes) with bias              (fc.weight, fc.bias)
//
// With w = 32 and 3 input channels this is 1,173,216 + 257 * classes
// parameters (576 fewer for grayscale). Init: convs kaiming-normal fan_out,
// BN weight 1 / bias 0 (momentum 0.1, eps 1e-5), fc as torch's Linear default. The parameter names
// equal the state_dict of BaselineCNN in tests/models/torch_cnn.py.
// Stages for fine-tuning: i for stages.i, 4 for the head (fc, is_head).
#include <stdio.h>

#include "core/check.h"
#include "nn/models/models.h"
#include "nn/ops.h"

void cnn_build(nn_graph *g, const model_cfg *cfg) {
  if (cfg->channels != 1 && cfg->channels != 3)
    DP_FATAL("building cnn", "use --channels 1 or 3", "channels = %d", cfg->channels);
  int64_t w = cfg->cnn_width > 0 ? cfg->cnn_width : 32;
  if (cfg->image_size < 16)
    DP_FATAL("building cnn", "use --image-size >= 16 (four 2x2 max-pools)",
             "image size %lld", (long long)cfg->image_size);

  int64_t in_dim[4] = {g->batch, cfg->image_size, cfg->image_size, cfg->channels};
  g->input = nn_tensor_new(g, "input", 4, in_dim, 0);   // (N, S, S, C)
  nn_tid x = g->input;
  for (int i = 0; i < 4; i++) {
    int32_t p0 = g->nparams;
    int64_t ch = w << i;
    for (int j = 0; j < 2; j++) {
      char c[NN_NAME_MAX], b[NN_NAME_MAX];
      snprintf(c, sizeof c, "stages.%d.%d.conv", i, j);
      snprintf(b, sizeof b, "stages.%d.%d.bn", i, j);
      x = nn_conv2d(g, c, x, ch, 3, 1, 1, 0);                // (N, s, s, ch)
      x = nn_batchnorm2d_relu(g, b, x, 0.1f, 1e-5f, 0);
    }
    char pn[NN_NAME_MAX];
    snprintf(pn, sizeof pn, "stages.%d.2", i);
    x = nn_maxpool2d(g, pn, x, 2, 2, 0);                      // (N, s/2, s/2, ch)
    for (int32_t k = p0; k < g->nparams; k++) g->params[k].stage = i;
  }
  x = nn_global_avgpool(g, "pool", x);                        // (N, 8w)
  if (cfg->dropout > 0) x = nn_dropout(g, "drop", x, cfg->dropout);
  int32_t p0 = g->nparams;
  g->logits = nn_linear(g, "fc", x, cfg->classes, 1);         // (N, classes)
  for (int32_t k = p0; k < g->nparams; k++) {
    g->params[k].stage = 4;
    g->params[k].is_head = 1;
  }
}
