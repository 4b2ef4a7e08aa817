// CUDA backend shared state and check macros.
#ifndef DP_BACKEND_CUDA_H
#define DP_BACKEND_CUDA_H
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/check.h"

typedef struct {
  int device;
  cudaStream_t compute, copy, comm;
  cudnnHandle_t cudnn;
  cublasHandle_t cublas;
  cublasLtHandle_t cublaslt;
} cuda_ctx;

#define CUDA_CHECK(call, what)                                                          \
  do {                                                                                  \
    cudaError_t e_ = (call);                                                            \
    if (e_ != cudaSuccess)                                                              \
      dp_fatal_at(__FILE__, __LINE__, what, "is a GPU visible (nvidia-smi)? out of memory?", \
                  "%s: %s", #call, cudaGetErrorString(e_));                             \
  } while (0)
#define CUDNN_CHECK(call, what)                                                         \
  do {                                                                                  \
    cudnnStatus_t s_ = (call);                                                          \
    if (s_ != CUDNN_STATUS_SUCCESS)                                                     \
      dp_fatal_at(__FILE__, __LINE__, what, "unsupported shape/algorithm or workspace too small", \
                  "%s: %s", #call, cudnnGetErrorString(s_));                            \
  } while (0)
#define CUBLAS_CHECK(call, what)                                                        \
  do {                                                                                  \
    cublasStatus_t s_ = (call);                                                         \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                    \
      dp_fatal_at(__FILE__, __LINE__, what, "check GEMM shapes and workspace", "%s: status %d", \
                  #call, (int)s_);                                                      \
  } while (0)

// Number of usable CUDA devices; 0 (never an error) when there is no driver or GPU.
int cuda_device_count(void);
#endif
