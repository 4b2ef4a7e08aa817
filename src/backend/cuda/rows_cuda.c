// CUDA tables of the row-wise ops: layernorm, softmax, softmax_xent, and the
// global average pool.
#include <stdlib.h>

#include "backend/cuda/cuda_ops.h"
#include "nn/op_global_avgpool.h"
#include "nn/op_layernorm.h"
#include "nn/op_softmax.h"
#include "nn/op_softmax_xent.h"

// ---- layernorm ----------------------------------------------------------------------
static void layernorm_setup(nn_op *o, nn_graph *g) {
  nn_layernorm_op *op = (nn_layernorm_op *)o;
  // dgamma/dbeta column-reduction partials, op-private (not in g->workspace,
  // whose size the constructor plans for the CPU path).
  cuda_op_state_get(cuda_cx(g), o, dp_cuda_layernorm_bwd_scratch(op->D));
}
static void layernorm_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_layernorm_op *op = (nn_layernorm_op *)o;
  nn_tensor *y = nn_t(g, op->y);
  float *mean = y->extra, *rstd = mean + op->rows;
  CUDA_CHECK(dp_cuda_layernorm_fwd(nn_t(g, op->x)->data, nn_param_data(g, op->pw), nn_param_data(g, op->pb),
                                   y->data, mean, rstd, op->rows, op->D, op->eps, cuda_stream(g)),
             "layernorm forward");
}
static void layernorm_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_layernorm_op *op = (nn_layernorm_op *)o;
  const nn_tensor *y = nn_t(g, op->y);
  const float *mean = y->extra, *rstd = mean + op->rows;
  float *dw = nn_param_grad_dst(g, op->pw), *db = nn_param_grad_dst(g, op->pb);
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  cuda_op_state *st = cuda_op_state_get(cuda_cx(g), o, dp_cuda_layernorm_bwd_scratch(op->D));
  CUDA_CHECK(dp_cuda_layernorm_bwd(nn_t(g, op->x)->data, y->grad, nn_param_data(g, op->pw), mean, rstd, dx,
                                   add, dw, db, ns->accumulate_grads, st->dev, op->rows, op->D,
                                   cuda_stream(g)),
             "layernorm backward");
}
const nn_op_vt layernorm_cuda_vt = {"layernorm", layernorm_setup, layernorm_forward, layernorm_backward, NULL, NULL};

// ---- softmax ------------------------------------------------------------------------
static void softmax_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_softmax_op *op = (nn_softmax_op *)o;
  CUDA_CHECK(dp_cuda_softmax_fwd(nn_t(g, op->x)->data, nn_t(g, op->y)->data, op->rows, op->L, cuda_stream(g)),
             "softmax forward");
}
static void softmax_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_softmax_op *op = (nn_softmax_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *y = nn_t(g, op->y);
  CUDA_CHECK(dp_cuda_softmax_bwd(y->data, y->grad, dx, op->rows, op->L, add, cuda_stream(g)), "softmax backward");
}
const nn_op_vt softmax_cuda_vt = {"softmax", NULL, softmax_forward, softmax_backward, NULL, NULL};

