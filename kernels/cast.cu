// Precision casts and the uint8 NHWC -> normalised input conversion.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/kernels.h"
#include "dp_cuda_common.cuh"

__global__ void k_f32_to_bf16(const float *x, uint16_t *y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] = __bfloat16_as_ushort(__float2bfloat16_rn(x[i]));
}
__global__ void k_bf16_to_f32(const uint16_t *x, float *y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] = __bfloat162float(__ushort_as_bfloat16(x[i]));
}
__global__ void k_bf16_to_f32_acc(const uint16_t *x, float *y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] += __bfloat162float(__ushort_as_bfloat16(x[i]));
}
__global__ void k_f16_to_f32_acc(const uint16_t *x, float *y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] += __half2float(__ushort_as_half(x[i]));
}
__global__ void k_f32_to_f16(const float *x, uint16_t *y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] = __half_as_ushort(__float2half_rn(x[i]));
}
__global__ void k_f16_to_f32(const uint16_t *x, float *y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] = __half2float(__ushort_as_half(x[i]));
}

// Per-channel affine folded into a*x + b: a = 1 / (255 std), b = -mean / std.
// Channel constants are kernel arguments (at most 4 channels), so no device
// copy of mean/std is needed.
typedef struct {
  float a[4], b[4];
} norm_consts;

__global__ void k_input_f32(const uint8_t *x, float *y, int64_t pixels, int c_in, int c_out,
                            norm_consts k) {
  int64_t n = pixels * c_out;
  DP_GRID_STRIDE(i, n) {
    int64_t p = i / c_out;
    int c = (int)(i - p * c_out);
    int ci = c_in == 1 ? 0 : c;
    y[i] = (float)x[p * c_in + ci] * k.a[c] + k.b[c];
  }
}
__global__ void k_input_bf16(const uint8_t *x, uint16_t *y, int64_t pixels, int c_in, int c_out,
                             norm_consts k) {
  int64_t n = pixels * c_out;
  DP_GRID_STRIDE(i, n) {
    int64_t p = i / c_out;
    int c = (int)(i - p * c_out);
    int ci = c_in == 1 ? 0 : c;
    float v = (float)x[p * c_in + ci] * k.a[c] + k.b[c];
    y[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
}

static cudaError_t make_consts(int c_in, int c_out, const float *mean, const float *std,
                               norm_consts *k) {
  if (c_out < 1 || c_out > 4 || !(c_in == c_out || c_in == 1)) return cudaErrorInvalidValue;
  for (int c = 0; c < 4; c++) {
    float m = c < c_out ? mean[c] : 0.f, sd = c < c_out ? std[c] : 1.f;
    if (!(sd > 0.f)) return cudaErrorInvalidValue;
    k->a[c] = 1.f / (255.f * sd);
    k->b[c] = -m / sd;
  }
  return cudaSuccess;
}

extern "C" cudaError_t dp_cuda_f32_to_bf16(const float *x, uint16_t *y, int64_t n, cudaStream_t s) {
  DP_LAUNCH(k_f32_to_bf16, n, s, x, y, n);
}
extern "C" cudaError_t dp_cuda_bf16_to_f32(const uint16_t *x, float *y, int64_t n, cudaStream_t s) {
  DP_LAUNCH(k_bf16_to_f32, n, s, x, y, n);
}
extern "C" cudaError_t dp_cuda_bf16_to_f32_acc(const uint16_t *x, float *y, int64_t n, int accumulate,
                                                cudaStream_t s) {
  if (!accumulate) return dp_cuda_bf16_to_f32(x, y, n, s);
  DP_LAUNCH(k_bf16_to_f32_acc, n, s, x, y, n);
}
extern "C" cudaError_t dp_cuda_f16_to_f32_acc(const uint16_t *x, float *y, int64_t n, int accumulate,
                                               cudaStream_t s) {
  if (!accumulate) return dp_cuda_f16_to_f32(x, y, n, s);
  DP_LAUNCH(k_f16_to_f32_acc, n, s, x, y, n);
}
extern "C" cudaError_t dp_cuda_f32_to_f16(const float *x, uint16_t *y, int64_t n, cudaStream_t s) {
  DP_LAUNCH(k_f32_to_f16, n, s, x, y, n);
}
extern "C" cudaError_t dp_cuda_f16_to_f32(const uint16_t *x, float *y, int64_t n, cudaStream_t s) {
  DP_LAUNCH(k_f16_to_f32, n, s, x, y, n);
}
extern "C" cudaError_t dp_cuda_input_u8_to_f32(const uint8_t *x, float *y, int64_t pixels, int c_in,
                                               int c_out, const float *mean, const float *std,
                                               cudaStream_t s) {
  norm_consts k;
  cudaError_t e = make_consts(c_in, c_out, mean, std, &k);
  if (e != cudaSuccess) return e;
  DP_LAUNCH(k_input_f32, pixels * c_out, s, x, y, pixels, c_in, c_out, k);
}
extern "C" cudaError_t dp_cuda_input_u8_to_bf16(const uint8_t *x, uint16_t *y, int64_t pixels,
                                                int c_in, int c_out, const float *mean,
                                                const float *std, cudaStream_t s) {
  norm_consts k;
  cudaError_t e = make_consts(c_in, c_out, mean, std, &k);
  if (e != cudaSuccess) return e;
  DP_LAUNCH(k_input_bf16, pixels * c_out, s, x, y, pixels, c_in, c_out, k);
}
