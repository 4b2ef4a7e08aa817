#include "nn/op_layernorm.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_layernorm(nn_graph *g, const char *name, nn_tid x, float eps) {
  nn_tensor *xt = nn_t(g, x);
  int64_t D = xt->dim[xt->ndim - 1];
  char pn[NN_NAME_MAX];
  nn_layernorm_op *op = NN_OP_NEW(nn_layernorm_op, g, layernorm, name);
  op->x = x;
  // Keeps x (mean and rstd in y's extra); y is recomputed from them when needed.
  nn_op_input(&op->base, x, 1);
  op->base.recompute = 1;
  op->eps = eps;
  op->D = D;
  op->rows = xt->numel / D;
  nn_join_name(pn, sizeof pn, name, "weight");
  op->pw = nn_param_new(g, pn, 1, &D, NN_PARAM_NORM, NN_INIT_ONES, 0);
  nn_join_name(pn, sizeof pn, name, "bias");
  op->pb = nn_param_new(g, pn, 1, &D, NN_PARAM_NORM, NN_INIT_ZEROS, 0);
  int64_t dims[NN_MAX_DIMS];
  int nd = xt->ndim;
  for (int i = 0; i < nd; i++) dims[i] = xt->dim[i];
  op->y = nn_tensor_new(g, name, nd, dims, 1);
  nn_t(g, op->y)->extra_bytes = 2 * op->rows * (int64_t)sizeof(float);
  op->base.out = op->y;
  op->base.flops = 8 * op->rows * D;
  nn_op_push(g, &op->base);
  return op->y;
}
