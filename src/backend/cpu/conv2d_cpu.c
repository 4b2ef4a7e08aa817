// conv2d on the CPU: oneDNN direct convolution (forward_training,
// backward_data, backward_weights), created once per op in setup.
// Per-call buffers (scratchpad, weights in oneDNN's format, weight-gradient
// staging) are in g->workspace; the staging of a gradient that is added to x
// in the op's backward scratch (both planned at graph build time, see
// conv2d_plan). Nothing but x is kept from forward to backward: backward
// reorders the weights again (a permutation: the same values).
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/conv_cpu.h"
#include "backend/cpu/dnnl_util.h"
#include "core/log.h"
#include "nn/op_conv2d.h"

#define ALIGN_UP(v, a) (((v) + (a) - 1) / (a) * (a))

struct cpu_conv {
  cpu_ctx *ctx;
  int64_t n, c, h, w, o, oh, ow;
  int k, has_bias;
  dnnl_primitive_t fwd, bwd_d, bwd_w;
  dnnl_primitive_t r_w_fwd, r_w_bwd;   // oihw -> preferred (NULL: use oihw directly)
  dnnl_primitive_t r_dw, r_dw_sum;     // preferred diff weights -> oihw (NULL: oihw already)
  int bwd_uses_fwd_w;                  // backward-data wants the same format as forward
  // Byte offsets inside ws: scratchpad, reordered weights (forward's or
  // backward-data's format), dw staging, db staging.
  int64_t off_w, off_dw, off_db, ws_bytes, fwd_w_bytes;
  void *own_ws;                        // private workspace when the caller passes NULL
  int persisted;                       // the last forward reordered its weights into a caller's persist buffer
  dnnl_memory_t m_x, m_y, m_dx, m_dy, m_w_user, m_w_fwd, m_w_bwd, m_b, m_dw_user, m_dw_buf, m_db,
      m_scratch;
};

