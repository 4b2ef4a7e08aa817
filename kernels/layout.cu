// Layout helpers: strided 2-D copy/add, column sums (broadcast-parameter
// gradients), broadcast add, NHWC <-> NCHW permutes (flatten in torch order).
#include "backend/cuda/kernels.h"
#include "dp_cuda_common.cuh"

__global__ void k_copy2d(float *dst, int64_t dld, const float *src, int64_t sld, int64_t rows,
                         int64_t cols, int acc) {
  DP_GRID_STRIDE(i, rows * cols) {
    int64_t r = i / cols, j = i - r * cols;
    float v = src[r * sld + j];
    float *d = dst + r * dld + j;
    *d = acc ? *d + v : v;
  }
}

// One thread per column, rows summed in order: deterministic.
__global__ void k_colsum(const float *src, int64_t ld, int64_t rows, int64_t cols, float *dst,
                         int acc) {
  DP_GRID_STRIDE(j, cols) {
    float s = 0.f;
    for (int64_t r = 0; r < rows; r++) s += src[r * ld + j];
    dst[j] = acc ? dst[j] + s : s;
  }
}

__global__ void k_add_bcast(const float *x, const float *p, float *y, int64_t rows, int64_t cols) {
  DP_GRID_STRIDE(i, rows * cols) y[i] = x[i] + p[i % cols];
}

// x (N, HW, C) -> y (N, C, HW), or the inverse when inverse = 1 (x (N, C, HW) -> y (N, HW, C)).
__global__ void k_permute(const float *x, float *y, int64_t n, int64_t hw, int64_t c, int inverse,
                          int acc) {
  DP_GRID_STRIDE(i, n * hw * c) {
    // i indexes the output.
    int64_t b, p, ch;
    float v;
    if (!inverse) {  // y[b, ch, p]
      b = i / (c * hw);
      int64_t rem = i - b * c * hw;
      ch = rem / hw;
      p = rem - ch * hw;
      v = x[(b * hw + p) * c + ch];
    } else {  // y[b, p, ch]
      b = i / (hw * c);
      int64_t rem = i - b * hw * c;
      p = rem / c;
      ch = rem - p * c;
      v = x[(b * c + ch) * hw + p];
    }
    y[i] = acc ? y[i] + v : v;
  }
}

extern "C" cudaError_t dp_cuda_copy2d(float *dst, int64_t dld, const float *src, int64_t sld,
                                      int64_t rows, int64_t cols, int accumulate, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (!accumulate && sld >= cols && dld >= cols)  // memcpy2D needs pitch >= width
    return cudaMemcpy2DAsync(dst, (size_t)dld * 4, src, (size_t)sld * 4, (size_t)cols * 4,
                             (size_t)rows, cudaMemcpyDeviceToDevice, s);
  k_copy2d<<<dp_grid_for(rows * cols, DP_THREADS), DP_THREADS, 0, s>>>(dst, dld, src, sld, rows,
                                                                       cols, accumulate);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_colsum(const float *src, int64_t ld, int64_t rows, int64_t cols,
                                      float *dst, int accumulate, cudaStream_t s) {
  if (cols <= 0) return cudaSuccess;
  k_colsum<<<dp_grid_for(cols, DP_THREADS), DP_THREADS, 0, s>>>(src, ld, rows, cols, dst, accumulate);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_add_bcast(const float *x, const float *p, float *y, int64_t rows,
                                         int64_t cols, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  k_add_bcast<<<dp_grid_for(rows * cols, DP_THREADS), DP_THREADS, 0, s>>>(x, p, y, rows, cols);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_nhwc_to_nchw(const float *x, float *y, int64_t n, int64_t hw,
                                            int64_t c, int accumulate, cudaStream_t s) {
  if (n * hw * c <= 0) return cudaSuccess;
  k_permute<<<dp_grid_for(n * hw * c, DP_THREADS), DP_THREADS, 0, s>>>(x, y, n, hw, c, 0, accumulate);
  return cudaGetLastError();
}

extern "C" cudaError_t dp_cuda_nchw_to_nhwc(const float *x, float *y, int64_t n, int64_t hw,
                                            int64_t c, int accumulate, cudaStream_t s) {
  if (n * hw * c <= 0) return cudaSuccess;
  k_permute<<<dp_grid_for(n * hw * c, DP_THREADS), DP_THREADS, 0, s>>>(x, y, n, hw, c, 1, accumulate);
  return cudaGetLastError();
}
