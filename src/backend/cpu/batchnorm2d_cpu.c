// batchnorm2d / batchnorm2d_relu on the CPU: oneDNN batch normalization on
// NHWC data with separate scale/shift. The ReLU of batchnorm2d_relu is fused
// (dnnl_fuse_norm_relu): forward writes a mask into a workspace that backward
// uses, so neither pass makes an extra sweep over the activation.
// Training: batch statistics (saved in y's extra for backward), running
// stats updated here with torch's momentum and unbiased variance.
// Eval: running statistics (use_global_stats); backward then follows the
// affine eval transform (frozen-BN fine-tuning).
// Memory (docs/memory.md): backward reads x, the statistics and the mask in
// y's extra, not y. When a later op's backward reads y, bn_recompute rebuilds
// it with the global-stats primitive from the saved statistics (the same
// normalisation kernel as the training forward, so the same bits; checked by
// test_ops_recompute). A gradient that must be added to x is staged in the
// op's backward scratch (arena, planned for that backward only).
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_util.h"
#include "core/log.h"
#include "nn/op_batchnorm2d.h"

typedef struct {
  cpu_ctx *ctx;
  dnnl_primitive_t fwd[2], bwd[2];   // [0] eval (global stats), [1] training
  dnnl_memory_t m_x, m_y, m_dx, m_dy, m_scale, m_shift, m_mean, m_var, m_dscale, m_dshift, m_ws[2],
      m_scratch, m_ws_rc;   // m_ws: relu mask memory per mode (same buffer); m_ws_rc: recompute's discarded mask
  float *dss;          // (2, C) diff scale, diff shift staging
  void *ws, *scratch;  // private only if the planned y->extra / workspace were too small
} bn_impl;

// The sizes oneDNN will ask for (primitive descriptors only, on the planning
// engine): the fused-ReLU mask it keeps from forward to backward (its
// workspace; 1 bit per element for the jit kernels, more for small channel
// counts) and the largest scratchpad of the forward/backward pairs.
static void bn_query_sizes(const nn_batchnorm2d_op *op, const nn_tensor *x, dnnl_engine_t eng, int64_t *scratch,
                           int64_t *mask) {
  int64_t c = op->ch, xd[4] = {x->dim[0], c, x->dim[1], x->dim[2]};
  dnnl_memory_desc_t x_md = du_md(4, xd, dnnl_nhwc);
  dnnl_primitive_attr_t attr = du_attr_user_scratch();
  unsigned base = dnnl_use_scale | dnnl_use_shift | (op->relu ? dnnl_fuse_norm_relu : 0);
  *scratch = *mask = 0;
  for (int tr = 0; tr < 2; tr++) {
    unsigned flags = base | (tr ? 0 : dnnl_use_global_stats);
    dnnl_batch_normalization_desc_t fd, bd;
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &x_md, op->eps, flags),
               "bn forward desc");
    dnnl_primitive_desc_t fpd = du_pd(&fd, attr, eng, NULL, "bn forward pd");
    DNNL_CHECK(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &x_md, &x_md, op->eps, flags),
               "bn backward desc");
    dnnl_primitive_desc_t bpd = du_pd(&bd, attr, eng, fpd, "bn backward pd");
    if (du_scratch_bytes(fpd) > *scratch) *scratch = du_scratch_bytes(fpd);
    if (du_scratch_bytes(bpd) > *scratch) *scratch = du_scratch_bytes(bpd);
    if (op->relu) {
      int64_t w = (int64_t)dnnl_memory_desc_get_size(du_query_md(fpd, dnnl_query_workspace_md, 0));
      if (w > *mask) *mask = w;
    }
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
  }
  dnnl_primitive_attr_destroy(attr);
}

#define ALIGN64(v) (((v) + 63) / 64 * 64)

