#include "backend/cuda/cuda_backend.h"

#include <stdlib.h>

void *cuda_backend_ctx_create(void);
void cuda_backend_ctx_destroy(void *ctx);

int cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

void *cuda_backend_ctx_create(void) {
  if (cuda_device_count() == 0)
    DP_FATAL("CUDA backend", "use --device cpu or run on a node with a GPU",
             "no CUDA device or driver found");
  cuda_ctx *c = dp_calloc(1, sizeof *c, "cuda backend");
  CUDA_CHECK(cudaGetDevice(&c->device), "querying the current device");
  CUDA_CHECK(cudaStreamCreateWithFlags(&c->compute, cudaStreamNonBlocking), "creating compute stream");
  CUDA_CHECK(cudaStreamCreateWithFlags(&c->copy, cudaStreamNonBlocking), "creating copy stream");
  CUDA_CHECK(cudaStreamCreateWithFlags(&c->comm, cudaStreamNonBlocking), "creating comm stream");
  CUDNN_CHECK(cudnnCreate(&c->cudnn), "creating cuDNN handle");
  CUDNN_CHECK(cudnnSetStream(c->cudnn, c->compute), "binding cuDNN to the compute stream");
  CUBLAS_CHECK(cublasCreate(&c->cublas), "creating cuBLAS handle");
  CUBLAS_CHECK(cublasSetStream(c->cublas, c->compute), "binding cuBLAS to the compute stream");
  CUBLAS_CHECK(cublasLtCreate(&c->cublaslt), "creating cuBLASLt handle");
  return c;
}

void cuda_backend_ctx_destroy(void *ctx) {
  cuda_ctx *c = ctx;
  if (!c) return;
  cublasLtDestroy(c->cublaslt);
  cublasDestroy(c->cublas);
  cudnnDestroy(c->cudnn);
  cudaStreamDestroy(c->comm);
  cudaStreamDestroy(c->copy);
  cudaStreamDestroy(c->compute);
  free(c);
}