cpu_conv *cpu_conv_create(cpu_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o,
                          int k, int stride, int pad, int bias) {
  cpu_conv *cv = dp_calloc(1, sizeof *cv, "conv");
  dnnl_engine_t eng = ctx->engine;
  cv->ctx = ctx;
  cv->n = n, cv->c = c, cv->h = h, cv->w = w, cv->o = o, cv->k = k, cv->has_bias = bias;
  cv->oh = (h + 2 * pad - k) / stride + 1;
  cv->ow = (w + 2 * pad - k) / stride + 1;
  int64_t xd[4] = {n, c, h, w}, yd[4] = {n, o, cv->oh, cv->ow}, wd[4] = {o, c, k, k};
  dnnl_memory_desc_t x_md = du_md(4, xd, dnnl_nhwc), y_md = du_md(4, yd, dnnl_nhwc);
  dnnl_memory_desc_t w_user = du_md(4, wd, dnnl_oihw), w_any = du_md(4, wd, dnnl_format_tag_any);
  dnnl_memory_desc_t b_md = du_md(1, &o, dnnl_x);
  // Right padding = left padding: oneDNN floors the output size like torch.
  dnnl_dims_t st = {stride, stride}, pl = {pad, pad}, pr = {pad, pad};
  dnnl_primitive_attr_t attr = du_attr_user_scratch();

  dnnl_convolution_desc_t fd, bdd, bwd;
  DNNL_CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                                &x_md, &w_any, bias ? &b_md : NULL, &y_md, st, pl, pr),
             "conv forward desc");
  dnnl_primitive_desc_t fpd = du_pd(&fd, attr, eng, NULL, "conv forward pd");
  DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &x_md, &w_any,
                                                      &y_md, st, pl, pr),
             "conv backward-data desc");
  dnnl_primitive_desc_t dpd = du_pd(&bdd, attr, eng, fpd, "conv backward-data pd");
  DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &x_md, &w_any,
                                                         bias ? &b_md : NULL, &y_md, st, pl, pr),
             "conv backward-weights desc");
  dnnl_primitive_desc_t wpd = du_pd(&bwd, attr, eng, fpd, "conv backward-weights pd");

  int64_t scratch = du_scratch_bytes(fpd);
  if (du_scratch_bytes(dpd) > scratch) scratch = du_scratch_bytes(dpd);
  if (du_scratch_bytes(wpd) > scratch) scratch = du_scratch_bytes(wpd);

  const dnnl_memory_desc_t *w_fwd_md = du_query_md(fpd, dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t *w_bwd_md = du_query_md(dpd, dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t *dw_md = du_query_md(wpd, dnnl_query_diff_weights_md, 0);
  cv->m_x = du_mem(&x_md, eng);
  cv->m_dx = du_mem(&x_md, eng);
  cv->m_y = du_mem(&y_md, eng);
  cv->m_dy = du_mem(&y_md, eng);
  cv->m_w_user = du_mem(&w_user, eng);
  cv->m_dw_user = du_mem(&w_user, eng);
  cv->m_b = du_mem(&b_md, eng);
  cv->m_db = du_mem(&b_md, eng);
  if (!dnnl_memory_desc_equal(w_fwd_md, &w_user)) {
    cv->r_w_fwd = du_reorder(&w_user, w_fwd_md, eng, 0, &scratch);
    cv->m_w_fwd = du_mem(w_fwd_md, eng);
    cv->fwd_w_bytes = (int64_t)dnnl_memory_desc_get_size(w_fwd_md);
  }
  int64_t w_bwd_bytes = 0;
  if (dnnl_memory_desc_equal(w_bwd_md, w_fwd_md)) {
    cv->bwd_uses_fwd_w = 1;
  } else if (!dnnl_memory_desc_equal(w_bwd_md, &w_user)) {
    cv->r_w_bwd = du_reorder(&w_user, w_bwd_md, eng, 0, &scratch);
    cv->m_w_bwd = du_mem(w_bwd_md, eng);
    w_bwd_bytes = (int64_t)dnnl_memory_desc_get_size(w_bwd_md);
  }
  // Weight gradients are staged when oneDNN prefers a blocked format or when
  // they must be added (the reorder's sum post-op adds in one pass).
  cv->m_dw_buf = du_mem(dw_md, eng);
  if (!dnnl_memory_desc_equal(dw_md, &w_user)) cv->r_dw = du_reorder(dw_md, &w_user, eng, 0, &scratch);
  cv->r_dw_sum = du_reorder(dw_md, &w_user, eng, 1, &scratch);
  dnnl_memory_desc_t s_md = du_md(1, &(int64_t){scratch > 0 ? scratch : 1}, dnnl_x);
  s_md.data_type = dnnl_u8;
  cv->m_scratch = du_mem(&s_md, eng);
  cv->off_w = ALIGN_UP(scratch, 64);
  cv->off_dw = cv->off_w + ALIGN_UP(w_bwd_bytes > cv->fwd_w_bytes ? w_bwd_bytes : cv->fwd_w_bytes, 64);
  cv->off_db = cv->off_dw + ALIGN_UP((int64_t)dnnl_memory_desc_get_size(dw_md), 64);
  cv->ws_bytes = cv->off_db + ALIGN_UP(o * 4, 64);

  cv->fwd = du_prim(fpd, "conv forward primitive");
  cv->bwd_d = du_prim(dpd, "conv backward-data primitive");
  cv->bwd_w = du_prim(wpd, "conv backward-weights primitive");
  dnnl_primitive_desc_destroy(fpd);
  dnnl_primitive_desc_destroy(dpd);
  dnnl_primitive_desc_destroy(wpd);
  dnnl_primitive_attr_destroy(attr);
  return cv;
}

int64_t cpu_conv_persist_bytes(const cpu_conv *cv) { return cv->fwd_w_bytes; }
int64_t cpu_conv_ws_bytes(const cpu_conv *cv) { return cv->ws_bytes; }

// Resolve the caller's buffers (or private ones) and point the memories at them.
static void bind(cpu_conv *cv, void *persist, void **ws) {
  if (!*ws) {
    if (!cv->own_ws) cv->own_ws = dp_aligned_alloc(64, (size_t)cv->ws_bytes, "conv workspace");
    *ws = cv->own_ws;
  }
  char *w = *ws;
  // Forward-format weights: the caller's persist buffer, or the workspace slot
  // (then backward reorders them again).
  if (cv->m_w_fwd) du_set(cv->m_w_fwd, persist ? persist : (void *)(w + cv->off_w));
  if (cv->m_w_bwd) du_set(cv->m_w_bwd, w + cv->off_w);
  du_set(cv->m_dw_buf, w + cv->off_dw);
  du_set(cv->m_scratch, w);
}

static void reorder_run(cpu_conv *cv, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
  dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_SCRATCHPAD, cv->m_scratch}};
  du_run(r, cv->ctx->stream, 3, a, "conv weight reorder");
}

