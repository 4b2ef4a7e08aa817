// CUDA tables of the elementwise and layout ops: relu, add, add_relu, dropout,
// gelu, flatten, take_token0, class_token, pos_embed.
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/dropout_hash.h"
#include "nn/op_add.h"
#include "nn/op_class_token.h"
#include "nn/op_dropout.h"
#include "nn/op_flatten.h"
#include "nn/op_gelu.h"
#include "nn/op_pos_embed.h"
#include "nn/op_relu.h"
#include "nn/op_take_token0.h"

// ---- relu ---------------------------------------------------------------------
static void relu_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_relu_op *op = (nn_relu_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  CUDA_CHECK(dp_cuda_relu_fwd(x->data, nn_t(g, op->y)->data, x->numel, cuda_stream(g)), "relu forward");
}
static void relu_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_relu_op *op = (nn_relu_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *y = nn_t(g, op->y);
  CUDA_CHECK(dp_cuda_relu_bwd(y->data, y->grad, dx, y->numel, add, cuda_stream(g)), "relu backward");
}
const nn_op_vt relu_cuda_vt = {"relu", NULL, relu_forward, relu_backward, NULL, NULL};

// ---- add / add_relu -------------------------------------------------------------
static void add_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_add_op *op = (nn_add_op *)o;
  nn_tensor *y = nn_t(g, op->y);
  const float *a = nn_t(g, op->a)->data, *b = nn_t(g, op->b)->data;
  if (op->relu) CUDA_CHECK(dp_cuda_add_relu_fwd(a, b, y->data, y->numel, cuda_stream(g)), "add_relu forward");
  else CUDA_CHECK(dp_cuda_add_fwd(a, b, y->data, y->numel, cuda_stream(g)), "add forward");
}
static void add_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_add_op *op = (nn_add_op *)o;
  const nn_tensor *y = nn_t(g, op->y);
  int add_a = 0, add_b = 0;
  float *da = nn_grad_dst(g, op->a, &add_a);
  float *db = nn_grad_dst(g, op->b, &add_b);
  cudaStream_t s = cuda_stream(g);
  if (op->relu) {
    CUDA_CHECK(dp_cuda_add_relu_bwd(y->data, y->grad, da, add_a, db, add_b, y->numel, s), "add_relu backward");
    return;
  }
  if (da) CUDA_CHECK(dp_cuda_grad_pass(y->grad, da, y->numel, add_a, s), "add backward");
  if (db) CUDA_CHECK(dp_cuda_grad_pass(y->grad, db, y->numel, add_b, s), "add backward");
}
const nn_op_vt add_cuda_vt = {"add", NULL, add_forward, add_backward, NULL, NULL};
const nn_op_vt add_relu_cuda_vt = {"add_relu", NULL, add_forward, add_backward, NULL, NULL};

// ---- dropout --------------------------------------------------------------------
// The GPU mask comes from the counter-based hash in dropout_hash.h keyed by
// (seed, step, op index): reproducible, but not the CPU backend's stream.
#define DROPOUT_DOMAIN 0x64726f706f7574ULL
static void dropout_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_dropout_op *op = (nn_dropout_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  nn_tensor *y = nn_t(g, op->y);
  cudaStream_t s = cuda_stream(g);
  op->fwd_training = g->training && op->p > 0.0f;
  if (!op->fwd_training) {
    CUDA_CHECK(dp_cuda_grad_pass(x->data, y->data, x->numel, 0, s), "dropout (eval) forward");
    return;
  }
  uint64_t stream = dp_mix64(ns->step) ^ (uint64_t)op->op_index;
  CUDA_CHECK(dp_cuda_dropout_fwd(x->data, y->data, y->extra, x->numel, op->p, g->seed ^ DROPOUT_DOMAIN,
                                 stream, s), "dropout forward");
}
static void dropout_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_dropout_op *op = (nn_dropout_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *y = nn_t(g, op->y);
  cudaStream_t s = cuda_stream(g);
  if (!op->fwd_training) CUDA_CHECK(dp_cuda_grad_pass(y->grad, dx, y->numel, add, s), "dropout backward");
  else CUDA_CHECK(dp_cuda_dropout_bwd(y->grad, y->extra, dx, y->numel, op->p, add, s), "dropout backward");
}
const nn_op_vt dropout_cuda_vt = {"dropout", NULL, dropout_forward, dropout_backward, NULL, NULL};

// ---- gelu -------------------------------------------------------------------------
static void gelu_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_gelu_op *op = (nn_gelu_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  CUDA_CHECK(dp_cuda_gelu_fwd(x->data, nn_t(g, op->y)->data, x->numel, cuda_stream(g)), "gelu forward");
}
static void gelu_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_gelu_op *op = (nn_gelu_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  CUDA_CHECK(dp_cuda_gelu_bwd(x->data, y->grad, dx, x->numel, add, cuda_stream(g)), "gelu backward");
}
// The output again from x (the same kernel as forward).
void gelu_cuda_recompute(nn_op *o, nn_graph *g) { gelu_forward(o, g, NULL); }
const nn_op_vt gelu_cuda_vt = {"gelu", NULL, gelu_forward, gelu_backward, NULL, NULL};