// ---- softmax_xent ---------------------------------------------------------------------
// Op-private device memory: [class weights (C) | lse (N) | denom (1) | row scratch (2N)],
// each part on a 256-byte boundary.
static int64_t xent_layout(const nn_softmax_xent_op *op, int64_t off[4]) {
  int64_t sz[4] = {op->classes * 4, op->rows * 4, 4, 2 * op->rows * 4};
  return cuda_subbuf_plan(sz, 4, off);
}
static int64_t xent_state_bytes(const nn_softmax_xent_op *op) {
  int64_t off[4];
  return xent_layout(op, off);
}
static void xent_setup(nn_op *o, nn_graph *g) {
  nn_softmax_xent_op *op = (nn_softmax_xent_op *)o;
  cuda_op_state *st = cuda_op_state_get(cuda_cx(g), o, xent_state_bytes(op));
  if (op->class_weights)
    CUDA_CHECK(cudaMemcpyAsync(st->dev, op->class_weights, (size_t)op->classes * 4, cudaMemcpyHostToDevice,
                               cuda_stream(g)),
               "uploading class weights");
}
static void xent_ptrs(nn_graph *g, nn_softmax_xent_op *op, const float **w, float **lse, float **denom,
                      float **scratch) {
  int64_t off[4];
  int64_t bytes = xent_layout(op, off);
  char *base = cuda_op_state_get(cuda_cx(g), &op->base, bytes)->dev;
  *w = op->class_weights ? (const float *)(base + off[0]) : NULL;
  *lse = (float *)(base + off[1]);
  *denom = (float *)(base + off[2]);
  *scratch = (float *)(base + off[3]);
}
static int64_t xent_valid(const nn_softmax_xent_op *op, const nn_step *ns) {
  if (ns->num_valid < 0 || ns->num_valid > op->rows)
    DP_FATAL("softmax_xent", "num_valid must be in [0, batch]", "num_valid %lld, batch %lld",
             (long long)ns->num_valid, (long long)op->rows);
  if (!ns->labels && !ns->soft_targets)
    DP_FATAL("softmax_xent", "set the step's labels or soft_targets (device pointers) before forward", "no targets");
  return ns->num_valid;
}
static void xent_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_softmax_xent_op *op = (nn_softmax_xent_op *)o;
  int64_t nv = xent_valid(op, ns);
  const float *w;
  float *lse, *denom, *scratch;
  xent_ptrs(g, op, &w, &lse, &denom, &scratch);
  CUDA_CHECK(dp_cuda_xent_fwd(nn_t(g, op->x)->data, ns->soft_targets ? NULL : ns->labels, ns->soft_targets, w,
                              op->label_smoothing, op->rows, op->classes, nv, lse, denom, scratch,
                              nn_t(g, op->y)->data, cuda_stream(g)),
             "softmax_xent forward");
}
static void xent_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_softmax_xent_op *op = (nn_softmax_xent_op *)o;
  int add;
  float *dz = nn_grad_dst(g, op->x, &add);
  if (!dz) return;
  int64_t nv = xent_valid(op, ns);
  const float *w;
  float *lse, *denom, *scratch;
  xent_ptrs(g, op, &w, &lse, &denom, &scratch);
  CUDA_CHECK(dp_cuda_xent_bwd(nn_t(g, op->x)->data, ns->soft_targets ? NULL : ns->labels, ns->soft_targets, w,
                              op->label_smoothing, op->rows, op->classes, nv, lse, denom,
                              nn_t(g, op->y)->grad, dz, add, cuda_stream(g)),
             "softmax_xent backward");
}
static void xent_destroy(nn_op *o) {
  nn_softmax_xent_op *op = (nn_softmax_xent_op *)o;
  free(op->class_weights);
  op->class_weights = NULL;
}
const nn_op_vt softmax_xent_cuda_vt = {"softmax_xent", xent_setup, xent_forward, xent_backward, xent_destroy, NULL};

// ---- global_avgpool ---------------------------------------------------------------------
static void gap_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_global_avgpool_op *op = (nn_global_avgpool_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  CUDA_CHECK(dp_cuda_global_avgpool_fwd(x->data, nn_t(g, op->y)->data, x->dim[0], x->dim[1] * x->dim[2],
                                        x->dim[3], cuda_stream(g)), "global_avgpool forward");
}
static void gap_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_global_avgpool_op *op = (nn_global_avgpool_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *x = nn_t(g, op->x);
  CUDA_CHECK(dp_cuda_global_avgpool_bwd(nn_t(g, op->y)->grad, dx, x->dim[0], x->dim[1] * x->dim[2], x->dim[3],
                                        add, cuda_stream(g)), "global_avgpool backward");
}
const nn_op_vt global_avgpool_cuda_vt = {"global_avgpool", NULL, gap_forward, gap_backward, NULL, NULL};
