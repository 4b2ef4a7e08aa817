// Select token 0: y[n] = x[n, 0]; backward scatters into token 0 only.
#include <string.h>

#include "nn/op_take_token0.h"

static void take_token0_forward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_take_token0_op *op = (nn_take_token0_op *)base;
  const float *x = nn_t(g, op->x)->data;   // (N, T, D)
  float *y = nn_t(g, op->y)->data;         // (N, D)
  for (int64_t n = 0; n < op->N; n++) memcpy(y + n * op->D, x + n * op->T * op->D, (size_t)op->D * 4);
}

static void take_token0_backward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_take_token0_op *op = (nn_take_token0_op *)base;
  nn_tensor *xt = nn_t(g, op->x);
  if (!xt->grad) return;
  const float *dy = nn_t(g, op->y)->grad;
  float *dx = xt->grad;
  int add = nn_grad_begin(g, op->x);
  int64_t TD = op->T * op->D;
  for (int64_t n = 0; n < op->N; n++) {
    float *d = dx + n * TD;
    const float *s = dy + n * op->D;
    if (add) {
      for (int64_t i = 0; i < op->D; i++) d[i] += s[i];
    } else {
      memcpy(d, s, (size_t)op->D * 4);
      memset(d + op->D, 0, (size_t)(TD - op->D) * 4);
    }
  }
}

const nn_op_vt take_token0_cpu_vt = {"take_token0", NULL, take_token0_forward, take_token0_backward, NULL, NULL};
