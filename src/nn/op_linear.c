#include "nn/op_linear.h"

#include <math.h>

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_linear(nn_graph *g, const char *name, nn_tid x, int64_t out, int bias) {
  // A copy: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor tx = *nn_t(g, x), *t = &tx;
  if (out < 1) DP_FATAL("building linear", "out features >= 1", "%s: out %lld", name, (long long)out);
  nn_linear_op *op = NN_OP_NEW(nn_linear_op, g, linear, name);
  op->x = x;
  nn_op_input(&op->base, x, 1);   // the weight gradient needs x
  op->in = t->dim[t->ndim - 1];
  op->rows = t->numel / op->in;
  op->out = out;
  op->has_bias = bias;
  float bound = (float)(1.0 / sqrt((double)op->in));   // torch nn.Linear default
  char pn[NN_NAME_MAX];
  int64_t ws[2] = {out, op->in};
  nn_join_name(pn, sizeof pn, name, "weight");
  op->w_pid = nn_param_new(g, pn, 2, ws, NN_PARAM_WEIGHT, NN_INIT_UNIFORM, bound);
  op->b_pid = -1;
  if (bias) {
    nn_join_name(pn, sizeof pn, name, "bias");
    op->b_pid = nn_param_new(g, pn, 1, &out, NN_PARAM_BIAS, NN_INIT_UNIFORM, bound);
  }
  int64_t yd[NN_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++) yd[i] = t->dim[i];
  yd[t->ndim - 1] = out;
  op->y = nn_tensor_new(g, name, t->ndim, yd, 1);
  op->base.out = op->y;
  op->base.flops = 2 * op->rows * op->in * out;
  nn_op_push(g, &op->base);
  return op->y;
}
