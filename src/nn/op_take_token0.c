#include "nn/op_take_token0.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_take_token0(nn_graph *g, const char *name, nn_tid x) {
  nn_tensor xt = *nn_t(g, x);
  if (xt.ndim != 3) DP_FATAL("building take_token0", "model builder bug", "%s: input must be (N, T, D)", name);
  nn_take_token0_op *op = NN_OP_NEW(nn_take_token0_op, g, take_token0, name);
  op->x = x;
  nn_op_input(&op->base, x, 0);
  op->N = xt.dim[0];
  op->T = xt.dim[1];
  op->D = xt.dim[2];
  int64_t d[2] = {op->N, op->D};
  op->y = nn_tensor_new(g, name, 2, d, xt.needs_grad);
  op->base.out = op->y;
  nn_op_push(g, &op->base);
  return op->y;
}
