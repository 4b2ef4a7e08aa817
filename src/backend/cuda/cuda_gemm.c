#include "backend/cuda/cuda_gemm.h"

#include <string.h>

void cuda_gemm_plan_init(cuda_gemm_plan *p, cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb,
                         int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc,
                         cudaDataType_t ab_type, int bias_epilogue) {
  memset(p, 0, sizeof *p);
  cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
  if (ab_type == CUDA_R_32F && c->precision != CUDA_PREC_FP32) ct = CUBLAS_COMPUTE_32F_FAST_TF32;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, ct, CUDA_R_32F), "creating a GEMM descriptor");
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "GEMM transa");
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "GEMM transb");
  if (bias_epilogue) {
    cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep),
                 "GEMM bias epilogue");
    cudaDataType_t bt = CUDA_R_32F;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt),
                 "GEMM bias type");
    p->bias = 1;
  }
  // Stored shapes (rows x cols of the matrix as laid out, before op()).
  uint64_t ar = ta == CUBLAS_OP_N ? (uint64_t)m : (uint64_t)k, ac = ta == CUBLAS_OP_N ? (uint64_t)k : (uint64_t)m;
  uint64_t br = tb == CUBLAS_OP_N ? (uint64_t)k : (uint64_t)n, bc = tb == CUBLAS_OP_N ? (uint64_t)n : (uint64_t)k;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, ab_type, ar, ac, lda), "GEMM layout A");
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, ab_type, br, bc, ldb), "GEMM layout B");
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, (uint64_t)m, (uint64_t)n, ldc), "GEMM layout C");
  cublasLtMatmulPreference_t pref;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref), "GEMM preference");
  uint64_t ws = (uint64_t)c->workspace_limit;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
               "GEMM workspace bound");
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(c->cublaslt, p->desc, p->a, p->b, p->c, p->c, pref, 1, &res, &found),
               "choosing a GEMM algorithm");
  cublasLtMatmulPreferenceDestroy(pref);
  if (found < 1)
    DP_FATAL("choosing a GEMM algorithm", "raise the workspace limit or use fp32",
             "cuBLASLt has no algorithm for m=%lld n=%lld k=%lld", (long long)m, (long long)n, (long long)k);
  p->algo = res.algo;
  p->workspace = res.workspaceSize;
  cuda_workspace_reserve(c, (int64_t)p->workspace);
}

void cuda_gemm_plan_destroy(cuda_gemm_plan *p) {
  if (p->a) cublasLtMatrixLayoutDestroy(p->a);
  if (p->b) cublasLtMatrixLayoutDestroy(p->b);
  if (p->c) cublasLtMatrixLayoutDestroy(p->c);
  if (p->desc) cublasLtMatmulDescDestroy(p->desc);
  memset(p, 0, sizeof *p);
}

void cuda_gemm_run(const cuda_gemm_plan *p, cuda_ctx *c, const void *A, const void *B, float *C,
                   float beta, const float *bias) {
  const float alpha = 1.0f;
  if (p->bias)
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                 "GEMM bias pointer");
  CUBLAS_CHECK(cublasLtMatmul(c->cublaslt, p->desc, &alpha, A, p->a, B, p->b, &beta, C, p->c, C, p->c, &p->algo,
                              c->workspace, p->workspace, c->compute),
               "running a GEMM");
}
