// Linear layer kernels on the CPU (oneDNN's sgemm, row-major), reusable by
// any op that needs y = x W^T + b (linear, attention projections, ...).
#ifndef DP_BACKEND_CPU_GEMM_CPU_H
#define DP_BACKEND_CPU_GEMM_CPU_H
#include <stdint.h>

// x (m, k), w (n, k), b (n) or NULL -> y (m, n).
void cpu_linear_forward(int64_t m, int64_t k, int64_t n, const float *x, const float *w,
                        const float *b, float *y);
// dy (m, n). dx (m, k): NULL to skip, dx_add adds into it. dw (n, k), db (n):
// NULL to skip (frozen / no bias), dw_add adds into them.
void cpu_linear_backward(int64_t m, int64_t k, int64_t n, const float *x, const float *w,
                         const float *dy, float *dx, int dx_add, float *dw, float *db, int dw_add);
// Row-major C (m, n) = alpha op(A) op(B) + beta C, op = transpose if t* = 1.
void cpu_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
#endif
