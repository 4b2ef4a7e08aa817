// linear on CUDA with cuBLASLt: y = x W^T + b (bias epilogue), and the two
// backward GEMMs; bias grad as a GEMV against a ones vector (deterministic).
// bf16/fp16 autocast casts x, W and dy into op-private 16-bit copies (fp32 accumulate
// and fp32 outputs); fp32/tf32 use the fp32 tensors directly.
//
// Column-major view of row-major tensors: x (rows, in) is X^T (in x rows, ld in).
//   forward: Y^T (out x rows)  = op_T(W^T stored in x out) * X^T          m=out n=rows k=in
//   dgrad:   dX^T (in x rows)  = W^T (in x out, N)   * dY^T (out x rows)  m=in  n=rows k=out
//   wgrad:   dW^T (in x out)   = X^T (in x rows, N)  * op_T(dY^T)         m=in  n=out  k=rows
#include <stdlib.h>

#include "backend/cuda/cuda_gemm.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_plan.h"
#include "nn/op_linear.h"

typedef struct {
  cuda_gemm_plan fwd, dgrad, wgrad;
  int bf16;                     // autocast staging mode (cuda_lp_mode): 0 none, 1 bf16, 2 fp16
  float *ones;                  // (rows)
  uint16_t *wlp, *xlp, *dylp;   // bf16 copies (bf16 mode only)
} linear_state;

static linear_state *state_of(nn_graph *g, nn_op *o) {
  cuda_op_state *st = cuda_op_state_get(cuda_cx(g), o, 0);
  DP_CHECK(st->host != NULL, "linear on CUDA", "op setup did not run");
  return st->host;
}

static void linear_state_free(void *p) {
  linear_state *ls = p;
  if (!ls) return;
  cuda_gemm_plan_destroy(&ls->fwd);
  cuda_gemm_plan_destroy(&ls->dgrad);
  cuda_gemm_plan_destroy(&ls->wgrad);
  free(ls);
}

static void linear_setup(nn_op *o, nn_graph *g) {
  nn_linear_op *op = (nn_linear_op *)o;
  cuda_ctx *c = cuda_cx(g);
  int64_t rows = op->rows, in = op->in, out = op->out;
  int bf16 = cuda_lp_mode(c);
  // [ones (rows) | W, x, dy 16-bit copies], each on a 256-byte boundary.
  int64_t sz[4] = {rows * 4, bf16 ? out * in * 2 : 0, bf16 ? rows * in * 2 : 0, bf16 ? rows * out * 2 : 0}, off[4];
  int64_t bytes = cuda_subbuf_plan(sz, 4, off);
  cuda_op_state *st = cuda_op_state_get(c, o, bytes);
  linear_state *ls = dp_calloc(1, sizeof *ls, "linear state");
  st->host = ls;
  st->host_free = linear_state_free;
  if (rows > 2147483647LL || in > 2147483647LL || out > 2147483647LL)
    DP_FATAL("linear on CUDA", "reduce the batch", "%s: dims exceed int range", o->name);
  ls->bf16 = bf16;
  char *base = st->dev;
  ls->ones = (float *)(base + off[0]);
  float *h = dp_malloc((size_t)rows * 4, "ones");
  for (int64_t i = 0; i < rows; i++) h[i] = 1.0f;
  // Pageable source: staged before the call returns, so h may go; ordered on
  // the compute stream before any GEMV reads it.
  CUDA_CHECK(cudaMemcpyAsync(ls->ones, h, (size_t)rows * 4, cudaMemcpyHostToDevice, c->compute), "uploading ones");
  free(h);
  if (bf16) {
    ls->wlp = (uint16_t *)(base + off[1]);
    ls->xlp = (uint16_t *)(base + off[2]);
    ls->dylp = (uint16_t *)(base + off[3]);
  }
  cudaDataType_t t = bf16 == 1 ? CUDA_R_16BF : bf16 == 2 ? CUDA_R_16F : CUDA_R_32F;
  cuda_gemm_args ga[3];
  cuda_linear_gemms(rows, in, out, ga);
  cuda_gemm_plan *plans[3] = {&ls->fwd, &ls->dgrad, &ls->wgrad};
  for (int i = 0; i < 3; i++)
    cuda_gemm_plan_init(plans[i], c, ga[i].ta ? CUBLAS_OP_T : CUBLAS_OP_N, ga[i].tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                        ga[i].m, ga[i].n, ga[i].k, ga[i].lda, ga[i].ldb, ga[i].ldc, t, i == 0 && op->has_bias);
}

static void linear_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_linear_op *op = (nn_linear_op *)o;
  cuda_ctx *c = cuda_cx(g);
  linear_state *ls = state_of(g, o);
  const float *x = nn_t(g, op->x)->data, *w = nn_param_data(g, op->w_pid);
  const float *b = op->has_bias ? nn_param_data(g, op->b_pid) : NULL;
  float *y = nn_t(g, op->y)->data;
  if (ls->bf16) {
    // TODO(perf): keep a bf16 weight copy updated by the optimizer (param_lp).
    CUDA_CHECK(cuda_to_lp(ls->bf16, w, ls->wlp, op->out * op->in, c->compute), "linear: casting W");
    CUDA_CHECK(cuda_to_lp(ls->bf16, x, ls->xlp, op->rows * op->in, c->compute), "linear: casting x");
    cuda_gemm_run(&ls->fwd, c, ls->wlp, ls->xlp, y, 0.0f, b);
  } else {
    cuda_gemm_run(&ls->fwd, c, w, x, y, 0.0f, b);
  }
}

static void linear_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_linear_op *op = (nn_linear_op *)o;
  cuda_ctx *c = cuda_cx(g);
  linear_state *ls = state_of(g, o);
  const float *dy = nn_t(g, op->y)->grad, *x = nn_t(g, op->x)->data, *w = nn_param_data(g, op->w_pid);
  const void *A_dy = dy, *A_x = x, *A_w = w;
  if (ls->bf16) {
    CUDA_CHECK(cuda_to_lp(ls->bf16, dy, ls->dylp, op->rows * op->out, c->compute), "linear: casting dy");
    A_dy = ls->dylp;
    A_x = ls->xlp;   // cast in forward, x unchanged since
    A_w = ls->wlp;
  }
  float *dw = nn_param_grad_dst(g, op->w_pid);
  float beta_p = ns->accumulate_grads ? 1.0f : 0.0f;
  if (dw) cuda_gemm_run(&ls->wgrad, c, A_x, A_dy, dw, beta_p, NULL);
  float *db = op->has_bias ? nn_param_grad_dst(g, op->b_pid) : NULL;
  if (db) {
    // db (out) = dY^T (out x rows, col-major, ld out) * ones (rows).
    const float one = 1.0f;
    CUBLAS_CHECK(cublasSgemv(c->cublas, CUBLAS_OP_N, (int)op->out, (int)op->rows, &one, dy, (int)op->out, ls->ones, 1,
                             &beta_p, db, 1), "linear bias gradient");
  }
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (dx) cuda_gemm_run(&ls->dgrad, c, A_w, A_dy, dx, add ? 1.0f : 0.0f, NULL);
}

static void linear_destroy(nn_op *o) {
  (void)o;  // plans are owned by the op state, released with the CUDA context
}

const nn_op_vt linear_cuda_vt = {"linear", linear_setup, linear_forward, linear_backward, linear_destroy, NULL};
