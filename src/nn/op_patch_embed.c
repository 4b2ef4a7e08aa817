#include "nn/op_patch_embed.h"

#include <math.h>

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_patch_embed(nn_graph *g, const char *name, nn_tid x, int64_t dim, int patch) {
  nn_tensor xt = *nn_t(g, x);
  if (xt.ndim != 4 || patch < 1 || xt.dim[1] % patch || xt.dim[2] % patch)
    DP_FATAL("building patch_embed", "image size must be a multiple of the patch size",
             "%s: input (N,H,W,C) with H, W divisible by patch %d", name, patch);
  nn_patch_embed_op *op = NN_OP_NEW(nn_patch_embed_op, g, patch_embed, name);
  op->x = x;
  nn_op_input(&op->base, x, 1);   // the weight gradient needs the image
  op->N = xt.dim[0];
  op->H = xt.dim[1];
  op->W = xt.dim[2];
  op->C = xt.dim[3];
  op->D = dim;
  op->p = patch;
  op->gh = op->H / patch;
  op->gw = op->W / patch;
  int64_t K = op->C * op->p * op->p;
  char pn[NN_NAME_MAX];
  int64_t ws[4] = {dim, op->C, patch, patch};
  nn_join_name(pn, sizeof pn, name, "weight");
  // torchvision ViT: trunc_normal(std = sqrt(1 / fan_in)), bias zeros.
  op->pw = nn_param_new(g, pn, 4, ws, NN_PARAM_WEIGHT, NN_INIT_TRUNC_NORMAL, (float)sqrt(1.0 / (double)K));
  nn_join_name(pn, sizeof pn, name, "bias");
  op->pb = nn_param_new(g, pn, 1, &dim, NN_PARAM_BIAS, NN_INIT_ZEROS, 0);
  int64_t d[3] = {op->N, op->gh * op->gw, dim};
  op->y = nn_tensor_new(g, name, 3, d, 1);
  op->base.workspace_bytes = op->N * op->gh * op->gw * K * (int64_t)sizeof(float);
  op->base.out = op->y;
  op->base.flops = 2 * op->N * op->gh * op->gw * K * dim;
  nn_op_push(g, &op->base);
  return op->y;
}
