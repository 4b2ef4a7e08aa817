// conv2d on CUDA with cuDNN (legacy API), NHWC activations.
//
// The fp32 weight (O, C, k, k) is permuted each step into an op-private
// KRSC copy (NHWC filter layout, what cuDNN's NHWC tensor-core kernels take),
// cast to bf16 under autocast; the filter gradient comes back KRSC and is
// permuted into the torch-layout gradient (written or accumulated).
// Algorithms are chosen once at setup from cuDNN's heuristics, the first one
// that fits the workspace bound (and is deterministic when asked).
// A conv whose input channels are not a multiple of 8 (the RGB/grayscale
// stem, ViT's patch embedding) stays fp32/tf32 under autocast (conv_lp_ok).
// bf16/fp16 autocast stages x, y, dy and dx through the context's shared amp buffer.
#include <stdlib.h>

#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_plan.h"
#include "core/log.h"
#include "nn/op_conv2d.h"
#include "nn/op_patch_embed.h"

typedef struct {
  cudnnTensorDescriptor_t x, y, bias;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  cudnnConvolutionFwdAlgo_t fwd;
  cudnnConvolutionBwdDataAlgo_t bwd_data;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter;
  cudnnMathType_t fwd_math, data_math, filter_math;
  size_t ws_fwd, ws_data, ws_filter;
  int bf16;                    // autocast staging mode (cuda_lp_mode): 0 none, 1 bf16, 2 fp16
  int n, oh, ow, co, ci, k;    // geometry
  int64_t nx, ny, nw;          // element counts
  float *wk, *dwk;             // KRSC fp32 weight and its gradient
  uint16_t *wk_lp, *dwk_lp;    // KRSC bf16 weight and its gradient (bf16 mode)
  int64_t amp_off[2];          // byte offsets of the two staging parts in the amp buffer
} conv_state;

static void conv_state_free(void *p) {
  conv_state *s = p;
  if (!s) return;
  cudnnDestroyTensorDescriptor(s->x);
  cudnnDestroyTensorDescriptor(s->y);
  if (s->bias) cudnnDestroyTensorDescriptor(s->bias);
  cudnnDestroyFilterDescriptor(s->w);
  cudnnDestroyConvolutionDescriptor(s->conv);
  free(s);
}

static conv_state *state_of(nn_graph *g, nn_op *o) {
  cuda_op_state *st = cuda_op_state_get(cuda_cx(g), o, 0);
  DP_CHECK(st->host != NULL, "conv2d on CUDA", "op setup did not run");
  return st->host;
}

// Chooses one algorithm of a direction from cuDNN's heuristics: converts its
// perf results into the backend-neutral candidates that cuda_choose_algo
// (unit-tested on the CPU) ranks, and keeps the algorithm, its math type and
// its workspace. The three directions differ only in types and the query.
#define CHOOSE_ALGO(perf_t, count, query, algo_out, math_out, ws_out, what)                       \
  do {                                                                                          \
    perf_t pf_[count];                                                                          \
    int got_ = 0;                                                                               \
    CUDNN_CHECK(query, "choosing the conv " what " algorithm");                                  \
    cuda_algo_candidate cand_[count];                                                           \
    for (int j_ = 0; j_ < got_; j_++) {                                                         \
      cand_[j_].ok = pf_[j_].status == CUDNN_STATUS_SUCCESS;                                    \
      cand_[j_].memory = (int64_t)pf_[j_].memory;                                               \
      cand_[j_].deterministic = pf_[j_].determinism == CUDNN_DETERMINISTIC;                     \
    }                                                                                           \
    int i_ = cuda_choose_algo(cand_, got_, c->workspace_limit, c->deterministic);               \
    if (i_ < 0)                                                                                 \
      DP_FATAL("conv2d setup", "raise the workspace limit", "%s: no " what " algorithm fits%s", \
               o->name, c->deterministic ? " (deterministic mode)" : "");                       \
    (algo_out) = pf_[i_].algo;                                                                  \
    (math_out) = pf_[i_].mathType;                                                              \
    (ws_out) = pf_[i_].memory;                                                                  \
  } while (0)

// 16-bit NHWC convolutions need the input channels in multiples of 8 for
// cuDNN's tensor-core kernels; an RGB or grayscale stem (C = 3 or 1) may have
// no algorithm at all. Such a conv runs in fp32 storage with tf32 math (a few
// percent of ResNet-50's FLOPs); the rest of the graph stays 16-bit.
static int conv_lp_ok(int ci) { return ci % 8 == 0; }

