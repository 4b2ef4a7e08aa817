#include "nn/op_class_token.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_class_token(nn_graph *g, const char *name, nn_tid x) {
  nn_tensor xt = *nn_t(g, x);
  if (xt.ndim != 3) DP_FATAL("building class_token", "model builder bug", "%s: input must be (N, T, D)", name);
  nn_class_token_op *op = NN_OP_NEW(nn_class_token_op, g, class_token, name);
  op->x = x;
  nn_op_input(&op->base, x, 0);
  op->N = xt.dim[0];
  op->T = xt.dim[1];
  op->D = xt.dim[2];
  int64_t ps[3] = {1, 1, op->D};
  // torchvision initialises the class token to zeros.
  op->p = nn_param_new(g, name, 3, ps, NN_PARAM_EMBED, NN_INIT_ZEROS, 0);
  int64_t d[3] = {op->N, op->T + 1, op->D};
  op->y = nn_tensor_new(g, name, 3, d, 1);
  op->base.out = op->y;
  nn_op_push(g, &op->base);
  return op->y;
}
