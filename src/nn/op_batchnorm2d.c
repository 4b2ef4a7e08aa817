#include "nn/op_batchnorm2d.h"

#include "nn/op_common.h"
#include "nn/ops.h"


static nn_tid bn_build(nn_graph *g, const char *name, nn_tid x, float momentum, float eps,
                       int zero_init, int relu) {
  // A copy: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor tx = *nn_t(g, x), *t = &tx;
  if (t->ndim != 4)
    DP_FATAL("building batchnorm2d", "x must be (N, H, W, C)", "%s: ndim %d", name, t->ndim);
  nn_batchnorm2d_op *op = relu ? NN_OP_NEW(nn_batchnorm2d_op, g, batchnorm2d_relu, name)
                               : NN_OP_NEW(nn_batchnorm2d_op, g, batchnorm2d, name);
  int64_t c = t->dim[3];
  op->x = x;
  // Keeps x (and, in y's extra, the batch statistics and the ReLU mask); y is
  // not kept: recompute rebuilds it from x when a later op's backward reads it.
  nn_op_input(&op->base, x, 1);
  op->base.recompute = 1;
  op->ch = c;
  op->momentum = momentum;
  op->eps = eps;
  op->relu = relu;
  op->fwd_training = 1;
  char pn[NN_NAME_MAX];
  nn_join_name(pn, sizeof pn, name, "weight");
  op->w_pid = nn_param_new(g, pn, 1, &c, NN_PARAM_NORM, zero_init ? NN_INIT_ZEROS : NN_INIT_ONES, 0);
  nn_join_name(pn, sizeof pn, name, "bias");
  op->b_pid = nn_param_new(g, pn, 1, &c, NN_PARAM_NORM, NN_INIT_ZEROS, 0);
  nn_join_name(pn, sizeof pn, name, "running_mean");
  op->rm_bid = nn_buffer_new(g, pn, c, 0.0f);
  nn_join_name(pn, sizeof pn, name, "running_var");
  op->rv_bid = nn_buffer_new(g, pn, c, 1.0f);
  op->y = nn_tensor_new(g, name, 4, t->dim, 1);
  // y's extra: the saved batch statistics (2 * C floats); the backend's plan
  // hook adds what else it keeps (the CPU's fused-ReLU mask) and its scratch.
  nn_t(g, op->y)->extra_bytes = NN_BN_STATS_BYTES(c);
  op->base.out = op->y;
  op->base.flops = (relu ? 5 : 4) * t->numel;
  nn_op_push(g, &op->base);
  return op->y;
}

nn_tid nn_batchnorm2d(nn_graph *g, const char *name, nn_tid x, float momentum, float eps,
                      int zero_init) {
  return bn_build(g, name, x, momentum, eps, zero_init, 0);
}
nn_tid nn_batchnorm2d_relu(nn_graph *g, const char *name, nn_tid x, float momentum, float eps,
                           int zero_init) {
  return bn_build(g, name, x, momentum, eps, zero_init, 1);
}
