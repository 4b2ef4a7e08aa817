#include "nn/op_global_avgpool.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_global_avgpool(nn_graph *g, const char *name, nn_tid x) {
  // A copy: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor tx = *nn_t(g, x), *t = &tx;
  if (t->ndim != 4) DP_FATAL("building global_avgpool", "x must be (N, H, W, C)", "%s: ndim %d", name, t->ndim);
  nn_global_avgpool_op *op = NN_OP_NEW(nn_global_avgpool_op, g, global_avgpool, name);
  op->x = x;
  nn_op_input(&op->base, x, 0);
  int64_t yd[2] = {t->dim[0], t->dim[3]};
  op->y = nn_tensor_new(g, name, 2, yd, t->needs_grad);
  op->base.out = op->y;
  op->base.flops = t->numel;
  nn_op_push(g, &op->base);
  return op->y;
}
