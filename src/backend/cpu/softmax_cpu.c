// Softmax over the last dim: max-shifted exp; backward dx = y * (dy - <dy, y>).
#include <math.h>

#include "backend/cpu/vexp_cpu.h"

#include "nn/op_softmax.h"

static void softmax_forward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_softmax_op *op = (nn_softmax_op *)base;
  const float *x = nn_t(g, op->x)->data;
  float *y = nn_t(g, op->y)->data;
  int64_t L = op->L;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < op->rows; r++) {
    const float *xr = x + r * L;
    float *yr = y + r * L;
    float mx = xr[0];
    for (int64_t i = 1; i < L; i++) mx = xr[i] > mx ? xr[i] : mx;
    double s = vexp_shift_sum(xr, yr, L, mx);
    float inv = (float)(1.0 / s);
    for (int64_t i = 0; i < L; i++) yr[i] *= inv;
  }
}

static void softmax_backward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_softmax_op *op = (nn_softmax_op *)base;
  nn_tensor *xt = nn_t(g, op->x);
  if (!xt->grad) return;
  const float *y = nn_t(g, op->y)->data, *dy = nn_t(g, op->y)->grad;
  float *dx = xt->grad;
  int add = nn_grad_begin(g, op->x);
  int64_t L = op->L;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < op->rows; r++) {
    const float *yr = y + r * L, *dyr = dy + r * L;
    float *dxr = dx + r * L;
    double dot = 0;
    for (int64_t i = 0; i < L; i++) dot += (double)dyr[i] * yr[i];
    float d = (float)dot;
    for (int64_t i = 0; i < L; i++) {
      float v = yr[i] * (dyr[i] - d);
      dxr[i] = add ? dxr[i] + v : v;
    }
  }
}

const nn_op_vt softmax_cpu_vt = {"softmax", NULL, softmax_forward, softmax_backward, NULL, NULL};
