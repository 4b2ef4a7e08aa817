// Softmax cross-entropy with label smoothing, class weights and soft targets
// (torch semantics, reduction='mean'; see backend/cuda/kernels.h). The batch
// reduction runs in one block in a fixed order, so the loss is deterministic.
#include <math.h>

#include "backend/cuda/kernels.h"
#include "dp_cuda_common.cuh"

static inline unsigned rows_grid(int64_t rows) {
  return (unsigned)(rows < 65535LL * 16 ? (rows > 0 ? rows : 1) : 65535LL * 16);
}

__device__ __forceinline__ int row_counts(const int32_t *labels, int64_t r, int64_t num_valid) {
  return r < num_valid && (!labels || labels[r] >= 0);
}

// Per row: lse[r], row_loss[r] = sum_k q_k (lse - z_k), row_w[r] = w_y (hard) or 1 (soft).
__global__ void k_xent_rows(const float *z, const int32_t *labels, const float *soft,
                            const float *w, float eps, int64_t n, int64_t c, int64_t num_valid,
                            float *lse, float *row_loss, float *row_w) {
  __shared__ float sh[32];
  float inv_c = 1.f / (float)c;
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const float *zr = z + r * c;
    float m = -INFINITY;
    for (int64_t k = threadIdx.x; k < c; k += blockDim.x) m = fmaxf(m, zr[k]);
    m = dp_block_max(m, sh);
    float s = 0.f;
    for (int64_t k = threadIdx.x; k < c; k += blockDim.x) s += expf(zr[k] - m);
    float l = m + logf(dp_block_sum(s, sh));
    int counts = row_counts(labels, r, num_valid);
    float acc = 0.f;
    if (counts) {
      if (soft) {
        const float *tr = soft + r * c;
        for (int64_t k = threadIdx.x; k < c; k += blockDim.x)
          acc += (w ? w[k] : 1.f) * ((1.f - eps) * tr[k] + eps * inv_c) * (l - zr[k]);
      } else if (eps > 0.f) {
        for (int64_t k = threadIdx.x; k < c; k += blockDim.x) acc += (w ? w[k] : 1.f) * (l - zr[k]);
        acc *= eps * inv_c;
      }
    }
    acc = dp_block_sum(acc, sh);
    if (threadIdx.x == 0) {
      lse[r] = l;
      float rl = 0.f, rw = 0.f;
      if (counts) {
        if (soft) {
          rl = acc;
          rw = 1.f;
        } else {
          int32_t y = labels[r];
          if (y >= c) {
            rl = NAN;  // bad label: surface it as a NaN loss instead of reading out of bounds
            rw = 1.f;
          } else {
            float wy = w ? w[y] : 1.f;
            rl = (1.f - eps) * wy * (l - zr[y]) + acc;
            rw = wy;
          }
        }
      }
      row_loss[r] = rl;
      row_w[r] = rw;
    }
  }
}

__global__ void k_xent_reduce(const float *row_loss, const float *row_w, int64_t n, float *denom,
                              float *loss) {
  __shared__ double sh[32];
  double a = 0.0, b = 0.0;
  for (int64_t r = threadIdx.x; r < n; r += blockDim.x) {
    a += row_loss[r];
    b += row_w[r];
  }
  a = dp_block_sum_d(a, sh);
  b = dp_block_sum_d(b, sh);
  if (threadIdx.x == 0) {
    denom[0] = (float)b;
    loss[0] = b > 0.0 ? (float)(a / b) : 0.f;  // no counted rows: 0, like the CPU op
  }
}

__global__ void k_xent_bwd(const float *z, const int32_t *labels, const float *soft, const float *w,
                           float eps, int64_t n, int64_t c, int64_t num_valid, const float *lse,
                           const float *denom, const float *dloss, float *dz, int acc) {
  __shared__ float sh[32];
  float inv_c = 1.f / (float)c;
  float scale = denom[0] > 0.f ? dloss[0] / denom[0] : 0.f;
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const float *zr = z + r * c;
    float *dr = dz + r * c;
    int counts = row_counts(labels, r, num_valid);
    if (counts && !soft && labels[r] >= c) counts = 0;
    if (!counts) {
      for (int64_t k = threadIdx.x; k < c; k += blockDim.x)
        if (!acc) dr[k] = 0.f;
      continue;
    }
    float l = lse[r];
    // Q = sum_k q_k.
    float qs = 0.f;
    int32_t y = soft ? -1 : labels[r];
    if (soft) {
      const float *tr = soft + r * c;
      for (int64_t k = threadIdx.x; k < c; k += blockDim.x)
        qs += (w ? w[k] : 1.f) * ((1.f - eps) * tr[k] + eps * inv_c);
    } else if (w) {
      for (int64_t k = threadIdx.x; k < c; k += blockDim.x) qs += w[k];
      qs *= eps * inv_c;
    }
    qs = dp_block_sum(qs, sh);
    if (!soft) qs += w ? (1.f - eps) * w[y] : 1.f;  // unweighted: (1 - eps) + eps
    for (int64_t k = threadIdx.x; k < c; k += blockDim.x) {
      float wk = w ? w[k] : 1.f;
      float q;
      if (soft) q = wk * ((1.f - eps) * soft[r * c + k] + eps * inv_c);
      else q = (k == y ? (1.f - eps) * wk : 0.f) + eps * inv_c * wk;
      float g = scale * (qs * expf(zr[k] - l) - q);
      dr[k] = acc ? dr[k] + g : g;
    }
  }
}

extern "C" cudaError_t dp_cuda_xent_fwd(const float *logits, const int32_t *labels,
                                        const float *soft, const float *weights, float smoothing,
                                        int64_t n, int64_t c, int64_t num_valid, float *lse,
                                        float *denom, float *row_scratch, float *loss,
                                        cudaStream_t s) {
  if (n <= 0 || c <= 0 || (!labels && !soft)) return cudaErrorInvalidValue;
  k_xent_rows<<<rows_grid(n), DP_THREADS, 0, s>>>(logits, labels, soft, weights, smoothing, n, c,
                                                  num_valid, lse, row_scratch, row_scratch + n);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  k_xent_reduce<<<1, 1024, 0, s>>>(row_scratch, row_scratch + n, n, denom, loss);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_xent_bwd(const float *logits, const int32_t *labels,
                                        const float *soft, const float *weights, float smoothing,
                                        int64_t n, int64_t c, int64_t num_valid, const float *lse,
                                        const float *denom, const float *dloss, float *dlogits,
                                        int accumulate, cudaStream_t s) {
  if (n <= 0 || c <= 0 || (!labels && !soft)) return cudaErrorInvalidValue;
  k_xent_bwd<<<rows_grid(n), DP_THREADS, 0, s>>>(logits, labels, soft, weights, smoothing, n, c,
                                                 num_valid, lse, denom, dloss, dlogits, accumulate);
  return cudaGetLastError();
}
