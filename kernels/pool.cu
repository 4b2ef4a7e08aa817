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
