// Row-wise kernels: layernorm (fp32 statistics) and softmax over the last dim.
// One 256-thread block per row; rows beyond the grid are looped over.
#include <math.h>

#include "backend/cuda/kernels.h"
#include "dp_cuda_common.cuh"

// Row chunks of the deterministic dgamma/dbeta column reduction.
#define LN_CHUNKS 64

static inline unsigned rows_grid(int64_t rows) {
  return (unsigned)(rows < 65535LL * 16 ? (rows > 0 ? rows : 1) : 65535LL * 16);
}

__global__ void k_layernorm_fwd(const float *x, const float *gamma, const float *beta, float *y,
                                float *mean, float *rstd, int64_t rows, int64_t d, float eps) {
  __shared__ float sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) s += xr[j];
    float mu = dp_block_sum(s, sh) / (float)d;
    // Second pass on centred values: exact for large means, where E[x^2] - mu^2 cancels.
    float q = 0.f;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      float c = xr[j] - mu;
      q += c * c;
    }
    float var = dp_block_sum(q, sh) / (float)d;
    float rs = rsqrtf(var + eps);
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      float v = (xr[j] - mu) * rs;
      yr[j] = gamma ? v * gamma[j] + (beta ? beta[j] : 0.f) : v;
    }
    if (threadIdx.x == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
__global__ void k_layernorm_bwd_dx(const float *x, const float *dy, const float *gamma,
                                   const float *mean, const float *rstd, float *dx, int acc,
                                   int64_t rows, int64_t d) {
  __shared__ float sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * d, *dyr = dy + r * d;
    float *dxr = dx + r * d;
    float mu = mean[r], rs = rstd[r];
    float s1 = 0.f, s2 = 0.f;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      float g = dyr[j] * (gamma ? gamma[j] : 1.f);
      s1 += g;
      s2 += g * (xr[j] - mu) * rs;
    }
    float m1 = dp_block_sum(s1, sh) / (float)d;
    float m2 = dp_block_sum(s2, sh) / (float)d;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      float g = dyr[j] * (gamma ? gamma[j] : 1.f);
      float xh = (xr[j] - mu) * rs;
      float v = rs * (g - m1 - xh * m2);
      dxr[j] = acc ? dxr[j] + v : v;
    }
  }
}

// partial[c][j] = sum over rows of chunk c of dy * xhat (dgamma) and dy (dbeta).
__global__ void k_layernorm_bwd_partial(const float *x, const float *dy, const float *mean,
                                        const float *rstd, float *partial, int64_t rows,
                                        int64_t d) {
  int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  int chunk = blockIdx.y;
  if (j >= d) return;
  int64_t per = (rows + LN_CHUNKS - 1) / LN_CHUNKS;
  int64_t r0 = chunk * per, r1 = r0 + per < rows ? r0 + per : rows;
  float sg = 0.f, sb = 0.f;
  for (int64_t r = r0; r < r1; r++) {
    float g = dy[r * d + j];
    sg += g * (x[r * d + j] - mean[r]) * rstd[r];
    sb += g;
  }
  partial[(int64_t)chunk * d + j] = sg;
  partial[(int64_t)(LN_CHUNKS + chunk) * d + j] = sb;
}

__global__ void k_layernorm_bwd_final(const float *partial, float *dgamma, float *dbeta, int acc,
                                      int64_t d) {
  int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= d) return;
  float sg = 0.f, sb = 0.f;
  for (int c = 0; c < LN_CHUNKS; c++) {
    sg += partial[(int64_t)c * d + j];
    sb += partial[(int64_t)(LN_CHUNKS + c) * d + j];
  }
  if (dgamma) dgamma[j] = acc ? dgamma[j] + sg : sg;
  if (dbeta) dbeta[j] = acc ? dbeta[j] + sb : sb;
}

__global__ void k_softmax_fwd(const float *x, float *y, int64_t rows, int64_t d) {
  __shared__ float sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) m = fmaxf(m, xr[j]);
    m = dp_block_max(m, sh);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) s += expf(xr[j] - m);
    float inv = 1.f / dp_block_sum(s, sh);
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) yr[j] = expf(xr[j] - m) * inv;
  }
}

