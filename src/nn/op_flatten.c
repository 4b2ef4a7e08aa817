#include "nn/op_flatten.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_flatten(nn_graph *g, const char *name, nn_tid x) {
  // A copy: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor tx = *nn_t(g, x), *t = &tx;
  nn_flatten_op *op = NN_OP_NEW(nn_flatten_op, g, flatten, name);
  op->x = x;
  nn_op_input(&op->base, x, 0);
  int64_t yd[2] = {t->dim[0], t->numel / t->dim[0]};
  op->y = nn_tensor_new(g, name, 2, yd, t->needs_grad);
  op->base.out = op->y;
  nn_op_push(g, &op->base);
  return op->y;
}
