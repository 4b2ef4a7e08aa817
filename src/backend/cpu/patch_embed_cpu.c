// Patch embedding on the CPU: non-overlapping patches, so the conv is an
// im2col copy (each input pixel lands in exactly one column entry) plus one
// GEMM: y (N*Tp, D) = cols (N*Tp, C*p*p) W^T (C*p*p, D) + b.
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "nn/op_patch_embed.h"

static void gemm(char ta, char tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  DNNL_CHECK(dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), "patch_embed sgemm");
}

// cols[(n, i, j), (c, ky, kx)] <-> x[n, i*p + ky, j*p + kx, c]. to_cols = 1:
// gather x into cols; 0: scatter cols into x (add if `add`).
static void patch_copy(const nn_patch_embed_op *op, float *x, float *cols, int to_cols, int add) {
  int64_t p = op->p, C = op->C, W = op->W, K = C * p * p;
  int64_t rows = op->N * op->gh * op->gw;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    int64_t n = r / (op->gh * op->gw), i = (r / op->gw) % op->gh, j = r % op->gw;
    float *cr = cols + r * K;
    for (int64_t ky = 0; ky < p; ky++) {
      float *xr = x + ((n * op->H + i * p + ky) * W + j * p) * C;   // (p, C) run of pixels
      for (int64_t kx = 0; kx < p; kx++)
        for (int64_t c = 0; c < C; c++) {
          float *cv = cr + (c * p + ky) * p + kx, *xv = xr + kx * C + c;
          if (to_cols) *cv = *xv;
          else *xv = add ? *xv + *cv : *cv;
        }
    }
  }
}

static void patch_embed_forward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_patch_embed_op *op = (nn_patch_embed_op *)base;
  float *x = nn_t(g, op->x)->data;   // (N, H, W, C)
  float *y = nn_t(g, op->y)->data;   // (N, Tp, D)
  float *cols = g->workspace;
  int64_t M = op->N * op->gh * op->gw, K = op->C * op->p * op->p, D = op->D;
  patch_copy(op, x, cols, 1, 0);
  const float *b = nn_param_data(g, op->pb);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; r++) memcpy(y + r * D, b, (size_t)D * 4);
  gemm('N', 'T', M, D, K, 1.f, cols, K, nn_param_data(g, op->pw), K, 1.f, y, D);
}

static void patch_embed_backward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_patch_embed_op *op = (nn_patch_embed_op *)base;
  nn_tensor *xt = nn_t(g, op->x);
  const float *dy = nn_t(g, op->y)->grad;   // (M, D)
  float *cols = g->workspace;
  int64_t M = op->N * op->gh * op->gw, K = op->C * op->p * op->p, D = op->D;
  int acc = ns->accumulate_grads;
  if (!g->params[op->pw].frozen || !g->params[op->pb].frozen) {
    // The workspace may have been used by other ops since forward: rebuild cols.
    patch_copy(op, xt->data, cols, 1, 0);
    gemm('T', 'N', D, K, M, 1.f, dy, D, cols, K, acc ? 1.f : 0.f, nn_param_grad(g, op->pw), K);
    float *db = nn_param_grad(g, op->pb);
#pragma omp parallel for schedule(static)
    for (int64_t d = 0; d < D; d++) {
      double s = 0;
      for (int64_t r = 0; r < M; r++) s += dy[r * D + d];
      db[d] = (float)s + (acc ? db[d] : 0.f);
    }
  }
  if (!xt->grad) return;
  int add = nn_grad_begin(g, op->x);
  gemm('N', 'N', M, K, D, 1.f, dy, D, nn_param_data(g, op->pw), K, 0.f, cols, K);   // dcols = dY W
  patch_copy(op, xt->grad, cols, 0, add);
}

const nn_op_vt patch_embed_cpu_vt = {"patch_embed", NULL, patch_embed_forward, patch_embed_backward, NULL, NULL};