__global__ void k_softmax_bwd(const float *y, const float *dy, float *dx, int64_t rows, int64_t d,
                              int acc) {
  __shared__ float sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *yr = y + r * d, *dyr = dy + r * d;
    float *dxr = dx + r * d;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) s += yr[j] * dyr[j];
    float dot = dp_block_sum(s, sh);
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      float v = yr[j] * (dyr[j] - dot);
      dxr[j] = acc ? dxr[j] + v : v;
    }
  }
}

extern "C" cudaError_t dp_cuda_layernorm_fwd(const float *x, const float *gamma, const float *beta,
                                             float *y, float *mean, float *rstd, int64_t rows,
                                             int64_t d, float eps, cudaStream_t s) {
  if (rows <= 0 || d <= 0) return cudaSuccess;
  k_layernorm_fwd<<<rows_grid(rows), DP_THREADS, 0, s>>>(x, gamma, beta, y, mean, rstd, rows, d, eps);
  return cudaGetLastError();
}

extern "C" int64_t dp_cuda_layernorm_bwd_scratch(int64_t d) {
  return 2LL * LN_CHUNKS * d * (int64_t)sizeof(float);
}

extern "C" cudaError_t dp_cuda_layernorm_bwd(const float *x, const float *dy, const float *gamma,
                                             const float *mean, const float *rstd, float *dx,
                                             int acc_x, float *dgamma, float *dbeta, int acc_param,
                                             float *partial, int64_t rows, int64_t d,
                                             cudaStream_t s) {
  if (rows <= 0 || d <= 0) return cudaSuccess;
  if (dx) {
    k_layernorm_bwd_dx<<<rows_grid(rows), DP_THREADS, 0, s>>>(x, dy, gamma, mean, rstd, dx, acc_x,
                                                               rows, d);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  if (dgamma || dbeta) {
    if (!partial) return cudaErrorInvalidValue;
    dim3 grid((unsigned)((d + DP_THREADS - 1) / DP_THREADS), LN_CHUNKS);
    k_layernorm_bwd_partial<<<grid, DP_THREADS, 0, s>>>(x, dy, mean, rstd, partial, rows, d);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    k_layernorm_bwd_final<<<grid.x, DP_THREADS, 0, s>>>(partial, dgamma, dbeta, acc_param, d);
    return cudaGetLastError();
  }
  return cudaSuccess;
}

extern "C" cudaError_t dp_cuda_softmax_fwd(const float *x, float *y, int64_t rows, int64_t d,
                                           cudaStream_t s) {
  if (rows <= 0 || d <= 0) return cudaSuccess;
  k_softmax_fwd<<<rows_grid(rows), DP_THREADS, 0, s>>>(x, y, rows, d);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_softmax_bwd(const float *y, const float *dy, float *dx, int64_t rows,
                                           int64_t d, int accumulate, cudaStream_t s) {
  if (rows <= 0 || d <= 0) return cudaSuccess;
  k_softmax_bwd<<<rows_grid(rows), DP_THREADS, 0, s>>>(y, dy, dx, rows, d, accumulate);
  return cudaGetLastError();
}

// y from x and the mean / rstd the forward saved: the recompute of a
// layernorm output in backward (the same expression as k_layernorm_fwd).
__global__ void k_layernorm_apply(const float *x, const float *gamma, const float *beta, const float *mean,
                                  const float *rstd, float *y, int64_t rows, int64_t d) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float mu = mean[r], rs = rstd[r];
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      float v = (xr[j] - mu) * rs;
      yr[j] = gamma ? v * gamma[j] + (beta ? beta[j] : 0.f) : v;
    }
  }
}

extern "C" cudaError_t dp_cuda_layernorm_apply(const float *x, const float *gamma, const float *beta,
                                               const float *mean, const float *rstd, float *y, int64_t rows,
                                               int64_t d, cudaStream_t s) {
  if (rows <= 0 || d <= 0) return cudaSuccess;
  k_layernorm_apply<<<rows_grid(rows), DP_THREADS, 0, s>>>(x, gamma, beta, mean, rstd, y, rows, d);
  return cudaGetLastError();
}