void cpu_conv_forward(cpu_conv *cv, const float *x, const float *wt, const float *b, float *y,
                      void *persist, void *ws) {
  bind(cv, persist, &ws);
  cv->persisted = persist != NULL;
  du_set(cv->m_x, x);
  du_set(cv->m_y, y);
  du_set(cv->m_w_user, wt);
  dnnl_memory_t wm = cv->m_w_user;
  if (cv->r_w_fwd) {
    reorder_run(cv, cv->r_w_fwd, cv->m_w_user, cv->m_w_fwd);
    wm = cv->m_w_fwd;
  }
  dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, cv->m_x}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, cv->m_y},
                          {DNNL_ARG_SCRATCHPAD, cv->m_scratch}, {DNNL_ARG_BIAS, cv->m_b}};
  if (cv->has_bias) du_set(cv->m_b, b);
  du_run(cv->fwd, cv->ctx->stream, cv->has_bias ? 5 : 4, a, "conv forward");
}

void cpu_conv_backward(cpu_conv *cv, const float *x, const float *wt, const float *dy, float *dx,
                       int dx_add, float *dx_scratch, float *dw, float *db, int dw_add,
                       void *persist, void *ws) {
  dnnl_stream_t s = cv->ctx->stream;
  bind(cv, persist, &ws);
  du_set(cv->m_dy, dy);
  if (dx) {
    dnnl_memory_t wm = cv->m_w_user;
    du_set(cv->m_w_user, wt);
    if (cv->bwd_uses_fwd_w) {
      wm = cv->r_w_fwd ? cv->m_w_fwd : cv->m_w_user;
      if (cv->r_w_fwd && !(persist && cv->persisted)) reorder_run(cv, cv->r_w_fwd, cv->m_w_user, cv->m_w_fwd);
    } else if (cv->r_w_bwd) {
      reorder_run(cv, cv->r_w_bwd, cv->m_w_user, cv->m_w_bwd);
      wm = cv->m_w_bwd;
    }
    DP_CHECK(!dx_add || dx_scratch, "conv backward", "dx_add needs dx_scratch");
    du_set(cv->m_dx, dx_add ? dx_scratch : dx);
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_DIFF_DST, cv->m_dy}, {DNNL_ARG_WEIGHTS, wm},
                            {DNNL_ARG_DIFF_SRC, cv->m_dx}, {DNNL_ARG_SCRATCHPAD, cv->m_scratch}};
    du_run(cv->bwd_d, s, 4, a, "conv backward data");
    if (dx_add) cpu_copy_or_add(dx, dx_scratch, cv->n * cv->h * cv->w * cv->c, 1);
  }
  if (dw || db) {
    du_set(cv->m_x, x);
    // Direct write into the oihw gradient when oneDNN chose oihw and we overwrite.
    int direct = dw && !cv->r_dw && !dw_add;
    dnnl_memory_t dwm = cv->m_dw_buf;
    if (direct) {
      du_set(cv->m_dw_user, dw);
      dwm = cv->m_dw_user;
    }
    float *db_buf = (float *)((char *)ws + cv->off_db);
    if (cv->has_bias) du_set(cv->m_db, db && !dw_add ? db : db_buf);
    dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, cv->m_x}, {DNNL_ARG_DIFF_DST, cv->m_dy},
                            {DNNL_ARG_DIFF_WEIGHTS, dwm}, {DNNL_ARG_SCRATCHPAD, cv->m_scratch},
                            {DNNL_ARG_DIFF_BIAS, cv->m_db}};
    du_run(cv->bwd_w, s, cv->has_bias ? 5 : 4, a, "conv backward weights");
    if (dw && !direct) {
      du_set(cv->m_dw_user, dw);
      reorder_run(cv, dw_add ? cv->r_dw_sum : cv->r_dw, cv->m_dw_buf, cv->m_dw_user);
    }
    if (cv->has_bias && db && dw_add)
      for (int64_t i = 0; i < cv->o; i++) db[i] += db_buf[i];
  }
}

void cpu_conv_destroy(cpu_conv *cv) {
  if (!cv) return;
  dnnl_primitive_t ps[7] = {cv->fwd, cv->bwd_d, cv->bwd_w, cv->r_w_fwd, cv->r_w_bwd, cv->r_dw, cv->r_dw_sum};
  for (int i = 0; i < 7; i++)
    if (ps[i]) dnnl_primitive_destroy(ps[i]);
  dnnl_memory_t ms[12] = {cv->m_x, cv->m_y, cv->m_dx, cv->m_dy, cv->m_w_user, cv->m_w_fwd,
                          cv->m_w_bwd, cv->m_b, cv->m_dw_user, cv->m_dw_buf, cv->m_db, cv->m_scratch};
  for (int i = 0; i < 12; i++)
    if (ms[i]) dnnl_memory_destroy(ms[i]);
  free(cv->own_ws);
  free(cv);
}

