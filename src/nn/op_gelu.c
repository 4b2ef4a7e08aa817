#include "nn/op_gelu.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_gelu(nn_graph *g, const char *name, nn_tid x) {
  nn_gelu_op *op = NN_OP_NEW(nn_gelu_op, g, gelu, name);
  nn_tensor xt = *nn_t(g, x);   // copy: nn_tensor_new may move the table
  op->x = x;
  nn_op_input(&op->base, x, 1);   // dy * gelu'(x); y is recomputed from x when needed
  op->base.recompute = 1;
  op->y = nn_tensor_new(g, name, xt.ndim, xt.dim, xt.needs_grad);
  op->base.out = op->y;
  op->base.flops = 10 * xt.numel;
  nn_op_push(g, &op->base);
  return op->y;
}
