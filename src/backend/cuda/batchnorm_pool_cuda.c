// batchnorm2d (+relu) and maxpool2d on CUDA with cuDNN, NHWC fp32 (BN
// statistics stay fp32 under autocast).
//
// Training forward: cudnnBatchNormalizationForwardTraining updates the
// running statistics (momentum; unbiased variance for the running update,
// like torch) and saves the batch mean and inverse std in y's extra (the CPU
// backend saves mean and variance there; the extra is backend-private).
// BN+ReLU applies the relu in place after BN; backward masks dy in place
// (y's gradient belongs to this op alone) before the BN backward.
#include <stdlib.h>

#include "backend/cuda/cuda_ops.h"
#include "nn/op_batchnorm2d.h"
#include "nn/op_maxpool2d.h"

typedef struct {
  cudnnTensorDescriptor_t x, p;   // activation (N, C, H, W as NHWC) and per-channel (1, C, 1, 1)
  cudnnBatchNormMode_t mode;
  float *dummy, *dummy_b;         // (C) each: sinks for frozen-parameter gradients (aligned)
} bn_state;

static void bn_state_free(void *v) {
  bn_state *s = v;
  if (!s) return;
  cudnnDestroyTensorDescriptor(s->x);
  cudnnDestroyTensorDescriptor(s->p);
  free(s);
}

static bn_state *bn_of(nn_graph *g, nn_op *o) {
  cuda_op_state *st = cuda_op_state_get(cuda_cx(g), o, 0);
  DP_CHECK(st->host != NULL, "batchnorm on CUDA", "op setup did not run");
  return st->host;
}

static void bn_setup(nn_op *o, nn_graph *g) {
  nn_batchnorm2d_op *op = (nn_batchnorm2d_op *)o;
  cuda_ctx *c = cuda_cx(g);
  const nn_tensor *x = nn_t(g, op->x);
  bn_state *s = dp_calloc(1, sizeof *s, "bn state");
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&s->x), "bn descriptors");
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&s->p), "bn descriptors");
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(s->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, (int)x->dim[0], (int)x->dim[3],
                                         (int)x->dim[1], (int)x->dim[2]), "bn input descriptor");
  CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(s->p, s->x, CUDNN_BATCHNORM_SPATIAL), "bn parameter descriptor");
  // The persistent kernels are faster on NHWC but may not be bitwise deterministic.
  s->mode = c->deterministic ? CUDNN_BATCHNORM_SPATIAL : CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
  if (!x->grad) cuda_amp_reserve(c, x->numel * 4);   // dx sink (cuDNN always writes dx)
  int64_t sz[2] = {op->ch * 4, op->ch * 4}, off[2];
  cuda_op_state *st = cuda_op_state_get(c, o, cuda_subbuf_plan(sz, 2, off));
  st->host = s;
  st->host_free = bn_state_free;
  s->dummy = st->dev;
  s->dummy_b = (float *)((char *)st->dev + off[1]);
}

static void bn_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_batchnorm2d_op *op = (nn_batchnorm2d_op *)o;
  cuda_ctx *c = cuda_cx(g);
  bn_state *s = bn_of(g, o);
  const nn_tensor *x = nn_t(g, op->x);
  nn_tensor *y = nn_t(g, op->y);
  const float one = 1.0f, zero = 0.0f;
  float *saved = y->extra;   // (2, C): batch mean, inverse std
  op->fwd_training = g->training;
  if (g->training) {
    CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
                    c->cudnn, s->mode, &one, &zero, s->x, x->data, s->x, y->data, s->p, nn_param_data(g, op->w_pid),
                    nn_param_data(g, op->b_pid), (double)op->momentum, nn_buf(g, op->rm_bid), nn_buf(g, op->rv_bid),
                    (double)op->eps, saved, saved + op->ch),
                "batchnorm forward (training)");
  } else {
    CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
                    c->cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, s->x, x->data, s->x, y->data, s->p,
                    nn_param_data(g, op->w_pid), nn_param_data(g, op->b_pid), nn_buf(g, op->rm_bid),
                    nn_buf(g, op->rv_bid), (double)op->eps),
                "batchnorm forward (eval)");
  }
  if (op->relu) CUDA_CHECK(dp_cuda_relu_fwd(y->data, y->data, y->numel, c->compute), "batchnorm relu");
}