// ---- the graph op -----------------------------------------------------------
// Scratchpad reserve in the planned workspace (setup falls back to private
// memory, with a warning, if oneDNN ever asks for more).
#define CONV_SCRATCH_BYTES ((int64_t)8 << 20)

// Memory plan. Backward scratch (arena, this op's backward only): the
// backward-data staging when x's gradient must be added to (x consumed
// twice). Workspace: oneDNN's per-call buffers: the scratchpad
// (<= ~2 MB seen for ResNet-50 at batch 32), the backward-data weights and the
// weight-grad staging, each in a blocked format padded to at most 64 in both
// channel dims (bounds with headroom: some blocked formats pad a little more).
static void conv2d_plan(nn_op *o, nn_graph *g) {
  nn_conv2d_op *op = (nn_conv2d_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  int64_t wpad = (op->out_ch + 63) / 64 * 64 * ((op->in_ch + 63) / 64 * 64) * op->k * op->k * 4;
  wpad += wpad / 16 + 4096;
  o->bwd_scratch_bytes = x->needs_grad ? ALIGN_UP(x->numel * 4, 64) : 0;
  o->workspace_bytes = CONV_SCRATCH_BYTES + 2 * wpad + op->out_ch * 4 + 256;
  (void)g;
}
typedef struct {
  cpu_conv *cv;
  int ws_private;     // 1: the plan's workspace was too small, the conv uses its own
} conv_impl;

static void conv2d_setup(nn_op *o, nn_graph *g) {
  nn_conv2d_op *op = (nn_conv2d_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  conv_impl *im = dp_calloc(1, sizeof *im, "conv2d");
  im->cv = cpu_conv_create(cpu_ctx_of(g->backend_ctx), x->dim[0], x->dim[3], x->dim[1], x->dim[2],
                           op->out_ch, op->k, op->stride, op->pad, op->has_bias);
  // The planned bound (conv2d_plan) holds for every format oneDNN 2.6 picks
  // here; if one ever does not, fall back to private memory and say so.
  if (cpu_conv_ws_bytes(im->cv) > g->workspace_bytes) {
    im->ws_private = 1;
    LOG_WARN("%s: conv workspace %lld B exceeds the planned %lld B; using private memory", op->base.name,
             (long long)cpu_conv_ws_bytes(im->cv), (long long)g->workspace_bytes);
  }
  op->base.be_state = im;
}

static void *conv_ws(conv_impl *im, nn_graph *g) {
  return im->ws_private ? NULL : g->workspace;
}

static void conv2d_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_conv2d_op *op = (nn_conv2d_op *)o;
  conv_impl *im = op->base.be_state;
  cpu_conv_forward(im->cv, nn_t(g, op->x)->data, nn_param_data(g, op->w_pid),
                   op->has_bias ? nn_param_data(g, op->b_pid) : NULL, nn_t(g, op->y)->data, NULL,
                   conv_ws(im, g));
}

static void conv2d_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_conv2d_op *op = (nn_conv2d_op *)o;
  conv_impl *im = op->base.be_state;
  int dx_add = 0;
  float *dx = nn_grad_dst(g, op->x, &dx_add);
  float *dw = nn_param_grad_dst(g, op->w_pid);
  float *db = op->has_bias ? nn_param_grad_dst(g, op->b_pid) : NULL;
  if (!dx && !dw && !db) return;
  cpu_conv_backward(im->cv, nn_t(g, op->x)->data, nn_param_data(g, op->w_pid), nn_t(g, op->y)->grad, dx,
                    dx_add, o->bwd_scratch, dw, db, ns->accumulate_grads, NULL, conv_ws(im, g));
}

static void conv2d_destroy(nn_op *o) {
  nn_conv2d_op *op = (nn_conv2d_op *)o;
  conv_impl *im = op->base.be_state;
  if (!im) return;
  cpu_conv_destroy(im->cv);
  free(im);
  op->base.be_state = NULL;
}

const nn_op_vt conv2d_cpu_vt = {"conv2d", conv2d_setup, conv2d_forward, conv2d_backward, conv2d_destroy,
                                conv2d_plan};
