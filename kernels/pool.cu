// Global average pooling over the spatial dims of NHWC activations.
#include "backend/cuda/kernels.h"
#include "dp_cuda_common.cuh"

// One thread per (n, c): adjacent threads read adjacent channels (coalesced).
__global__ void k_gap_fwd(const float *x, float *y, int64_t n, int64_t hw, int64_t c) {
  float inv = 1.f / (float)hw;
  DP_GRID_STRIDE(i, n * c) {
    int64_t b = i / c, ch = i - b * c;
    const float *xb = x + b * hw * c + ch;
    float s = 0.f;
    for (int64_t p = 0; p < hw; p++) s += xb[p * c];
    y[i] = s * inv;
  }
}

__global__ void k_gap_bwd(const float *dy, float *dx, int64_t n, int64_t hw, int64_t c, int acc) {
  float inv = 1.f / (float)hw;
  DP_GRID_STRIDE(i, n * hw * c) {
    int64_t ch = i % c, b = i / (hw * c);
    float g = dy[b * c + ch] * inv;
    dx[i] = acc ? dx[i] + g : g;
  }
}

extern "C" cudaError_t dp_cuda_global_avgpool_fwd(const float *x, float *y, int64_t n, int64_t hw,
                                                  int64_t c, cudaStream_t s) {
  if (n * c <= 0 || hw <= 0) return cudaSuccess;
  k_gap_fwd<<<dp_grid_for(n * c, DP_THREADS), DP_THREADS, 0, s>>>(x, y, n, hw, c);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_global_avgpool_bwd(const float *dy, float *dx, int64_t n, int64_t hw,
                                                  int64_t c, int accumulate, cudaStream_t s) {
  if (n * hw * c <= 0) return cudaSuccess;
  k_gap_bwd<<<dp_grid_for(n * hw * c, DP_THREADS), DP_THREADS, 0, s>>>(dy, dx, n, hw, c, accumulate);
  return cudaGetLastError();
}

// ---- max pooling, NHWC, with a saved argmax ----------------------------------
// Forward writes y and the argmax u * k + v of each window (uint8, the first
// maximum in row-major window order, as torch and the CPU backend), so
// backward reads neither x nor y. Padding never wins (windows start from their
// first in-bounds element).
__global__ void k_maxpool_fwd(const float *x, float *y, uint8_t *arg, int64_t n, int64_t h, int64_t w,
                              int64_t c, int64_t oh, int64_t ow, int k, int st, int pad) {
  DP_GRID_STRIDE(i, n * oh * ow * c) {
    int64_t ch = i % c, r = i / c;
    int64_t j = r % ow, q = r / ow;
    int64_t oi = q % oh, b = q / oh;
    float best = 0.f;
    int pos = -1;
    for (int u = 0; u < k; u++) {
      int64_t hi = oi * st - pad + u;
      if (hi < 0 || hi >= h) continue;
      for (int v = 0; v < k; v++) {
        int64_t wi = j * st - pad + v;
        if (wi < 0 || wi >= w) continue;
        float xv = x[((b * h + hi) * w + wi) * c + ch];
        if (pos < 0 || xv > best) {
          best = xv;
          pos = u * k + v;
        }
      }
    }
    y[i] = best;
    arg[i] = (uint8_t)(pos < 0 ? 0 : pos);
  }
}

// Gather form (one thread per input element sums the windows that chose it):
// deterministic, no atomics.
__global__ void k_maxpool_bwd(const float *dy, const uint8_t *arg, float *dx, int acc, int64_t n, int64_t h,
                              int64_t w, int64_t c, int64_t oh, int64_t ow, int k, int st, int pad) {
  DP_GRID_STRIDE(i, n * h * w * c) {
    int64_t ch = i % c, r = i / c;
    int64_t wi = r % w, q = r / w;
    int64_t hi = q % h, b = q / h;
    // Windows oi with oi * st - pad <= hi <= oi * st - pad + k - 1.
    int64_t o0 = hi + pad - k + 1, o1 = hi + pad;
    int64_t i0 = o0 <= 0 ? 0 : (o0 + st - 1) / st, i1 = o1 / st;
    int64_t p0 = wi + pad - k + 1, p1 = wi + pad;
    int64_t j0 = p0 <= 0 ? 0 : (p0 + st - 1) / st, j1 = p1 / st;
    if (i1 >= oh) i1 = oh - 1;
    if (j1 >= ow) j1 = ow - 1;
    float g = 0.f;
    for (int64_t oi = i0; oi <= i1; oi++)
      for (int64_t oj = j0; oj <= j1; oj++) {
        int64_t o = ((b * oh + oi) * ow + oj) * c + ch;
        int want = (int)((hi - (oi * st - pad)) * k + (wi - (oj * st - pad)));
        if (arg[o] == want) g += dy[o];
      }
    dx[i] = acc ? dx[i] + g : g;
  }
}

extern "C" cudaError_t dp_cuda_maxpool_fwd(const float *x, float *y, uint8_t *arg, int64_t n, int64_t h,
                                           int64_t w, int64_t c, int64_t oh, int64_t ow, int k, int stride,
                                           int pad, cudaStream_t s) {
  DP_LAUNCH(k_maxpool_fwd, n * oh * ow * c, s, x, y, arg, n, h, w, c, oh, ow, k, stride, pad);
}

extern "C" cudaError_t dp_cuda_maxpool_bwd(const float *dy, const uint8_t *arg, float *dx, int accumulate,
                                           int64_t n, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow,
                                           int k, int stride, int pad, cudaStream_t s) {
  DP_LAUNCH(k_maxpool_bwd, n * h * w * c, s, dy, arg, dx, accumulate, n, h, w, c, oh, ow, k, stride, pad);
}
