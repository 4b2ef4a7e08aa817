// Class token: y[n, 0] = cls, y[n, 1:] = x[n].
#include <string.h>

#include "nn/op_class_token.h"

static void class_token_forward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_class_token_op *op = (nn_class_token_op *)base;
  const float *x = nn_t(g, op->x)->data;   // (N, T, D)
  float *y = nn_t(g, op->y)->data;         // (N, T + 1, D)
  const float *c = nn_param_data(g, op->p);
  int64_t TD = op->T * op->D;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < op->N; n++) {
    float *yn = y + n * (TD + op->D);
    memcpy(yn, c, (size_t)op->D * 4);
    memcpy(yn + op->D, x + n * TD, (size_t)TD * 4);
  }
}

static void class_token_backward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_class_token_op *op = (nn_class_token_op *)base;
  nn_tensor *xt = nn_t(g, op->x);
  const float *dy = nn_t(g, op->y)->grad;
  int64_t TD = op->T * op->D, D = op->D;
  if (!g->params[op->p].frozen) {
    float *dc = nn_param_grad(g, op->p);
    for (int64_t i = 0; i < D; i++) {
      double s = 0;
      for (int64_t n = 0; n < op->N; n++) s += dy[n * (TD + D) + i];
      dc[i] = (float)s + (ns->accumulate_grads ? dc[i] : 0.f);
    }
  }
  if (!xt->grad) return;
  float *dx = xt->grad;
  int add = nn_grad_begin(g, op->x);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < op->N; n++) {
    const float *s = dy + n * (TD + D) + D;
    float *d = dx + n * TD;
    if (add) {
      for (int64_t i = 0; i < TD; i++) d[i] += s[i];
    } else {
      memcpy(d, s, (size_t)TD * 4);
    }
  }
}

const nn_op_vt class_token_cpu_vt = {"class_token", NULL, class_token_forward, class_token_backward, NULL, NULL};