// Planned sizes, exact (setup falls back to private memory if they ever
// differ): the mask after the saved statistics in y's extra; the workspace
// holds the scratchpad, then the mask a recompute writes and discards.
static void bn_plan(nn_op *o, nn_graph *g) {
  nn_batchnorm2d_op *op = (nn_batchnorm2d_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  int64_t scratch, mask;
  bn_query_sizes(op, x, du_plan_engine(), &scratch, &mask);
  nn_t(g, op->y)->extra_bytes += ALIGN64(mask);
  o->workspace_bytes = ALIGN64(scratch > 64 ? scratch : 64) + ALIGN64(mask);
  o->bwd_scratch_bytes = x->numel * 4;   // dx staging when x's gradient is added to
}

static void bn_setup(nn_op *o, nn_graph *g) {
  nn_batchnorm2d_op *op = (nn_batchnorm2d_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  bn_impl *b = dp_calloc(1, sizeof *b, "batchnorm");
  b->ctx = cpu_ctx_of(g->backend_ctx);
  dnnl_engine_t eng = b->ctx->engine;
  int64_t c = op->ch, xd[4] = {x->dim[0], c, x->dim[1], x->dim[2]};
  dnnl_memory_desc_t x_md = du_md(4, xd, dnnl_nhwc), c_md = du_md(1, &c, dnnl_x);
  dnnl_primitive_attr_t attr = du_attr_user_scratch();
  unsigned base = dnnl_use_scale | dnnl_use_shift | (op->relu ? dnnl_fuse_norm_relu : 0);
  int64_t scratch = 0, ws = 0;
  for (int tr = 0; tr < 2; tr++) {
    unsigned flags = base | (tr ? 0 : dnnl_use_global_stats);
    dnnl_batch_normalization_desc_t fd, bd;
    DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &x_md, op->eps, flags),
               "bn forward desc");
    dnnl_primitive_desc_t fpd = du_pd(&fd, attr, eng, NULL, "bn forward pd");
    DNNL_CHECK(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &x_md, &x_md, op->eps, flags),
               "bn backward desc");
    dnnl_primitive_desc_t bpd = du_pd(&bd, attr, eng, fpd, "bn backward pd");
    if (du_scratch_bytes(fpd) > scratch) scratch = du_scratch_bytes(fpd);
    if (du_scratch_bytes(bpd) > scratch) scratch = du_scratch_bytes(bpd);
    if (op->relu) {
      const dnnl_memory_desc_t *wmd = du_query_md(fpd, dnnl_query_workspace_md, 0);
      if ((int64_t)dnnl_memory_desc_get_size(wmd) > ws) ws = (int64_t)dnnl_memory_desc_get_size(wmd);
      b->m_ws[tr] = du_mem(wmd, eng);
      if (!tr) b->m_ws_rc = du_mem(wmd, eng);
    }
    b->fwd[tr] = du_prim(fpd, "bn forward primitive");
    b->bwd[tr] = du_prim(bpd, "bn backward primitive");
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
  }
  dnnl_primitive_attr_destroy(attr);
  b->m_x = du_mem(&x_md, eng);
  b->m_y = du_mem(&x_md, eng);
  b->m_dx = du_mem(&x_md, eng);
  b->m_dy = du_mem(&x_md, eng);
  dnnl_memory_t *cm[6] = {&b->m_scale, &b->m_shift, &b->m_mean, &b->m_var, &b->m_dscale, &b->m_dshift};
  for (int i = 0; i < 6; i++) *cm[i] = du_mem(&c_md, eng);
  b->dss = dp_aligned_alloc(64, (size_t)(2 * c * 4), "bn grad staging");
  du_set(b->m_dscale, b->dss);
  du_set(b->m_dshift, b->dss + c);
  // The relu mask must survive from forward to backward: it goes into y's
  // extra after the saved statistics, as planned in bn_plan.
  const nn_tensor *y = nn_t(g, op->y);
  if (ws > 0) {
    if (NN_BN_STATS_BYTES(c) + ws <= y->extra_bytes) {
      for (int tr = 0; tr < 2; tr++) du_set(b->m_ws[tr], (char *)y->extra + NN_BN_STATS_BYTES(c));
    } else {
      LOG_WARN("%s: relu mask needs %lld B more than planned; using private memory", op->base.name,
               (long long)(NN_BN_STATS_BYTES(c) + ws - y->extra_bytes));
      b->ws = dp_aligned_alloc(64, (size_t)ws, "bn relu workspace");
      for (int tr = 0; tr < 2; tr++) du_set(b->m_ws[tr], b->ws);
    }
  }
  // Workspace: the scratchpad at 0, the recompute's mask after it (bn_plan).
  void *sp = g->workspace;
  int64_t rc_off = ALIGN64(scratch > 64 ? scratch : 64);
  if (rc_off + ALIGN64(ws) > g->workspace_bytes) {
    LOG_WARN("%s: scratchpad %lld B + mask %lld B exceed the plan; using private memory", op->base.name,
             (long long)scratch, (long long)ws);
    sp = b->scratch = dp_aligned_alloc(64, (size_t)(rc_off + ws + 64), "bn scratchpad");
  }
  if (b->m_ws_rc) du_set(b->m_ws_rc, (char *)sp + rc_off);
  dnnl_memory_desc_t s_md = du_md(1, &(int64_t){scratch > 0 ? scratch : 1}, dnnl_x);
  s_md.data_type = dnnl_u8;
  DNNL_CHECK(dnnl_memory_create(&b->m_scratch, &s_md, eng, sp), "bn scratchpad");
  op->base.be_state = b;
}

