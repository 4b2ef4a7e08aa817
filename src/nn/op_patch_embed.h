// Patch embedding: conv with kernel = stride = patch on x (N, H, W, C), no
// padding, written as tokens y (N, (H/p)*(W/p), D) in row-major patch order
// (torchvision: conv_proj(x).reshape(N, D, -1).permute(0, 2, 1)).
// Params "<name>.weight" (D, C, p, p), "<name>.bias" (D).
#ifndef DP_NN_OP_PATCH_EMBED_H
#define DP_NN_OP_PATCH_EMBED_H
#include "nn/graph.h"

typedef struct {
  nn_op base;
  nn_tid x, y;
  int32_t pw, pb;
  int64_t N, H, W, C, D, p, gh, gw;   // gh x gw patch grid
  // workspace: im2col matrix (N*gh*gw, C*p*p) in (c, ky, kx) column order.
} nn_patch_embed_op;
#endif
