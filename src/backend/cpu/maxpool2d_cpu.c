// maxpool2d on the CPU, NHWC, vectorised over channels. Forward saves the
// argmax of each window (uint8 u * k + v in y's extra: the first maximum in
// row-major window order, as torch), so backward scatters dy without reading
// x or y.
#include <stdint.h>
#include <string.h>

#include "backend/cpu/dnnl_util.h"
#include "nn/op_maxpool2d.h"

static void maxpool_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_maxpool2d_op *op = (nn_maxpool2d_op *)o;
  const nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  int64_t n = x->dim[0], h = x->dim[1], w = x->dim[2], c = x->dim[3], oh = y->dim[1], ow = y->dim[2];
  const float *xd = x->data;
  float *yd = y->data;
  uint8_t *arg = y->extra;   // (N, OH, OW, C)
  int k = op->k, s = op->stride, p = op->pad;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < n; b++)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++) {
        int64_t o_off = ((b * oh + i) * ow + j) * c;
        float *yo = yd + o_off;
        uint8_t *ao = arg + o_off;
        // Start from the first in-bounds element and replace only on strictly
        // greater: the first maximum wins (torch's tie rule).
        int first = 1;
        for (int u = 0; u < k; u++) {
          int64_t hi = i * s - p + u;
          if (hi < 0 || hi >= h) continue;
          for (int v = 0; v < k; v++) {
            int64_t wi = j * s - p + v;
            if (wi < 0 || wi >= w) continue;
            const float *xi = xd + ((b * h + hi) * w + wi) * c;
            uint8_t pos = (uint8_t)(u * k + v);
            if (first) {
              memcpy(yo, xi, (size_t)c * 4);
              memset(ao, pos, (size_t)c);
              first = 0;
              continue;
            }
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) {
              int win = xi[ch] > yo[ch];   // branch-free select
              yo[ch] = win ? xi[ch] : yo[ch];
              ao[ch] = win ? pos : ao[ch];
            }
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
  const float *dy = y->grad;
  const uint8_t *arg = y->extra;
  int k = op->k, s = op->stride, p = op->pad;
  // Windows overlap within an image, so parallelise over images only.
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n; b++) {
    float *dxb = dx + b * h * w * c;
    if (!add) memset(dxb, 0, (size_t)(h * w * c) * 4);
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++) {
        int64_t o_off = ((b * oh + i) * ow + j) * c;
        const float *dyo = dy + o_off;
        const uint8_t *ao = arg + o_off;
        for (int64_t ch = 0; ch < c; ch++) {
          int u = ao[ch] / k, v = ao[ch] % k;
          int64_t hi = i * s - p + u, wi = j * s - p + v;   // in bounds by construction
          dxb[(hi * w + wi) * c + ch] += dyo[ch];
        }
      }
  }
}

const nn_op_vt maxpool2d_cpu_vt = {"maxpool2d", NULL, maxpool_forward, maxpool_backward, NULL, NULL};
