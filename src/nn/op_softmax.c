#include "nn/op_softmax.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_softmax(nn_graph *g, const char *name, nn_tid x) {
  nn_softmax_op *op = NN_OP_NEW(nn_softmax_op, g, softmax, name);
  nn_tensor xt = *nn_t(g, x);
  op->x = x;
  nn_op_input(&op->base, x, 0);
  op->base.out_keep = 1;   // dx = y * (dy - <dy, y>)
  op->L = xt.dim[xt.ndim - 1];
  op->rows = xt.numel / op->L;
  op->y = nn_tensor_new(g, name, xt.ndim, xt.dim, xt.needs_grad);
  op->base.out = op->y;
  op->base.flops = 5 * xt.numel;
  nn_op_push(g, &op->base);
  return op->y;
}
