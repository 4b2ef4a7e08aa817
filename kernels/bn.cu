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

// ---- memory plan helpers (docs/memory.md) ----------------------------------
// The fused ReLU of batchnorm2d_relu keeps a bit mask (bit i % 32 of word
// i / 32 set where y > 0), not y. One warp writes one 32-bit word (ballot);
// the loop bound is uniform per warp, so every lane takes part in the ballot.
__global__ void k_relu_mask_fwd(float *y, uint32_t *mask, int64_t n) {
  int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int64_t nwarps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  int lane = threadIdx.x & 31;
  for (int64_t base = warp * 32; base < n; base += nwarps * 32) {
    int64_t i = base + lane;
    float v = i < n ? y[i] : 0.f;
    unsigned bits = __ballot_sync(0xffffffffu, v > 0.f);
    if (lane == 0) mask[base >> 5] = bits;
    if (i < n) y[i] = v > 0.f ? v : 0.f;
  }
}

__global__ void k_relu_mask_bwd(const uint32_t *mask, float *dy, int64_t n) {
  DP_GRID_STRIDE(i, n) {
    if (!((mask[i >> 5] >> (i & 31)) & 1u)) dy[i] = 0.f;
  }
}

// y = gamma * (x - mean) * inv + beta (+ relu), inv = invstd[c], or
// rsqrt(var[c] + eps) when is_var: the recompute of a BN output from the
// statistics its forward used.
__global__ void k_bn_apply(const float *x, const float *mean, const float *inv_or_var, int is_var, float eps,
                           const float *gamma, const float *beta, float *y, int relu, int64_t pixels, int64_t c) {
  DP_GRID_STRIDE(i, pixels * c) {
    int64_t ch = i % c;
    float inv = is_var ? rsqrtf(inv_or_var[ch] + eps) : inv_or_var[ch];
    float v = gamma[ch] * ((x[i] - mean[ch]) * inv) + beta[ch];
    y[i] = relu && !(v > 0.f) ? 0.f : v;
  }
}

extern "C" int64_t dp_cuda_relu_mask_bytes(int64_t n) { return (n + 31) / 32 * 4; }

extern "C" cudaError_t dp_cuda_relu_mask_fwd(float *y, uint32_t *mask, int64_t n, cudaStream_t s) {
  DP_LAUNCH(k_relu_mask_fwd, n, s, y, mask, n);
}

extern "C" cudaError_t dp_cuda_relu_mask_bwd(const uint32_t *mask, float *dy, int64_t n, cudaStream_t s) {
  DP_LAUNCH(k_relu_mask_bwd, n, s, mask, dy, n);
}

extern "C" cudaError_t dp_cuda_bn_apply(const float *x, const float *mean, const float *inv_or_var, int is_var,
                                        float eps, const float *gamma, const float *beta, float *y, int relu,
                                        int64_t pixels, int64_t c, cudaStream_t s) {
  DP_LAUNCH(k_bn_apply, pixels * c, s, x, mean, inv_or_var, is_var, eps, gamma, beta, y, relu, pixels, c);
}
