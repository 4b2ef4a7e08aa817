// ResNet-18 and ResNet-50, torchvision's v1.5 layout (the stride of a
// bottleneck sits on its 3x3 conv) and parameter/buffer names:
//   conv1 (7x7 s2 p3, or 3x3 s1 p1 with small_stem) - bn1 - relu
//   - maxpool 3x3 s2 p1 (skipped with small_stem)
//   layer1..layer4: [2,2,2,2] BasicBlocks (18) or [3,4,6,3] Bottlenecks (50),
//     planes 64, 128, 256, 512, first block of layer2..4 has stride 2;
//     layerL.B.downsample.0 (1x1 conv, stride) + .1 (BN) when the shape changes
//   global average pool - fc (Linear, classes)
// Init as torchvision: convs kaiming-normal fan_out, BN weight 1 / bias 0
// (zero_init_residual: the last BN of each block starts at 0), fc as torch's
// Linear default. BN momentum 0.1, eps 1e-5.
// Stages for fine-tuning: 0 stem, 1..4 layer1..4, 5 head (fc, is_head).
#include <stdio.h>

#include "core/check.h"
#include "nn/models/models.h"
#include "nn/ops.h"

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f

static void set_stage(nn_graph *g, int32_t from, int stage, int is_head) {
  for (int32_t i = from; i < g->nparams; i++) {
    g->params[i].stage = stage;
    g->params[i].is_head = is_head;
  }
}

// conv (no bias) followed by BN (+ReLU); returns the BN output.
static nn_tid conv_bn(nn_graph *g, const char *conv_name, const char *bn_name, nn_tid x,
                      int64_t out_ch, int k, int stride, int pad, int relu, int zero_init) {
  nn_tid y = nn_conv2d(g, conv_name, x, out_ch, k, stride, pad, 0);
  return relu ? nn_batchnorm2d_relu(g, bn_name, y, BN_MOMENTUM, BN_EPS, zero_init)
              : nn_batchnorm2d(g, bn_name, y, BN_MOMENTUM, BN_EPS, zero_init);
}

// One residual block named `pfx` ("layer2.0"). x: (N, H, W, in_ch).
// Returns (N, H/stride, W/stride, planes * expansion).
static nn_tid block_build(nn_graph *g, const char *pfx, nn_tid x, int64_t planes, int stride,
                          int bottleneck, int zero_init) {
  char c[NN_NAME_MAX], b[NN_NAME_MAX];
  int64_t in_ch = nn_t(g, x)->dim[3];
  int64_t out_ch = bottleneck ? planes * 4 : planes;
  nn_tid y;
  if (bottleneck) {
    snprintf(c, sizeof c, "%s.conv1", pfx);
    snprintf(b, sizeof b, "%s.bn1", pfx);
    y = conv_bn(g, c, b, x, planes, 1, 1, 0, 1, 0);
    snprintf(c, sizeof c, "%s.conv2", pfx);
    snprintf(b, sizeof b, "%s.bn2", pfx);
    y = conv_bn(g, c, b, y, planes, 3, stride, 1, 1, 0);   // v1.5: stride here
    snprintf(c, sizeof c, "%s.conv3", pfx);
    snprintf(b, sizeof b, "%s.bn3", pfx);
    y = conv_bn(g, c, b, y, out_ch, 1, 1, 0, 0, zero_init);
  } else {
    snprintf(c, sizeof c, "%s.conv1", pfx);
    snprintf(b, sizeof b, "%s.bn1", pfx);
    y = conv_bn(g, c, b, x, planes, 3, stride, 1, 1, 0);
    snprintf(c, sizeof c, "%s.conv2", pfx);
    snprintf(b, sizeof b, "%s.bn2", pfx);
    y = conv_bn(g, c, b, y, out_ch, 3, 1, 1, 0, zero_init);
  }
  nn_tid id = x;
  if (stride != 1 || in_ch != out_ch) {
    snprintf(c, sizeof c, "%s.downsample.0", pfx);
    snprintf(b, sizeof b, "%s.downsample.1", pfx);
    id = conv_bn(g, c, b, x, out_ch, 1, stride, 0, 0, 0);
  }
  snprintf(c, sizeof c, "%s.add_relu", pfx);
  return nn_add_relu(g, c, y, id);   // (N, H', W', out_ch)
}

void resnet_build(nn_graph *g, const model_cfg *cfg, int depth) {
  static const int blocks18[4] = {2, 2, 2, 2}, blocks50[4] = {3, 4, 6, 3};
  if (depth != 18 && depth != 50)
    DP_FATAL("building resnet", "use resnet18 or resnet50", "depth %d not supported", depth);
  if (cfg->channels != 1 && cfg->channels != 3)
    DP_FATAL("building resnet", "use --channels 1 or 3", "channels = %d", cfg->channels);
  const int *blocks = depth == 18 ? blocks18 : blocks50;
  int bottleneck = depth == 50;

  int64_t in_dim[4] = {g->batch, cfg->image_size, cfg->image_size, cfg->channels};
  g->input = nn_tensor_new(g, "input", 4, in_dim, 0);   // (N, H, W, C)

  int32_t p0 = g->nparams;
  nn_tid x;
  if (cfg->small_stem) {
    x = conv_bn(g, "conv1", "bn1", g->input, 64, 3, 1, 1, 1, 0);   // (N, H, W, 64)
  } else {
    x = conv_bn(g, "conv1", "bn1", g->input, 64, 7, 2, 3, 1, 0);   // (N, H/2, W/2, 64)
    x = nn_maxpool2d(g, "maxpool", x, 3, 2, 1);                    // (N, H/4, W/4, 64)
  }
  set_stage(g, p0, 0, 0);

  static const int64_t planes[4] = {64, 128, 256, 512};
  for (int l = 0; l < 4; l++) {
    p0 = g->nparams;
    for (int bi = 0; bi < blocks[l]; bi++) {
      char pfx[32];
      snprintf(pfx, sizeof pfx, "layer%d.%d", l + 1, bi);
      int stride = (bi == 0 && l > 0) ? 2 : 1;
      x = block_build(g, pfx, x, planes[l], stride, bottleneck, cfg->zero_init_residual);
    }
    set_stage(g, p0, l + 1, 0);
  }

  x = nn_global_avgpool(g, "avgpool", x);   // (N, 512 * expansion)
  if (cfg->dropout > 0) x = nn_dropout(g, "dropout", x, cfg->dropout);
  p0 = g->nparams;
  g->logits = nn_linear(g, "fc", x, cfg->classes, 1);   // (N, classes)
  set_stage(g, p0, 5, 1);
}