static void bn_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_batchnorm2d_op *op = (nn_batchnorm2d_op *)o;
  bn_impl *b = op->base.be_state;
  nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  int64_t c = op->ch;
  int tr = g->training ? 1 : 0;
  op->fwd_training = tr;
  float *saved = y->extra;   // (2, C): mean, biased var
  du_set(b->m_x, x->data);
  du_set(b->m_y, y->data);
  du_set(b->m_scale, nn_param_data(g, op->w_pid));
  du_set(b->m_shift, nn_param_data(g, op->b_pid));
  du_set(b->m_mean, tr ? saved : nn_buf(g, op->rm_bid));
  du_set(b->m_var, tr ? saved + c : nn_buf(g, op->rv_bid));
  dnnl_exec_arg_t a[9] = {{DNNL_ARG_SRC, b->m_x},        {DNNL_ARG_DST, b->m_y},
                          {DNNL_ARG_SCALE, b->m_scale},  {DNNL_ARG_SHIFT, b->m_shift},
                          {DNNL_ARG_MEAN, b->m_mean},    {DNNL_ARG_VARIANCE, b->m_var},
                          {DNNL_ARG_SCRATCHPAD, b->m_scratch}, {DNNL_ARG_WORKSPACE, b->m_ws[tr]}};
  du_run(b->fwd[tr], b->ctx->stream, op->relu ? 8 : 7, a, "bn forward");
  if (tr) {
    float *rm = nn_buf(g, op->rm_bid), *rv = nn_buf(g, op->rv_bid);
    double m = (double)(x->numel / c);
    float unb = m > 1 ? (float)(m / (m - 1)) : 1.0f;
    float mo = op->momentum;
    for (int64_t i = 0; i < c; i++) {
      rm[i] = (1 - mo) * rm[i] + mo * saved[i];
      rv[i] = (1 - mo) * rv[i] + mo * saved[c + i] * unb;
    }
  }
}