// Plans one convolution (x NHWC (n, h, w, ci) -> y NHWC (n, oh, ow, co)) for op o.
static void conv_plan(nn_op *o, nn_graph *g, int n, int h, int w, int ci, int oh, int ow, int co, int k,
                      int stride, int pad, int has_bias) {
  cuda_ctx *c = cuda_cx(g);
  conv_state *s = dp_calloc(1, sizeof *s, "conv state");
  s->bf16 = cuda_lp_mode(c);
  if (s->bf16 && !conv_lp_ok(ci)) {
    LOG_DEBUG("%s: %d input channels: fp32 storage with tf32 math instead of %s", o->name, ci,
              s->bf16 == 1 ? "bf16" : "fp16");
    s->bf16 = 0;
  }
  s->n = n;
  s->oh = oh;
  s->ow = ow;
  s->co = co;
  s->ci = ci;
  s->k = k;
  s->nx = (int64_t)n * h * w * ci;
  s->ny = (int64_t)n * oh * ow * co;
  s->nw = (int64_t)co * ci * k * k;
  cudnnDataType_t dt = s->bf16 == 1 ? CUDNN_DATA_BFLOAT16 : s->bf16 == 2 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&s->x), "conv descriptors");
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&s->y), "conv descriptors");
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&s->w), "conv descriptors");
  CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&s->conv), "conv descriptors");
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(s->x, CUDNN_TENSOR_NHWC, dt, n, ci, h, w), "conv input descriptor");
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(s->y, CUDNN_TENSOR_NHWC, dt, n, co, oh, ow), "conv output descriptor");
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(s->w, dt, CUDNN_TENSOR_NHWC, co, ci, k, k), "conv filter descriptor");
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(s->conv, pad, pad, stride, stride, 1, 1,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
              "conv descriptor");
  // fp32: FMA math (cuDNN's default math would allow tf32 on Ampere).
  cudnnMathType_t mt = c->precision == CUDA_PREC_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
  CUDNN_CHECK(cudnnSetConvolutionMathType(s->conv, mt), "conv math type");
  if (has_bias) {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&s->bias), "conv bias descriptor");
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(s->bias, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, co, 1, 1),
                "conv bias descriptor");
  }
  CHOOSE_ALGO(cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
              cudnnGetConvolutionForwardAlgorithm_v7(c->cudnn, s->x, s->w, s->conv, s->y,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got_, pf_),
              s->fwd, s->fwd_math, s->ws_fwd, "forward");
  CHOOSE_ALGO(cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
              cudnnGetConvolutionBackwardDataAlgorithm_v7(c->cudnn, s->w, s->y, s->conv, s->x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got_, pf_),
              s->bwd_data, s->data_math, s->ws_data, "backward-data");
  CHOOSE_ALGO(cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
              cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->cudnn, s->x, s->y, s->conv, s->w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got_, pf_),
              s->bwd_filter, s->filter_math, s->ws_filter, "backward-filter");
  size_t ws = s->ws_fwd > s->ws_data ? s->ws_fwd : s->ws_data;
  if (s->ws_filter > ws) ws = s->ws_filter;
  cuda_workspace_reserve(c, (int64_t)ws);
  // Staging in the shared amp buffer: [x | y] in forward, [x | dy] in
  // backward, dx over the x part; the second part on a 256-byte boundary.
  int64_t amp_sz[2] = {s->nx * 2, s->ny * 2};
  if (s->bf16) cuda_amp_reserve(c, cuda_subbuf_plan(amp_sz, 2, s->amp_off));
  // Op-private: [KRSC weight | its gradient | 16-bit copies of both], aligned.
  int64_t sz[4] = {s->nw * 4, s->nw * 4, s->bf16 ? s->nw * 2 : 0, s->bf16 ? s->nw * 2 : 0}, off[4];
  cuda_op_state *st = cuda_op_state_get(c, o, cuda_subbuf_plan(sz, 4, off));
  st->host = s;
  st->host_free = conv_state_free;
  char *base = st->dev;
  s->wk = (float *)(base + off[0]);
  s->dwk = (float *)(base + off[1]);
  if (s->bf16) {
    s->wk_lp = (uint16_t *)(base + off[2]);
    s->dwk_lp = (uint16_t *)(base + off[3]);
  }
}

