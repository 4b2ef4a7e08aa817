// Elementwise kernels: relu, add, add+relu, dropout, exact GELU.
// C-style CUDA: extern "C" launchers (declared in backend/cuda/kernels.h).
#include <math.h>

#include "backend/cuda/dropout_hash.h"
#include "backend/cuda/kernels.h"
#include "dp_cuda_common.cuh"

__global__ void k_relu_fwd(const float *x, float *y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

__global__ void k_relu_bwd(const float *y, const float *dy, float *dx, int64_t n, int acc) {
  DP_GRID_STRIDE(i, n) {
    float g = y[i] > 0.f ? dy[i] : 0.f;
    dx[i] = acc ? dx[i] + g : g;
  }
}

__global__ void k_add_fwd(const float *a, const float *b, float *y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

__global__ void k_grad_pass(const float *dy, float *dx, int64_t n, int acc) {
  DP_GRID_STRIDE(i, n) dx[i] = acc ? dx[i] + dy[i] : dy[i];
}

__global__ void k_add_relu_fwd(const float *a, const float *b, float *y, int64_t n) {
  DP_GRID_STRIDE(i, n) {
    float v = a[i] + b[i];
    y[i] = v > 0.f ? v : 0.f;
  }
}

__global__ void k_add_relu_bwd(const float *y, const float *dy, float *da, int acc_a, float *db,
                               int acc_b, int64_t n) {
  DP_GRID_STRIDE(i, n) {
    float g = y[i] > 0.f ? dy[i] : 0.f;
    if (da) da[i] = acc_a ? da[i] + g : g;
    if (db) db[i] = acc_b ? db[i] + g : g;
  }
}

__global__ void k_dropout_fwd(const float *x, float *y, uint8_t *mask, int64_t n, float p,
                              float scale, uint64_t seed, uint64_t stream) {
  DP_GRID_STRIDE(i, n) {
    int keep = dp_dropout_keep(seed, stream, (uint64_t)i, p);
    mask[i] = (uint8_t)keep;
    y[i] = keep ? x[i] * scale : 0.f;
  }
}

__global__ void k_dropout_bwd(const float *dy, const uint8_t *mask, float *dx, int64_t n,
                              float scale, int acc) {
  DP_GRID_STRIDE(i, n) {
    float g = mask[i] ? dy[i] * scale : 0.f;
    dx[i] = acc ? dx[i] + g : g;
  }
}

// Phi(x) = 0.5 * (1 + erf(x / sqrt(2))), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
__global__ void k_gelu_fwd(const float *x, float *y, int64_t n) {
  DP_GRID_STRIDE(i, n) {
    float v = x[i];
    y[i] = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  }
}

__global__ void k_gelu_bwd(const float *x, const float *dy, float *dx, int64_t n, int acc) {
  DP_GRID_STRIDE(i, n) {
    float v = x[i];
    float cdf = 0.5f * (1.f + erff(v * 0.70710678118654752f));
    float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
    float g = dy[i] * (cdf + v * pdf);
    dx[i] = acc ? dx[i] + g : g;
  }
}

extern "C" cudaError_t dp_cuda_relu_fwd(const float *x, float *y, int64_t n, cudaStream_t s) {
  DP_LAUNCH(k_relu_fwd, n, s, x, y, n);
}
extern "C" cudaError_t dp_cuda_relu_bwd(const float *y, const float *dy, float *dx, int64_t n,
                                        int accumulate, cudaStream_t s) {
  DP_LAUNCH(k_relu_bwd, n, s, y, dy, dx, n, accumulate);
}
extern "C" cudaError_t dp_cuda_add_fwd(const float *a, const float *b, float *y, int64_t n,
                                       cudaStream_t s) {
  DP_LAUNCH(k_add_fwd, n, s, a, b, y, n);
}
extern "C" cudaError_t dp_cuda_grad_pass(const float *dy, float *dx, int64_t n, int accumulate,
                                         cudaStream_t s) {
  if (!accumulate) {
    if (n <= 0 || dx == dy) return cudaSuccess;
    return cudaMemcpyAsync(dx, dy, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice, s);
  }
  DP_LAUNCH(k_grad_pass, n, s, dy, dx, n, accumulate);
}
extern "C" cudaError_t dp_cuda_add_relu_fwd(const float *a, const float *b, float *y, int64_t n,
                                            cudaStream_t s) {
  DP_LAUNCH(k_add_relu_fwd, n, s, a, b, y, n);
}
extern "C" cudaError_t dp_cuda_add_relu_bwd(const float *y, const float *dy, float *da, int acc_a,
                                            float *db, int acc_b, int64_t n, cudaStream_t s) {
  if (!da && !db) return cudaSuccess;
  DP_LAUNCH(k_add_relu_bwd, n, s, y, dy, da, acc_a, db, acc_b, n);
}
extern "C" cudaError_t dp_cuda_dropout_fwd(const float *x, float *y, uint8_t *mask, int64_t n,
                                           float p, uint64_t seed, uint64_t stream,
                                           cudaStream_t s) {
  if (!(p >= 0.f && p < 1.f)) return cudaErrorInvalidValue;
  float scale = 1.f / (1.f - p);
  DP_LAUNCH(k_dropout_fwd, n, s, x, y, mask, n, p, scale, seed, stream);
}
extern "C" cudaError_t dp_cuda_dropout_bwd(const float *dy, const uint8_t *mask, float *dx,
                                           int64_t n, float p, int accumulate, cudaStream_t s) {
  if (!(p >= 0.f && p < 1.f)) return cudaErrorInvalidValue;
  float scale = 1.f / (1.f - p);
  DP_LAUNCH(k_dropout_bwd, n, s, dy, mask, dx, n, scale, accumulate);
}
extern "C" cudaError_t dp_cuda_gelu_fwd(const float *x, float *y, int64_t n, cudaStream_t s) {
  DP_LAUNCH(k_gelu_fwd, n, s, x, y, n);
}
extern "C" cudaError_t dp_cuda_gelu_bwd(const float *x, const float *dy, float *dx, int64_t n,
                                        int accumulate, cudaStream_t s) {
  DP_LAUNCH(k_gelu_bwd, n, s, x, dy, dx, n, accumulate);
}
