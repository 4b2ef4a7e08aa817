// Small helpers for the GPU tests: skip without a device, poisoned device
// buffers (0xFF bytes = NaN floats, so unwritten outputs fail comparisons),
// uploads and downloads.
#ifndef DP_TESTS_GPU_UTIL_H
#define DP_TESTS_GPU_UTIL_H
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_backend.h"
#include "testutil.h"

static inline void gu_require_gpu(void) {
  char msg[256];
  if (cuda_device_probe(msg, sizeof msg) == 0) {
    char why[300];
    snprintf(why, sizeof why, "no CUDA device (%s)", msg);
    tu_skip(why);
  }
}
static inline void *gu_poison(int64_t bytes) {
  void *p = NULL;
  CUDA_CHECK(cudaMalloc(&p, (size_t)(bytes > 0 ? bytes : 4)), "test alloc");
  CUDA_CHECK(cudaMemset(p, 0xFF, (size_t)(bytes > 0 ? bytes : 4)), "test poison");
  // The backend's streams are non-blocking: they do not order after the
  // legacy default stream, so finish the poison before anything else runs.
  CUDA_CHECK(cudaDeviceSynchronize(), "test poison");
  return p;
}
static inline void *gu_up(const void *h, int64_t bytes) {
  void *p = gu_poison(bytes);
  CUDA_CHECK(cudaMemcpy(p, h, (size_t)bytes, cudaMemcpyHostToDevice), "test upload");
  CUDA_CHECK(cudaDeviceSynchronize(), "test upload");   // pageable copies may still be in flight
  return p;
}
static inline void *gu_down(const void *d, int64_t bytes) {
  void *h = malloc((size_t)(bytes > 0 ? bytes : 4));
  CUDA_CHECK(cudaDeviceSynchronize(), "test sync");
  CUDA_CHECK(cudaMemcpy(h, d, (size_t)bytes, cudaMemcpyDeviceToHost), "test download");
  return h;
}
static inline float *gu_randf(int64_t n, uint64_t seed, float scale) {
  float *x = malloc((size_t)n * 4);
  tu_fill_uniform(x, n, seed);
  for (int64_t i = 0; i < n; i++) x[i] *= scale;
  return x;
}
#endif
