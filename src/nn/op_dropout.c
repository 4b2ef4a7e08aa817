#include "nn/op_dropout.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_dropout(nn_graph *g, const char *name, nn_tid x, float p) {
  // A copy: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor tx = *nn_t(g, x), *t = &tx;
  if (!(p >= 0.0f && p < 1.0f)) DP_FATAL("building dropout", "use 0 <= p < 1", "%s: p = %g", name, (double)p);
  nn_dropout_op *op = NN_OP_NEW(nn_dropout_op, g, dropout, name);
  op->x = x;
  nn_op_input(&op->base, x, 0);   // the mask in y's extra is all backward needs
  op->p = p;
  op->op_index = g->nops;
  op->y = nn_tensor_new(g, name, t->ndim, t->dim, t->needs_grad);
  nn_t(g, op->y)->extra_bytes = t->numel;   // mask, 1 byte per element
  op->base.out = op->y;
  op->base.flops = t->numel;
  nn_op_push(g, &op->base);
  return op->y;
}
