// Shared device helpers for kernels/*.cu: grid sizing and block reductions.
#ifndef DP_KERNELS_COMMON_CUH
#define DP_KERNELS_COMMON_CUH
#include <cuda_runtime.h>
#include <stdint.h>

#define DP_THREADS 256

// Grid-stride launch size: enough blocks to fill the GPU, capped so the
// 32-bit grid dimension never overflows for huge n.
static inline unsigned dp_grid_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 65535LL * 16) b = 65535LL * 16;
  return (unsigned)b;
}

// Body of an extern "C" launcher: a grid-stride kernel over n elements on
// stream s; an empty launch succeeds, a failed one returns the launch error.
#define DP_LAUNCH(kern, n, s, ...)                                             \
  do {                                                                         \
    if ((n) <= 0) return cudaSuccess;                                          \
    kern<<<dp_grid_for((n), DP_THREADS), DP_THREADS, 0, (s)>>>(__VA_ARGS__);   \
    return cudaGetLastError();                                                 \
  } while (0)

#define DP_GRID_STRIDE(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float dp_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float dp_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ double dp_warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide sum/max; every thread gets the result. `sh` holds 32 values.
// The reduction order is fixed, so results are bitwise reproducible.
__device__ __forceinline__ float dp_block_sum(float v, float *sh) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = dp_warp_sum(v);
  __syncthreads();  // sh may still be read from a previous call
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : 0.f;
  return dp_warp_sum(v);
}
__device__ __forceinline__ float dp_block_max(float v, float *sh) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = dp_warp_max(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : -INFINITY;
  return dp_warp_max(v);
}
__device__ __forceinline__ double dp_block_sum_d(double v, double *sh) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = dp_warp_sum_d(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : 0.0;
  return dp_warp_sum_d(v);
}
#endif
