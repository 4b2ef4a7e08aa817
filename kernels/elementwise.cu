// Elementwise kernels. C-style CUDA: extern "C" launchers, no templates in the API.
#include <cuda_runtime.h>
#include <stdint.h>

__global__ void k_relu_fwd(const float *x, float *y, int64_t n) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  for (; i < n; i += (int64_t)gridDim.x * blockDim.x) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

extern "C" cudaError_t dp_cuda_relu_fwd(const float *x, float *y, int64_t n, cudaStream_t s) {
  int threads = 256;
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65535 * 8) blocks = 65535 * 8;
  k_relu_fwd<<<(unsigned)blocks, threads, 0, s>>>(x, y, n);
  return cudaGetLastError();
}