// ---- flatten (NHWC input flattened in torch's NCHW order) --------------------------
static void flatten_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_flatten_op *op = (nn_flatten_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  float *y = nn_t(g, op->y)->data;
  cudaStream_t s = cuda_stream(g);
  if (x->ndim == 4)
    CUDA_CHECK(dp_cuda_nhwc_to_nchw(x->data, y, x->dim[0], x->dim[1] * x->dim[2], x->dim[3], 0, s), "flatten forward");
  else CUDA_CHECK(dp_cuda_grad_pass(x->data, y, x->numel, 0, s), "flatten forward");
}
static void flatten_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_flatten_op *op = (nn_flatten_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *x = nn_t(g, op->x);
  const float *dy = nn_t(g, op->y)->grad;
  cudaStream_t s = cuda_stream(g);
  if (x->ndim == 4)
    CUDA_CHECK(dp_cuda_nchw_to_nhwc(dy, dx, x->dim[0], x->dim[1] * x->dim[2], x->dim[3], add, s), "flatten backward");
  else CUDA_CHECK(dp_cuda_grad_pass(dy, dx, x->numel, add, s), "flatten backward");
}
const nn_op_vt flatten_cuda_vt = {"flatten", NULL, flatten_forward, flatten_backward, NULL, NULL};

// ---- take_token0: (N, T, D) -> (N, D) ------------------------------------------------
static void take_token0_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_take_token0_op *op = (nn_take_token0_op *)o;
  CUDA_CHECK(dp_cuda_copy2d(nn_t(g, op->y)->data, op->D, nn_t(g, op->x)->data, op->T * op->D, op->N,
                            op->D, 0, cuda_stream(g)), "take_token0 forward");
}
static void take_token0_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_take_token0_op *op = (nn_take_token0_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  cudaStream_t s = cuda_stream(g);
  // Only token 0 receives gradient; the others are zero unless accumulating.
  if (!add) CUDA_CHECK(cudaMemsetAsync(dx, 0, (size_t)(op->N * op->T * op->D) * 4, s), "take_token0 backward");
  CUDA_CHECK(dp_cuda_copy2d(dx, op->T * op->D, nn_t(g, op->y)->grad, op->D, op->N, op->D, 1, s),
             "take_token0 backward");
}
const nn_op_vt take_token0_cuda_vt = {"take_token0", NULL, take_token0_forward, take_token0_backward, NULL, NULL};

// ---- class_token: (N, T, D) -> (N, T + 1, D) -------------------------------------------
static void class_token_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_class_token_op *op = (nn_class_token_op *)o;
  float *y = nn_t(g, op->y)->data;
  int64_t D = op->D, T1 = op->T + 1;
  cudaStream_t s = cuda_stream(g);
  // Row 0 of every sample: the token (source leading dim 0 repeats it).
  CUDA_CHECK(dp_cuda_copy2d(y, T1 * D, nn_param_data(g, op->p), 0, op->N, D, 0, s), "class_token forward");
  CUDA_CHECK(dp_cuda_copy2d(y + D, T1 * D, nn_t(g, op->x)->data, op->T * D, op->N, op->T * D, 0, s),
             "class_token forward");
}
static void class_token_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_class_token_op *op = (nn_class_token_op *)o;
  const float *dy = nn_t(g, op->y)->grad;
  int64_t D = op->D, T1 = op->T + 1;
  cudaStream_t s = cuda_stream(g);
  float *dp = nn_param_grad_dst(g, op->p);
  if (dp) CUDA_CHECK(dp_cuda_colsum(dy, T1 * D, op->N, D, dp, ns->accumulate_grads, s), "class_token backward");
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (dx) CUDA_CHECK(dp_cuda_copy2d(dx, op->T * D, dy + D, T1 * D, op->N, op->T * D, add, s), "class_token backward");
}
const nn_op_vt class_token_cuda_vt = {"class_token", NULL, class_token_forward, class_token_backward, NULL, NULL};

// ---- pos_embed: y = x + pos (1, T, D) -------------------------------------------------
static void pos_embed_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_pos_embed_op *op = (nn_pos_embed_op *)o;
  CUDA_CHECK(dp_cuda_add_bcast(nn_t(g, op->x)->data, nn_param_data(g, op->p), nn_t(g, op->y)->data,
                               op->N, op->T * op->D, cuda_stream(g)), "pos_embed forward");
}
static void pos_embed_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_pos_embed_op *op = (nn_pos_embed_op *)o;
  const float *dy = nn_t(g, op->y)->grad;
  int64_t TD = op->T * op->D;
  cudaStream_t s = cuda_stream(g);
  float *dp = nn_param_grad_dst(g, op->p);
  if (dp) CUDA_CHECK(dp_cuda_colsum(dy, TD, op->N, TD, dp, ns->accumulate_grads, s), "pos_embed backward");
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (dx) CUDA_CHECK(dp_cuda_grad_pass(dy, dx, op->N * TD, add, s), "pos_embed backward");
}
const nn_op_vt pos_embed_cuda_vt = {"pos_embed", NULL, pos_embed_forward, pos_embed_backward, NULL, NULL};
