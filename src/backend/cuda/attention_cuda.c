// Multi-head self-attention core on CUDA: per sample, the heads are one
// strided-batched cuBLAS GEMM (head h at column offset h*dh of q, k, v), the
// row softmax is kernels/rows.cu, probabilities P (N, heads, T, T) are kept in
// y's extra for backward. fp32 storage; tf32 tensor cores unless fp32 mode.
// (A fused cuDNN SDPA path is the planned speed-up; see README.md.)
//
// Column-major views of the row-major per-head blocks (ld 3D for q/k/v, D for y):
//   S^T = K Q^T:   C(T x T)  = op_T(A = K^T, dh x T) * (B = Q^T, dh x T),  alpha = scale
//   Y^T = V^T P^T: C(dh x T) = (A = V^T) * (B = P^T as stored)
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_plan.h"
#include "nn/op_attention.h"

static cublasComputeType_t compute_type(const cuda_ctx *c) {
  return c->precision == CUDA_PREC_FP32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
}

// C = alpha op(A) op(B) + beta C over `heads` batches, shapes from cuda_attention_gemms.
static void bgemm(cuda_ctx *c, const cuda_gemm_args *a, float alpha, const float *A, const float *B, float beta,
                  float *C, int batch) {
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(c->cublas, a->ta ? CUBLAS_OP_T : CUBLAS_OP_N, a->tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          (int)a->m, (int)a->n, (int)a->k, &alpha, A, CUDA_R_32F, (int)a->lda, a->sa, B,
                                          CUDA_R_32F, (int)a->ldb, a->sb, &beta, C, CUDA_R_32F, (int)a->ldc, a->sc,
                                          batch, compute_type(c), CUBLAS_GEMM_DEFAULT),
               "attention GEMM");
}

static void attention_setup(nn_op *o, nn_graph *g) {
  nn_attention_op *op = (nn_attention_op *)o;
  if (op->N * op->T * 3 * op->D > 2147483647LL)
    DP_FATAL("attention on CUDA", "reduce the batch", "%s: sizes exceed int range", o->name);
  cuda_op_state_get(cuda_cx(g), o, op->heads * op->T * op->T * 4);   // dP / dS of one sample
}

static void attention_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_attention_op *op = (nn_attention_op *)o;
  cuda_ctx *c = cuda_cx(g);
  const float *qkv = nn_t(g, op->qkv)->data;
  nn_tensor *y = nn_t(g, op->y);
  float *P = y->extra;
  int64_t T = op->T, D = op->D, H = op->heads, tt = T * T;
  cuda_gemm_args ga[6];
  cuda_attention_gemms(T, D, op->dh, ga);
  for (int64_t n = 0; n < op->N; n++) {
    const float *q = qkv + n * T * 3 * D, *k = q + D;
    bgemm(c, &ga[0], op->scale, k, q, 0.f, P + n * H * tt, (int)H);
  }
  CUDA_CHECK(dp_cuda_softmax_fwd(P, P, op->N * H * op->T, op->T, c->compute), "attention softmax");
  for (int64_t n = 0; n < op->N; n++) {
    const float *v = qkv + n * T * 3 * D + 2 * D;
    bgemm(c, &ga[1], 1.f, v, P + n * H * tt, 0.f, y->data + n * T * D, (int)H);
  }
}

static void attention_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_attention_op *op = (nn_attention_op *)o;
  int add;
  float *dqkv = nn_grad_dst(g, op->qkv, &add);
  if (!dqkv) return;
  cuda_ctx *c = cuda_cx(g);
  const float *qkv = nn_t(g, op->qkv)->data;
  const nn_tensor *y = nn_t(g, op->y);
  const float *P = y->extra, *dy = y->grad;
  float *dS = cuda_op_state_get(c, o, op->heads * op->T * op->T * 4)->dev;
  int64_t T = op->T, D = op->D, H = op->heads, tt = T * T;
  cuda_gemm_args ga[6];
  cuda_attention_gemms(T, D, op->dh, ga);
  float beta = add ? 1.f : 0.f;
  for (int64_t n = 0; n < op->N; n++) {
    const float *q = qkv + n * T * 3 * D, *k = q + D, *v = q + 2 * D;
    const float *Pn = P + n * H * tt, *dyn = dy + n * T * D;
    float *dq = dqkv + n * T * 3 * D, *dk = dq + D, *dv = dq + 2 * D;
    // dP^T = V dY^T   (T x T)
    bgemm(c, &ga[2], 1.f, v, dyn, 0.f, dS, (int)H);
    // dV^T = dY^T P   (dh x T)
    bgemm(c, &ga[3], 1.f, dyn, Pn, beta, dv, (int)H);
    // dS = P * (dP - rowsum(dP * P)), in place
    CUDA_CHECK(dp_cuda_softmax_bwd(Pn, dS, dS, (int64_t)H * T, T, 0, c->compute), "attention softmax backward");
    // dQ^T = K^T dS^T * scale;  dK^T = Q^T dS * scale
    bgemm(c, &ga[4], op->scale, k, dS, beta, dq, (int)H);
    bgemm(c, &ga[5], op->scale, q, dS, beta, dk, (int)H);
  }
}

const nn_op_vt attention_cuda_vt = {"attention", attention_setup, attention_forward, attention_backward, NULL, NULL};