static void bn_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_batchnorm2d_op *op = (nn_batchnorm2d_op *)o;
  cuda_ctx *c = cuda_cx(g);
  bn_state *s = bn_of(g, o);
  const nn_tensor *x = nn_t(g, op->x);
  nn_tensor *y = nn_t(g, op->y);
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  float *dw = nn_param_grad_dst(g, op->w_pid), *db = nn_param_grad_dst(g, op->b_pid);
  if (!dx && !dw && !db) return;
  if (op->relu) CUDA_CHECK(dp_cuda_relu_bwd(y->data, y->grad, y->grad, y->numel, 0, c->compute), "batchnorm relu backward");
  int acc = ns->accumulate_grads;
  if (!op->fwd_training) {
    CUDA_CHECK(dp_cuda_bn_eval_bwd(x->data, y->grad, nn_param_data(g, op->w_pid), nn_buf(g, op->rm_bid),
                                   nn_buf(g, op->rv_bid), op->eps, dx, add, dw, db, acc, x->numel / op->ch, op->ch,
                                   c->compute), "batchnorm backward (eval)");
    return;
  }
  const float one = 1.0f, zero = 0.0f, bx = add ? 1.0f : 0.0f, bp = acc ? 1.0f : 0.0f;
  // cuDNN always writes dx and both parameter grads: route unwanted ones to scratch.
  float *dxo = dx ? dx : c->amp;   // amp reserved at setup when x has no gradient
  float *dwo = dw ? dw : s->dummy, *dbo = db ? db : s->dummy_b;
  const float *saved = y->extra;
  CUDNN_CHECK(cudnnBatchNormalizationBackward(c->cudnn, s->mode, &one, dx ? &bx : &zero, &one, (dw || db) ? &bp : &zero,
                                              s->x, x->data, s->x, y->grad, s->x, dxo, s->p,
                                              nn_param_data(g, op->w_pid), dwo, dbo, (double)op->eps, saved,
                                              saved + op->ch),
              "batchnorm backward");
}

const nn_op_vt batchnorm2d_cuda_vt = {"batchnorm2d", bn_setup, bn_forward, bn_backward, NULL, NULL};
const nn_op_vt batchnorm2d_relu_cuda_vt = {"batchnorm2d_relu", bn_setup, bn_forward, bn_backward, NULL, NULL};

// ---- maxpool2d ---------------------------------------------------------------------
typedef struct {
  cudnnTensorDescriptor_t x, y;
  cudnnPoolingDescriptor_t pool;
} pool_state;

static void pool_state_free(void *v) {
  pool_state *s = v;
  if (!s) return;
  cudnnDestroyTensorDescriptor(s->x);
  cudnnDestroyTensorDescriptor(s->y);
  cudnnDestroyPoolingDescriptor(s->pool);
  free(s);
}

static void pool_setup(nn_op *o, nn_graph *g) {
  nn_maxpool2d_op *op = (nn_maxpool2d_op *)o;
  const nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  pool_state *s = dp_calloc(1, sizeof *s, "pool state");
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&s->x), "pool descriptors");
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&s->y), "pool descriptors");
  CUDNN_CHECK(cudnnCreatePoolingDescriptor(&s->pool), "pool descriptors");
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(s->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, (int)x->dim[0], (int)x->dim[3],
                                         (int)x->dim[1], (int)x->dim[2]), "pool input descriptor");
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(s->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, (int)y->dim[0], (int)y->dim[3],
                                         (int)y->dim[1], (int)y->dim[2]), "pool output descriptor");
  // Deterministic max pooling routes each gradient to one (the first) maximum, like torch.
  CUDNN_CHECK(cudnnSetPooling2dDescriptor(s->pool, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN, op->k,
                                          op->k, op->pad, op->pad, op->stride, op->stride), "pool descriptor");
  cuda_op_state *st = cuda_op_state_get(cuda_cx(g), o, 0);
  st->host = s;
  st->host_free = pool_state_free;
}

static pool_state *pool_of(nn_graph *g, nn_op *o) {
  cuda_op_state *st = cuda_op_state_get(cuda_cx(g), o, 0);
  DP_CHECK(st->host != NULL, "maxpool on CUDA", "op setup did not run");
  return st->host;
}

static void pool_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_maxpool2d_op *op = (nn_maxpool2d_op *)o;
  pool_state *s = pool_of(g, o);
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnPoolingForward(cuda_cx(g)->cudnn, s->pool, &one, s->x, nn_t(g, op->x)->data, &zero, s->y,
                                  nn_t(g, op->y)->data), "maxpool forward");
}

static void pool_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_maxpool2d_op *op = (nn_maxpool2d_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  pool_state *s = pool_of(g, o);
  const nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  const float one = 1.0f, beta = add ? 1.0f : 0.0f;
  CUDNN_CHECK(cudnnPoolingBackward(cuda_cx(g)->cudnn, s->pool, &one, s->y, y->data, s->y, y->grad, s->x, x->data,
                                   &beta, s->x, dx), "maxpool backward");
}

const nn_op_vt maxpool2d_cuda_vt = {"maxpool2d", pool_setup, pool_forward, pool_backward, NULL, NULL};
