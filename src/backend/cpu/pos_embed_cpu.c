// Position embedding: y = x + pos (broadcast over N); dpos = sum_n dy.
#include <string.h>

#include "nn/op_pos_embed.h"

static void pos_embed_forward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_pos_embed_op *op = (nn_pos_embed_op *)base;
  const float *x = nn_t(g, op->x)->data;   // (N, T, D)
  float *y = nn_t(g, op->y)->data;
  const float *p = nn_param_data(g, op->p);   // (T, D)
  int64_t TD = op->T * op->D;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < op->N; n++)
    for (int64_t i = 0; i < TD; i++) y[n * TD + i] = x[n * TD + i] + p[i];
}

static void pos_embed_backward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_pos_embed_op *op = (nn_pos_embed_op *)base;
  nn_tensor *xt = nn_t(g, op->x);
  const float *dy = nn_t(g, op->y)->grad;
  int64_t TD = op->T * op->D;
  if (!g->params[op->p].frozen) {
    float *dp = nn_param_grad(g, op->p);
    int acc = ns->accumulate_grads;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < TD; i++) {
      double s = 0;
      for (int64_t n = 0; n < op->N; n++) s += dy[n * TD + i];
      dp[i] = (float)s + (acc ? dp[i] : 0.f);
    }
  }
  if (!xt->grad) return;
  float *dx = xt->grad;
  int add = nn_grad_begin(g, op->x);
  if (!add) {
    memcpy(dx, dy, (size_t)xt->numel * 4);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < xt->numel; i++) dx[i] += dy[i];
}

const nn_op_vt pos_embed_cpu_vt = {"pos_embed", NULL, pos_embed_forward, pos_embed_backward, NULL, NULL};
