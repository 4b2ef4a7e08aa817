#include "nn/op_add.h"

#include "nn/op_common.h"
#include "nn/ops.h"


static nn_tid add_build(nn_graph *g, const char *name, nn_tid a, nn_tid b, int relu) {
  // Copies: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor ca = *nn_t(g, a), cb = *nn_t(g, b), *ta = &ca, *tb = &cb;
  int same = ta->ndim == tb->ndim;
  for (int i = 0; same && i < ta->ndim; i++) same = ta->dim[i] == tb->dim[i];
  if (!same) DP_FATAL("building add", "model builder bug: shapes differ", "%s: %s vs %s", name, ta->name, tb->name);
  nn_add_op *op = relu ? NN_OP_NEW(nn_add_op, g, add_relu, name) : NN_OP_NEW(nn_add_op, g, add, name);
  op->a = a;
  op->b = b;
  op->relu = relu;
  // Keeps nothing: add passes dy on; add_relu masks it by its own output's sign.
  nn_op_input(&op->base, a, 0);
  nn_op_input(&op->base, b, 0);
  op->base.out_keep = (uint8_t)relu;
  op->y = nn_tensor_new(g, name, ta->ndim, ta->dim, ta->needs_grad || tb->needs_grad);
  op->base.out = op->y;
  op->base.flops = (relu ? 2 : 1) * ta->numel;
  nn_op_push(g, &op->base);
  return op->y;
}
nn_tid nn_add(nn_graph *g, const char *name, nn_tid a, nn_tid b) { return add_build(g, name, a, b, 0); }
nn_tid nn_add_relu(nn_graph *g, const char *name, nn_tid a, nn_tid b) { return add_build(g, name, a, b, 1); }
