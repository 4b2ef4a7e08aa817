// Multi-head self-attention core on the CPU. One task per (n, head), run in
// parallel with OpenMP; inside a task the GEMMs are single-threaded
// dnnl_sgemm calls (oneDNN runs sequentially inside an OpenMP parallel
// region). q, k and v are read in place from the packed qkv rows
// (leading dimension 3D), so nothing is copied.
// Forward saves P = softmax(q k^T * scale) (N, H, T, T) for backward.
#include <math.h>
#include <omp.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/vexp_cpu.h"
#include "nn/op_attention.h"

// Row-major C (M x N) = alpha * op(A) op(B) + beta * C.
static void gemm(char ta, char tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  DNNL_CHECK(dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), "attention sgemm");
}

static int team_size(const nn_attention_op *op) {
  int nt = omp_get_max_threads();
  return nt < op->nthreads ? nt : op->nthreads;
}

static void attention_forward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_attention_op *op = (nn_attention_op *)base;
  const float *qkv = nn_t(g, op->qkv)->data;   // (N, T, 3D)
  float *y = nn_t(g, op->y)->data;             // (N, T, D)
  float *P = nn_t(g, op->y)->extra;            // (N, H, T, T)
  int64_t T = op->T, D = op->D, dh = op->dh, H = op->heads;
#pragma omp parallel for schedule(dynamic, 1) num_threads(team_size(op))
  for (int64_t nh = 0; nh < op->N * H; nh++) {
    int64_t n = nh / H, h = nh % H;
    const float *q = qkv + n * T * 3 * D + h * dh, *k = q + D, *v = q + 2 * D;
    float *p = P + nh * T * T;
    gemm('N', 'T', T, T, dh, op->scale, q, 3 * D, k, 3 * D, 0.f, p, T);   // S = q k^T / sqrt(dh)
    for (int64_t i = 0; i < T; i++) {
      float *r = p + i * T;
      float mx = r[0];
      for (int64_t j = 1; j < T; j++) mx = r[j] > mx ? r[j] : mx;
      float inv = (float)(1.0 / vexp_shift_sum(r, r, T, mx));
      for (int64_t j = 0; j < T; j++) r[j] *= inv;
    }
    gemm('N', 'N', T, dh, T, 1.f, p, T, v, 3 * D, 0.f, y + n * T * D + h * dh, D);   // O = P v
  }
}

static void attention_backward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_attention_op *op = (nn_attention_op *)base;
  nn_tensor *xt = nn_t(g, op->qkv);
  if (!xt->grad) return;
  const float *qkv = xt->data;
  float *dqkv = xt->grad;                      // (N, T, 3D)
  const float *dy = nn_t(g, op->y)->grad;      // (N, T, D)
  const float *P = nn_t(g, op->y)->extra;      // (N, H, T, T)
  float beta = nn_grad_begin(g, op->qkv) ? 1.f : 0.f;
  int64_t T = op->T, D = op->D, dh = op->dh, H = op->heads;
  float *ws = g->workspace;
#pragma omp parallel num_threads(team_size(op))
  {
    float *dp = ws + (int64_t)omp_get_thread_num() * T * T;   // (T, T) scratch
#pragma omp for schedule(dynamic, 1)
    for (int64_t nh = 0; nh < op->N * H; nh++) {
      int64_t n = nh / H, h = nh % H;
      int64_t off = n * T * 3 * D + h * dh;
      const float *q = qkv + off, *k = q + D, *v = q + 2 * D;
      float *dq = dqkv + off, *dk = dq + D, *dv = dq + 2 * D;
      const float *p = P + nh * T * T;
      const float *dyh = dy + n * T * D + h * dh;
      gemm('T', 'N', T, dh, T, 1.f, p, T, dyh, D, beta, dv, 3 * D);    // dv = P^T dO
      gemm('N', 'T', T, T, dh, 1.f, dyh, D, v, 3 * D, 0.f, dp, T);     // dP = dO v^T
      for (int64_t i = 0; i < T; i++) {                                // dS = P (dP - <dP, P>)
        const float *pr = p + i * T;
        float *r = dp + i * T;
        float dot = 0;
        for (int64_t j = 0; j < T; j++) dot += r[j] * pr[j];
        for (int64_t j = 0; j < T; j++) r[j] = pr[j] * (r[j] - dot);
      }
      gemm('N', 'N', T, dh, T, op->scale, dp, T, k, 3 * D, beta, dq, 3 * D);   // dq = dS k / sqrt(dh)
      gemm('T', 'N', T, dh, T, op->scale, dp, T, q, 3 * D, beta, dk, 3 * D);   // dk = dS^T q / sqrt(dh)
    }
  }
}

const nn_op_vt attention_cpu_vt = {"attention", NULL, attention_forward, attention_backward, NULL, NULL};