// KRSC weight (fp32, and bf16 under autocast) from the torch-layout parameter.
static const void *stage_weight(nn_graph *g, int32_t w_pid, conv_state *s) {
  cudaStream_t st = cuda_stream(g);
  // (O, C, k*k) "NCHW" -> (O, k*k, C) "NHWC".
  CUDA_CHECK(dp_cuda_nchw_to_nhwc(nn_param_data(g, w_pid), s->wk, s->co, (int64_t)s->k * s->k, s->ci, 0, st),
             "conv weight layout");
  if (!s->bf16) return s->wk;
  CUDA_CHECK(cuda_to_lp(s->bf16, s->wk, s->wk_lp, s->nw, st), "conv weight cast");
  return s->wk_lp;
}

static void conv_run_forward(nn_op *o, nn_graph *g, const float *x, float *y, int32_t w_pid, int32_t b_pid) {
  cuda_ctx *c = cuda_cx(g);
  conv_state *s = state_of(g, o);
  const void *wp = stage_weight(g, w_pid, s);
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnSetConvolutionMathType(s->conv, s->fwd_math), "conv math type");
  if (s->bf16) {
    uint16_t *xs = c->amp, *ys = (uint16_t *)((char *)c->amp + s->amp_off[1]);
    CUDA_CHECK(cuda_to_lp(s->bf16, x, xs, s->nx, c->compute), "conv input cast");
    CUDNN_CHECK(cudnnConvolutionForward(c->cudnn, &one, s->x, xs, s->w, wp, s->conv, s->fwd, c->workspace, s->ws_fwd,
                                        &zero, s->y, ys), "conv forward");
    CUDA_CHECK(cuda_from_lp(s->bf16, ys, y, s->ny, 0, c->compute), "conv output cast");
  } else {
    CUDNN_CHECK(cudnnConvolutionForward(c->cudnn, &one, s->x, x, s->w, wp, s->conv, s->fwd, c->workspace, s->ws_fwd,
                                        &zero, s->y, y), "conv forward");
  }
  if (b_pid >= 0) {
    // The bias descriptor is fp32; y is fp32 in both modes by now.
    cudnnTensorDescriptor_t yd32;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&yd32), "conv bias");
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(yd32, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s->n, s->co, s->oh, s->ow),
                "conv bias");
    CUDNN_CHECK(cudnnAddTensor(c->cudnn, &one, s->bias, nn_param_data(g, b_pid), &one, yd32, y), "conv bias add");
    cudnnDestroyTensorDescriptor(yd32);
  }
}

