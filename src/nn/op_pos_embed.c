#include "nn/op_pos_embed.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_pos_embed(nn_graph *g, const char *name, nn_tid x) {
  nn_tensor xt = *nn_t(g, x);
  if (xt.ndim != 3) DP_FATAL("building pos_embed", "model builder bug", "%s: input must be (N, T, D)", name);
  nn_pos_embed_op *op = NN_OP_NEW(nn_pos_embed_op, g, pos_embed, name);
  op->x = x;
  nn_op_input(&op->base, x, 0);
  op->N = xt.dim[0];
  op->T = xt.dim[1];
  op->D = xt.dim[2];
  int64_t ps[3] = {1, op->T, op->D};
  // torchvision: normal(std=0.02).
  op->p = nn_param_new(g, name, 3, ps, NN_PARAM_EMBED, NN_INIT_NORMAL, 0.02f);
  op->y = nn_tensor_new(g, name, 3, xt.dim, 1);
  op->base.out = op->y;
  op->base.flops = xt.numel;
  nn_op_push(g, &op->base);
  return op->y;
}
