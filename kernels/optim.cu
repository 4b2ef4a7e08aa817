// Fused optimizer updates over the flat fp32 parameter buffer (master
// weights), the global gradient norm and the inf/NaN check of the fp16 loss
// scaler. Per-parameter-group hyper-parameters come from a small segment table.
#include <cuda_bf16.h>
#include <math.h>

#include "backend/cuda/kernels.h"
#include "dp_cuda_common.cuh"

// Fixed grid of the norm's first pass: the reduction order never depends on
// the device, so the norm is bitwise reproducible.
#define NORM_BLOCKS 1024

// Segment holding element i, or -1 (binary search; segments sorted by lo).
__device__ __forceinline__ int find_segment(const dp_optim_segment *segs, int nsegs, int64_t i) {
  int lo = 0, hi = nsegs - 1;
  while (lo <= hi) {
    int mid = (lo + hi) >> 1;
    if (i < segs[mid].lo) hi = mid - 1;
    else if (i >= segs[mid].hi) lo = mid + 1;
    else return mid;
  }
  return -1;
}

__global__ void k_sgd(float *p, const float *g, float *mom, uint16_t *p_lp,
                      const dp_optim_segment *segs, int nsegs, int64_t n, float lr, float mu,
                      int nesterov, int first, const float *gscale, const int32_t *skip) {
  if (skip && skip[0]) return;
  float gs = gscale ? gscale[0] : 1.f;
  DP_GRID_STRIDE(i, n) {
    int sg = find_segment(segs, nsegs, i);
    if (sg < 0 || segs[sg].frozen) continue;
    float w = p[i];
    float d = g[i] * gs + segs[sg].weight_decay * w;
    if (mu != 0.f) {
      // torch initialises the buffer with the first gradient (dampening 0).
      float b = first ? d : mu * mom[i] + d;
      mom[i] = b;
      d = nesterov ? d + mu * b : b;
    }
    w -= lr * segs[sg].lr_mult * d;
    p[i] = w;
    if (p_lp) p_lp[i] = __bfloat16_as_ushort(__float2bfloat16_rn(w));
  }
}

__global__ void k_adamw(float *p, const float *g, float *m, float *v, uint16_t *p_lp,
                        const dp_optim_segment *segs, int nsegs, int64_t n, float lr, float b1,
                        float b2, float eps, const float *gscale, const int32_t *skip) {
  if (skip && skip[0]) return;
  float gs = gscale ? gscale[0] : 1.f;
  DP_GRID_STRIDE(i, n) {
    int sg = find_segment(segs, nsegs, i);
    if (sg < 0 || segs[sg].frozen) continue;
    float a = lr * segs[sg].lr_mult;
    float w = p[i] * (1.f - a * segs[sg].weight_decay);
    float gr = g[i] * gs;
    float mi = b1 * m[i] + (1.f - b1) * gr;
    float vi = b2 * v[i] + (1.f - b2) * gr * gr;
    m[i] = mi;
    v[i] = vi;
    // Bias corrections per segment: each tensor counts its own steps.
    w -= (a / segs[sg].bc1) * mi / (sqrtf(vi) / segs[sg].sqrt_bc2 + eps);
    p[i] = w;
    if (p_lp) p_lp[i] = __bfloat16_as_ushort(__float2bfloat16_rn(w));
  }
}

__global__ void k_sumsq_partial(const float *x, int64_t n, float in_scale, double *partial) {
  __shared__ double sh[32];
  double s = 0.0;
  DP_GRID_STRIDE(i, n) {
    double v = (double)(x[i] * in_scale);
    s += v * v;
  }
  s = dp_block_sum_d(s, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void k_norm_final(const double *partial, int nparts, float in_scale, float max_norm,
                             float *norm, float *gscale) {
  __shared__ double sh[32];
  double s = 0.0;
  for (int i = threadIdx.x; i < nparts; i += blockDim.x) s += partial[i];
  s = dp_block_sum_d(s, sh);
  if (threadIdx.x == 0) {
    float nv = (float)sqrt(s);
    norm[0] = nv;
    if (gscale) {
      float clip = 1.f;
      // torch clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to 1.
      if (max_norm > 0.f) clip = fminf(1.f, max_norm / (nv + 1e-6f));
      gscale[0] = in_scale * clip;
    }
  }
}

__global__ void k_nonfinite(const float *x, int64_t n, int32_t *found) {
  DP_GRID_STRIDE(i, n) {
    if (!isfinite(x[i])) found[0] = 1;  // benign race: every writer stores 1
  }
}

__global__ void k_scale(float *x, int64_t n, float a) {
  DP_GRID_STRIDE(i, n) x[i] *= a;
}

extern "C" cudaError_t dp_cuda_sgd_step(float *param, const float *grad, float *mom,
                                        uint16_t *param_lp, const dp_optim_segment *segs,
                                        int nsegs, int64_t n, float lr, float momentum,
                                        int nesterov, int first_step, const float *gscale,
                                        const int32_t *skip, cudaStream_t s) {
  if (n <= 0 || nsegs <= 0) return cudaSuccess;
  if (momentum != 0.f && !mom) return cudaErrorInvalidValue;
  k_sgd<<<dp_grid_for(n, DP_THREADS), DP_THREADS, 0, s>>>(param, grad, mom, param_lp, segs, nsegs,
                                                          n, lr, momentum, nesterov, first_step,
                                                          gscale, skip);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_adamw_step(float *param, const float *grad, float *m, float *v,
                                          uint16_t *param_lp, const dp_optim_segment *segs,
                                          int nsegs, int64_t n, float lr, float beta1, float beta2,
                                          float eps, const float *gscale, const int32_t *skip,
                                          cudaStream_t s) {
  if (n <= 0 || nsegs <= 0) return cudaSuccess;
  k_adamw<<<dp_grid_for(n, DP_THREADS), DP_THREADS, 0, s>>>(param, grad, m, v, param_lp, segs,
                                                            nsegs, n, lr, beta1, beta2, eps, gscale,
                                                            skip);
  return cudaGetLastError();
}

extern "C" int64_t dp_cuda_norm_scratch(void) { return NORM_BLOCKS * (int64_t)sizeof(double); }

extern "C" cudaError_t dp_cuda_grad_norm(const float *x, int64_t n, float in_scale, float max_norm,
                                         double *partial, float *norm, float *gscale,
                                         cudaStream_t s) {
  k_sumsq_partial<<<NORM_BLOCKS, DP_THREADS, 0, s>>>(x, n > 0 ? n : 0, in_scale, partial);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  k_norm_final<<<1, DP_THREADS, 0, s>>>(partial, NORM_BLOCKS, in_scale, max_norm, norm, gscale);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_nonfinite_check(const float *x, int64_t n, int32_t *found,
                                               cudaStream_t s) {
  cudaError_t e = cudaMemsetAsync(found, 0, sizeof(int32_t), s);
  if (e != cudaSuccess || n <= 0) return e;
  k_nonfinite<<<dp_grid_for(n, DP_THREADS), DP_THREADS, 0, s>>>(x, n, found);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_scale_inplace(float *x, int64_t n, float a, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  k_scale<<<dp_grid_for(n, DP_THREADS), DP_THREADS, 0, s>>>(x, n, a);
  return cudaGetLastError();
}