static void bn_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_batchnorm2d_op *op = (nn_batchnorm2d_op *)o;
  bn_impl *b = op->base.be_state;
  nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  int64_t c = op->ch;
  int tr = op->fwd_training;
  int dx_add = 0;
  float *dx = nn_grad_dst(g, op->x, &dx_add);
  float *dw = nn_param_grad_dst(g, op->w_pid), *db = nn_param_grad_dst(g, op->b_pid);
  if (!dx && !dw && !db) return;
  float *saved = y->extra;
  float *dst = (dx && !dx_add) ? dx : o->bwd_scratch;
  du_set(b->m_x, x->data);
  du_set(b->m_dy, y->grad);
  du_set(b->m_dx, dst);
  du_set(b->m_scale, nn_param_data(g, op->w_pid));
  du_set(b->m_shift, nn_param_data(g, op->b_pid));
  du_set(b->m_mean, tr ? saved : nn_buf(g, op->rm_bid));
  du_set(b->m_var, tr ? saved + c : nn_buf(g, op->rv_bid));
  dnnl_exec_arg_t a[11] = {{DNNL_ARG_SRC, b->m_x},           {DNNL_ARG_DIFF_DST, b->m_dy},
                           {DNNL_ARG_DIFF_SRC, b->m_dx},     {DNNL_ARG_SCALE, b->m_scale},
                           {DNNL_ARG_SHIFT, b->m_shift},     {DNNL_ARG_MEAN, b->m_mean},
                           {DNNL_ARG_VARIANCE, b->m_var},    {DNNL_ARG_DIFF_SCALE, b->m_dscale},
                           {DNNL_ARG_DIFF_SHIFT, b->m_dshift}, {DNNL_ARG_SCRATCHPAD, b->m_scratch},
                           {DNNL_ARG_WORKSPACE, b->m_ws[tr]}};
  du_run(b->bwd[tr], b->ctx->stream, op->relu ? 11 : 10, a, "bn backward");
  if (dx && dx_add) cpu_copy_or_add(dx, o->bwd_scratch, x->numel, 1);
  int acc = ns->accumulate_grads;
  if (dw) cpu_copy_or_add(dw, b->dss, c, acc);
  if (db) cpu_copy_or_add(db, b->dss + c, c, acc);
}

// y again from x and the statistics of the last forward: the batch statistics
// it saved (training) or the running ones it used (eval; forward does not
// change them then). The mask goes to workspace memory and is discarded.
void bn_cpu_recompute(nn_op *o, nn_graph *g) {
  nn_batchnorm2d_op *op = (nn_batchnorm2d_op *)o;
  bn_impl *b = op->base.be_state;
  nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  int tr = op->fwd_training;
  float *saved = y->extra;
  du_set(b->m_x, x->data);
  du_set(b->m_y, y->data);
  du_set(b->m_scale, nn_param_data(g, op->w_pid));
  du_set(b->m_shift, nn_param_data(g, op->b_pid));
  du_set(b->m_mean, tr ? saved : nn_buf(g, op->rm_bid));
  du_set(b->m_var, tr ? saved + op->ch : nn_buf(g, op->rv_bid));
  dnnl_exec_arg_t a[8] = {{DNNL_ARG_SRC, b->m_x},        {DNNL_ARG_DST, b->m_y},
                          {DNNL_ARG_SCALE, b->m_scale},  {DNNL_ARG_SHIFT, b->m_shift},
                          {DNNL_ARG_MEAN, b->m_mean},    {DNNL_ARG_VARIANCE, b->m_var},
                          {DNNL_ARG_SCRATCHPAD, b->m_scratch}, {DNNL_ARG_WORKSPACE, b->m_ws_rc}};
  du_run(b->fwd[0], b->ctx->stream, op->relu ? 8 : 7, a, "bn recompute");
}

static void bn_destroy(nn_op *o) {
  nn_batchnorm2d_op *op = (nn_batchnorm2d_op *)o;
  bn_impl *b = op->base.be_state;
  if (!b) return;
  for (int i = 0; i < 2; i++) {
    if (b->fwd[i]) dnnl_primitive_destroy(b->fwd[i]);
    if (b->bwd[i]) dnnl_primitive_destroy(b->bwd[i]);
  }
  dnnl_memory_t ms[14] = {b->m_x,      b->m_y,      b->m_dx,    b->m_dy,    b->m_scale,
                          b->m_shift,  b->m_mean,   b->m_var,   b->m_dscale, b->m_dshift,
                          b->m_ws[0],  b->m_ws[1],  b->m_scratch, b->m_ws_rc};
  for (int i = 0; i < 14; i++)
    if (ms[i]) dnnl_memory_destroy(ms[i]);
  free(b->dss);
  free(b->ws);
  free(b->scratch);
  free(b);
  op->base.be_state = NULL;
}

const nn_op_vt batchnorm2d_cpu_vt = {"batchnorm2d", bn_setup, bn_forward, bn_backward, bn_destroy, bn_plan};
const nn_op_vt batchnorm2d_relu_cpu_vt = {"batchnorm2d_relu", bn_setup, bn_forward, bn_backward, bn_destroy,
                                          bn_plan};
