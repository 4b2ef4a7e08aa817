// cuBLASLt GEMM plans, built once at op setup (descriptors, layouts and the
// heuristic's algorithm under the workspace bound), run many times.
// Column-major BLAS view: C (m x n, ldc) = alpha op(A) op(B) + beta C,
// optional bias epilogue (bias of length m added to every column).
#ifndef DP_BACKEND_CUDA_GEMM_H
#define DP_BACKEND_CUDA_GEMM_H
#include "backend/cuda/cuda_backend.h"

typedef struct {
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t a, b, c;
  cublasLtMatmulAlgo_t algo;
  size_t workspace;          // bytes the chosen algorithm needs
  int bias;                  // bias epilogue enabled
} cuda_gemm_plan;

// ab_type: CUDA_R_32F or CUDA_R_16BF (C is always fp32). fp32 inputs use
// tf32 tensor cores when c->precision != CUDA_PREC_FP32.
void cuda_gemm_plan_init(cuda_gemm_plan *p, cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb,
                         int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc,
                         cudaDataType_t ab_type, int bias_epilogue);
void cuda_gemm_plan_destroy(cuda_gemm_plan *p);
// Queues the GEMM on the compute stream; bias is a device fp32 vector or NULL.
void cuda_gemm_run(const cuda_gemm_plan *p, cuda_ctx *c, const void *A, const void *B, float *C,
                   float beta, const float *bias);
#endif
