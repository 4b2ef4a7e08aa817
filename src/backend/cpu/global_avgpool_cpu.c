// global_avgpool on the CPU: (N, H, W, C) -> (N, C), OpenMP over images.
#include "backend/cpu/dnnl_util.h"
#include "nn/op_global_avgpool.h"

static void gap_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_global_avgpool_op *op = (nn_global_avgpool_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  int64_t n = x->dim[0], hw = x->dim[1] * x->dim[2], c = x->dim[3];
  const float *xd = x->data;
  float *y = nn_t(g, op->y)->data;
  float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n; b++) {
    float *yb = y + b * c;
    for (int64_t ch = 0; ch < c; ch++) yb[ch] = 0.0f;
    for (int64_t i = 0; i < hw; i++) {
      const float *xi = xd + (b * hw + i) * c;
#pragma omp simd
      for (int64_t ch = 0; ch < c; ch++) yb[ch] += xi[ch];
    }
    for (int64_t ch = 0; ch < c; ch++) yb[ch] *= inv;
  }
}

static void gap_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_global_avgpool_op *op = (nn_global_avgpool_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *x = nn_t(g, op->x);
  int64_t n = x->dim[0], hw = x->dim[1] * x->dim[2], c = x->dim[3];
  const float *dy = nn_t(g, op->y)->grad;
  float inv = 1.0f / (float)hw;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < n; b++)
    for (int64_t i = 0; i < hw; i++) {
      float *dxi = dx + (b * hw + i) * c;
      const float *dyb = dy + b * c;
      if (add) {
#pragma omp simd
        for (int64_t ch = 0; ch < c; ch++) dxi[ch] += dyb[ch] * inv;
      } else {
#pragma omp simd
        for (int64_t ch = 0; ch < c; ch++) dxi[ch] = dyb[ch] * inv;
      }
    }
}

const nn_op_vt global_avgpool_cpu_vt = {"global_avgpool", NULL, gap_forward, gap_backward, NULL, NULL};
