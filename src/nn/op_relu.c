#include "nn/op_relu.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_relu(nn_graph *g, const char *name, nn_tid x) {
  // A copy: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor tx = *nn_t(g, x), *t = &tx;
  nn_relu_op *op = NN_OP_NEW(nn_relu_op, g, relu, name);
  op->x = x;
  nn_op_input(&op->base, x, 0);
  op->base.out_keep = 1;   // backward masks dy by the output's sign
  op->y = nn_tensor_new(g, name, t->ndim, t->dim, t->needs_grad);
  op->base.out = op->y;
  op->base.flops = t->numel;
  nn_op_push(g, &op->base);
  return op->y;
}
