// maxpool2d on the CPU, NHWC, vectorised over channels. Backward recomputes
// the argmax from x (first maximum in the window, as torch), so no index
// tensor is kept.
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_util.h"
#include "nn/op_maxpool2d.h"

static void maxpool_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_maxpool2d_op *op = (nn_maxpool2d_op *)o;
  const nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  int64_t n = x->dim[0], h = x->dim[1], w = x->dim[2], c = x->dim[3], oh = y->dim[1], ow = y->dim[2];
  const float *xd = x->data;
  float *yd = y->data;
  int k = op->k, s = op->stride, p = op->pad;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < n; b++)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++) {
        float *yo = yd + ((b * oh + i) * ow + j) * c;
        for (int64_t ch = 0; ch < c; ch++) yo[ch] = -FLT_MAX;
        for (int u = 0; u < k; u++) {
          int64_t hi = i * s - p + u;
          if (hi < 0 || hi >= h) continue;
          for (int v = 0; v < k; v++) {
            int64_t wi = j * s - p + v;
            if (wi < 0 || wi >= w) continue;
            const float *xi = xd + ((b * h + hi) * w + wi) * c;
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) yo[ch] = xi[ch] > yo[ch] ? xi[ch] : yo[ch];
          }
        }
      }
}

static void maxpool_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_maxpool2d_op *op = (nn_maxpool2d_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  int64_t n = x->dim[0], h = x->dim[1], w = x->dim[2], c = x->dim[3], oh = y->dim[1], ow = y->dim[2];
  const float *xd = x->data, *dy = y->grad;
  int k = op->k, s = op->stride, p = op->pad;
  // Windows overlap within an image, so parallelise over images only.
#pragma omp parallel
  {
    float *best = dp_malloc((size_t)c * 4, "maxpool backward");
    int32_t *arg = dp_malloc((size_t)c * 4, "maxpool backward");   // index within one image
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n; b++) {
      float *dxb = dx + b * h * w * c;
      if (!add) memset(dxb, 0, (size_t)(h * w * c) * 4);
      for (int64_t i = 0; i < oh; i++)
        for (int64_t j = 0; j < ow; j++) {
          // First maximum in row-major window order, as torch: start from the
          // first in-bounds element and replace only on strictly greater.
          int first = 1;
          for (int u = 0; u < k; u++) {
            int64_t hi = i * s - p + u;
            if (hi < 0 || hi >= h) continue;
            for (int v = 0; v < k; v++) {
              int64_t wi = j * s - p + v;
              if (wi < 0 || wi >= w) continue;
              int64_t base = (hi * w + wi) * c;
              const float *xi = xd + b * h * w * c + base;
              if (first) {
                for (int64_t ch = 0; ch < c; ch++) {
                  best[ch] = xi[ch];
                  arg[ch] = (int32_t)(base + ch);
                }
                first = 0;
                continue;
              }
#pragma omp simd
              for (int64_t ch = 0; ch < c; ch++) {
                float xv = xi[ch], bv = best[ch];
                int32_t m = -(int32_t)(xv > bv);   // all ones where x wins: branch-free select
                best[ch] = xv > bv ? xv : bv;
                arg[ch] = ((int32_t)(base + ch) & m) | (arg[ch] & ~m);
              }
            }
          }
          const float *dyo = dy + ((b * oh + i) * ow + j) * c;
          if (!first)
            for (int64_t ch = 0; ch < c; ch++) dxb[arg[ch]] += dyo[ch];
        }
    }
    free(best);
    free(arg);
  }
}

const nn_op_vt maxpool2d_cpu_vt = {"maxpool2d", NULL, maxpool_forward, maxpool_backward, NULL, NULL};