static void conv_run_backward(nn_op *o, nn_graph *g, const nn_step *ns, nn_tid xid, const float *dy, int32_t w_pid,
                              int32_t b_pid) {
  cuda_ctx *c = cuda_cx(g);
  conv_state *s = state_of(g, o);
  const nn_tensor *xt = nn_t(g, xid);
  const float one = 1.0f, zero = 0.0f;
  float *dw = nn_param_grad_dst(g, w_pid);
  float *db = b_pid >= 0 ? nn_param_grad_dst(g, b_pid) : NULL;
  int add;
  float *dx = nn_grad_dst(g, xid, &add);
  const void *wp = s->bf16 ? (const void *)s->wk_lp : (const void *)s->wk;   // staged in forward
  if (db) {
    cudnnTensorDescriptor_t yd32;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&yd32), "conv bias grad");
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(yd32, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s->n, s->co, s->oh, s->ow),
                "conv bias grad");
    const float bb = ns->accumulate_grads ? 1.0f : 0.0f;
    CUDNN_CHECK(cudnnConvolutionBackwardBias(c->cudnn, &one, yd32, dy, &bb, s->bias, db), "conv bias gradient");
    cudnnDestroyTensorDescriptor(yd32);
  }
  const void *xin = xt->data, *dyin = dy;
  if (s->bf16) {
    uint16_t *xs = c->amp, *dys = (uint16_t *)((char *)c->amp + s->amp_off[1]);
    CUDA_CHECK(cuda_to_lp(s->bf16, xt->data, xs, s->nx, c->compute), "conv input cast");
    CUDA_CHECK(cuda_to_lp(s->bf16, dy, dys, s->ny, c->compute), "conv dy cast");
    xin = xs;
    dyin = dys;
  }
  if (dw) {
    // cuDNN writes the KRSC gradient; the permute back accumulates if asked.
    CUDNN_CHECK(cudnnSetConvolutionMathType(s->conv, s->filter_math), "conv math type");
    // Under autocast the filter gradient is bf16 (as torch's autocast produces
    // for the bf16 weight copy), widened to fp32 before the layout permute.
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(c->cudnn, &one, s->x, xin, s->y, dyin, s->conv, s->bwd_filter,
                                               c->workspace, s->ws_filter, &zero, s->w,
                                               s->bf16 ? (void *)s->dwk_lp : (void *)s->dwk),
                "conv backward filter");
    if (s->bf16) CUDA_CHECK(cuda_from_lp(s->bf16, s->dwk_lp, s->dwk, s->nw, 0, c->compute), "conv weight-grad cast");
    CUDA_CHECK(dp_cuda_nhwc_to_nchw(s->dwk, dw, s->co, (int64_t)s->k * s->k, s->ci, ns->accumulate_grads, c->compute),
               "conv weight-grad layout");
  }
  if (dx) {
    CUDNN_CHECK(cudnnSetConvolutionMathType(s->conv, s->data_math), "conv math type");
    if (s->bf16) {
      uint16_t *dxs = c->amp;  // x staging is dead once the filter grad is queued (same stream)
      CUDNN_CHECK(cudnnConvolutionBackwardData(c->cudnn, &one, s->w, wp, s->y, dyin, s->conv, s->bwd_data,
                                               c->workspace, s->ws_data, &zero, s->x, dxs),
                  "conv backward data");
      CUDA_CHECK(cuda_from_lp(s->bf16, dxs, dx, s->nx, add, c->compute), "conv dx cast");
    } else {
      const float beta = add ? 1.0f : 0.0f;
      CUDNN_CHECK(cudnnConvolutionBackwardData(c->cudnn, &one, s->w, wp, s->y, dyin, s->conv, s->bwd_data,
                                               c->workspace, s->ws_data, &beta, s->x, dx),
                  "conv backward data");
    }
  }
}

// ---- conv2d -------------------------------------------------------------------------
static void conv_setup(nn_op *o, nn_graph *g) {
  nn_conv2d_op *op = (nn_conv2d_op *)o;
  const nn_tensor *x = nn_t(g, op->x), *y = nn_t(g, op->y);
  conv_plan(o, g, (int)x->dim[0], (int)x->dim[1], (int)x->dim[2], (int)x->dim[3], (int)y->dim[1], (int)y->dim[2],
            (int)y->dim[3], op->k, op->stride, op->pad, op->has_bias);
}
static void conv_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_conv2d_op *op = (nn_conv2d_op *)o;
  conv_run_forward(o, g, nn_t(g, op->x)->data, nn_t(g, op->y)->data, op->w_pid, op->has_bias ? op->b_pid : -1);
}
static void conv_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_conv2d_op *op = (nn_conv2d_op *)o;
  conv_run_backward(o, g, ns, op->x, nn_t(g, op->y)->grad, op->w_pid, op->has_bias ? op->b_pid : -1);
}
const nn_op_vt conv2d_cuda_vt = {"conv2d", conv_setup, conv_forward, conv_backward, NULL, NULL};

// ---- patch_embed: conv k = stride = p; the NHWC output (N, gh, gw, D) is
// exactly the token tensor (N, gh*gw, D) in row-major patch order ------------------------
static void patch_setup(nn_op *o, nn_graph *g) {
  nn_patch_embed_op *op = (nn_patch_embed_op *)o;
  conv_plan(o, g, (int)op->N, (int)op->H, (int)op->W, (int)op->C, (int)op->gh, (int)op->gw, (int)op->D, (int)op->p,
            (int)op->p, 0, 1);
}
static void patch_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_patch_embed_op *op = (nn_patch_embed_op *)o;
  conv_run_forward(o, g, nn_t(g, op->x)->data, nn_t(g, op->y)->data, op->pw, op->pb);
}
static void patch_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_patch_embed_op *op = (nn_patch_embed_op *)o;
  conv_run_backward(o, g, ns, op->x, nn_t(g, op->y)->grad, op->pw, op->pb);
}
const nn_op_vt patch_embed_cuda_vt = {"patch_embed", patch_setup, patch_forward, patch_backward, NULL, NULL};
