// Backward of batchnorm in eval mode (running statistics; frozen-BN
// fine-tuning), which cuDNN's training backward does not cover. NHWC.
#include <math.h>

#include "backend/cuda/kernels.h"
#include "dp_cuda_common.cuh"

__global__ void k_bn_eval_dx(const float *dy, const float *gamma, const float *rv, float eps, float *dx,
                             int acc, int64_t pixels, int64_t c) {
  DP_GRID_STRIDE(i, pixels * c) {
    int64_t ch = i % c;
    float v = dy[i] * gamma[ch] * rsqrtf(rv[ch] + eps);
    dx[i] = acc ? dx[i] + v : v;
  }
}

// One thread per channel; pixels summed in order (deterministic).
__global__ void k_bn_eval_param(const float *x, const float *dy, const float *rm, const float *rv, float eps,
                                float *dgamma, float *dbeta, int acc, int64_t pixels, int64_t c) {
  DP_GRID_STRIDE(ch, c) {
    float rs = rsqrtf(rv[ch] + eps), m = rm[ch];
    float sg = 0.f, sb = 0.f;
    for (int64_t p = 0; p < pixels; p++) {
      float d = dy[p * c + ch];
      sg += d * (x[p * c + ch] - m) * rs;
      sb += d;
    }
    if (dgamma) dgamma[ch] = acc ? dgamma[ch] + sg : sg;
    if (dbeta) dbeta[ch] = acc ? dbeta[ch] + sb : sb;
  }
}

extern "C" cudaError_t dp_cuda_bn_eval_bwd(const float *x, const float *dy, const float *gamma,
                                           const float *rm, const float *rv, float eps, float *dx, int acc_x,
                                           float *dgamma, float *dbeta, int acc_param, int64_t pixels,
                                           int64_t c, cudaStream_t s) {
  if (pixels <= 0 || c <= 0) return cudaSuccess;
  if (dx) {
    k_bn_eval_dx<<<dp_grid_for(pixels * c, DP_THREADS), DP_THREADS, 0, s>>>(dy, gamma, rv, eps, dx, acc_x, pixels, c);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  if (dgamma || dbeta) {
    k_bn_eval_param<<<dp_grid_for(c, 128), 128, 0, s>>>(x, dy, rm, rv, eps, dgamma, dbeta, acc_param, pixels, c);
    return cudaGetLastError();
  }
  return cudaSuccess;
}
