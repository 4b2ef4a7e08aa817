// Static computation graph ("tape"), built once by a model builder.
//
// Model builders call op constructors (nn/ops.h). Each constructor registers
// its output tensor(s), its parameters and one nn_op on the tape. After
// nn_graph_finalize():
//   * all trainable parameters live in one flat fp32 buffer (g->params),
//     layer-major in the order backward produces their gradients (the last
//     op's parameters first), so a gradient bucket is a contiguous range;
//   * gradients (g->grads) and optimizer state share that layout;
//   * every parameter (and buffer) starts on an NN_PARAM_ALIGN-element
//     (256-byte) boundary: cuBLASLt and cuDNN pick their fast kernels only for
//     aligned operands. The gaps are padding: zero from finalize on, never
//     written by backward or the optimizers (which work per tensor or per
//     segment of tensors), so all-reduce, grad norm and checkpoints see zeros;
//   * BN running statistics live in a separate named table (g->bufs);
//   * activations and their gradients come from one planned arena.
// Forward runs the tape in order, backward in reverse.
//
// Conventions every op follows:
//   * CPU image tensors are NHWC: dim = {N, H, W, C}. Token tensors are
//     {N, T, D}. Flat features are {N, F}.
//   * Parameters are stored in PyTorch's layout and named as torchvision names
//     them (conv weight (O, I, kh, kw), linear weight (out, in)), so weights
//     move to and from torch without transposes in the file format.
//   * Activation gradients: an op's backward *adds* into an input's gradient
//     if nn_grad_begin() says it already holds a contribution, else writes it.
//   * Parameter gradients: written when s->accumulate_grads (nn_step) == 0, added when 1
//     (gradient accumulation over micro-steps).
#ifndef DP_NN_GRAPH_H
#define DP_NN_GRAPH_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/arena.h"
#include "core/rng.h"
#include "nn/op_kinds.h"

typedef int32_t nn_tid;   // tensor id within a graph
#define NN_MAX_DIMS 4
#define NN_NAME_MAX 96

// Non-zero, so passing one where an nn_backend_vt * is expected is a type error.
typedef enum { NN_BACKEND_CPU = 1, NN_BACKEND_CUDA = 2 } nn_backend;

typedef struct {
  char name[NN_NAME_MAX];
  int ndim;
  int64_t dim[NN_MAX_DIMS];
  int64_t numel;
  float *data;        // planned in the activation arena
  float *grad;        // NULL when no gradient flows here
  int needs_grad;
  int grad_written;   // reset each backward; see nn_grad_begin
  int64_t extra_bytes;   // op-private memory planned with this tensor (e.g. BN mean/var, masks)
  void *extra;
} nn_tensor;

typedef enum {
  NN_INIT_ZEROS = 0,
  NN_INIT_ONES,
  NN_INIT_NORMAL,           // N(0, std)
  NN_INIT_TRUNC_NORMAL,     // N(0, std) truncated to +-2 std
  NN_INIT_UNIFORM,          // U(-bound, bound)
  NN_INIT_KAIMING_FAN_OUT,  // N(0, sqrt(2 / fan_out)), torchvision ResNet convs
  NN_INIT_XAVIER_UNIFORM,
} nn_init_kind;

typedef enum {
  NN_PARAM_WEIGHT = 0,  // conv / linear weights: decayed
  NN_PARAM_BIAS,        // biases: optionally not decayed
  NN_PARAM_NORM,        // BN / LN scale and shift: optionally not decayed
  NN_PARAM_EMBED,       // class token, position embedding: optionally not decayed
} nn_param_kind;

typedef struct {
  char name[NN_NAME_MAX];    // torchvision name, e.g. "layer1.0.conv1.weight"
  int ndim;
  int64_t shape[NN_MAX_DIMS];
  int64_t numel;
  int64_t offset;            // element offset in g->params / g->grads
  nn_param_kind kind;
  nn_init_kind init;
  float init_arg;            // std or bound, by init kind
  int stage;                 // model stage (0 = stem .. S = head) for unfreezing
  int is_head;               // classifier head (gets the head LR)
  int frozen;                // no update, no gradient reduce needed
} nn_param;

typedef struct {
  char name[NN_NAME_MAX];    // e.g. "bn1.running_mean"
  int64_t numel, offset;     // in g->buf_data
  float init_value;
} nn_buffer;

typedef struct nn_graph nn_graph;
typedef struct nn_op nn_op;
typedef struct nn_backend_vt nn_backend_vt;   // nn/backend.h

typedef void (*nn_grad_ready_fn)(void *ctx, int64_t ready_upto);

// What changes every (micro-)step. The graph holds the tape and its memory;
// the caller (trainer, evaluation, tests) owns one nn_step and passes it to
// nn_forward / nn_backward.
typedef struct {
  // Inputs, in the graph's backend memory (device pointers on a CUDA graph).
  const int32_t *labels;     // (N) hard labels, or NULL
  const float *soft_targets; // (N, C) soft targets (mixup/cutmix), or NULL
  int64_t num_valid;         // samples that count in the loss (<= batch; padding excluded)
  float loss_scale;          // backward seed d(loss)/d(loss); 1 unless fp16 loss scaling
  int accumulate_grads;      // 0: param grads overwritten; 1: added (micro-steps after the first)
  uint64_t step;             // global step; dropout streams use it
  // Called during backward each time the ready prefix of g->grads grows.
  nn_grad_ready_fn grad_ready;
  void *grad_ready_ctx;
  // 1: nn_forward leaves `loss` alone on a device graph (the caller reads the
  // loss tensor back asynchronously, e.g. train_device.loss_submit); 0: it
  // downloads it, which on a GPU waits for the forward to finish.
  int defer_loss;
  // Output.
  float loss;                // loss value of the last forward (host), unless deferred
} nn_step;
// num_valid = g->batch, loss_scale = 1, everything else zero.
void nn_step_init(nn_step *s, const nn_graph *g);

// Per-backend function table of an op. Each op kind has one per backend.
typedef struct {
  const char *kind;                                     // "conv2d", "batchnorm2d", ...
  void (*setup)(nn_op *op, nn_graph *g);                // after memory exists (optional)
  void (*forward)(nn_op *op, nn_graph *g, nn_step *s);
  void (*backward)(nn_op *op, nn_graph *g, nn_step *s);
  void (*destroy)(nn_op *op);                           // free op-private resources (optional)
  // Adds this backend's private memory to the op's plan (workspace_bytes,
  // extra_bytes of its outputs) when the op is pushed (optional).
  void (*plan)(nn_op *op, nn_graph *g);
} nn_op_vt;

// Every op struct embeds this first.
struct nn_op {
  const nn_op_vt *vt;
  nn_op_kind kind;
  char name[NN_NAME_MAX];
  nn_tid out;                // main output tensor (for summaries)
  int64_t flops;             // forward FLOPs for the whole batch (2 per MAC)
  int64_t workspace_bytes;   // scratch this op needs during forward/backward
  int64_t param_lo, param_hi;   // element range of its params after finalize (lo == hi: none)
  void *be_state;            // the backend's private state of this op (created in setup)
};

struct nn_graph {
  const nn_backend_vt *be;   // the backend's hooks and op tables
  nn_backend backend;        // be->kind
  int64_t batch;             // batch size the graph is planned for
  int training;              // 1: training mode (BN batch stats, dropout on)

  nn_tensor *tensors;
  int32_t ntensors, cap_tensors;
  nn_op **ops;
  int32_t nops, cap_ops;
  int32_t *op_param_first, *op_param_count;   // registration ranges per op

  nn_param *params;
  int32_t nparams, cap_params;
  int64_t nparam_elems;      // flat buffer length: parameters plus alignment padding (NN_PARAM_ALIGN)
  float *params_data;        // flat parameter buffer (fp32); device memory on a CUDA graph
  float *grads;              // same layout as params_data
  float *params_host;        // host copy of params_data on a CUDA graph (nn_params_host), else NULL

  nn_buffer *bufs;
  int32_t nbufs, cap_bufs;
  int64_t nbuf_elems;        // buffer length, each buffer's offset aligned like the parameters'
  float *buf_data;
  float *bufs_host;          // host copy of buf_data on a CUDA graph (nn_bufs_host), else NULL

  dp_arena act;              // activations + activation grads + op extras
  float *workspace;          // shared scratch, size = max op workspace_bytes (CPU graphs only:
                             // the CUDA ops use their context's bounded workspace)
  int64_t workspace_bytes;
  int64_t backend_alloc_bytes;   // what finalize allocated through nn_backend_alloc
  int finalized;

  nn_tid input;              // image or token input tensor (the caller fills its data)
  nn_tid logits;             // set by the builder
  nn_tid loss_tensor;        // scalar (1 element), set by the loss op
  float loss_seed;           // value held by the loss tensor's gradient (the backward seed)
  int loss_seed_set;         // 0 until nn_backward first uploads it
  uint64_t seed;             // for dropout and init

  void *backend_ctx;         // oneDNN engine/stream or CUDA handles
};

// ---- building ---------------------------------------------------------------
// be: the backend (cpu_backend() in backend/cpu/cpu.h, cuda_backend() in
// backend/cuda/cuda.h), chosen by the layer above.
nn_graph *nn_graph_create(const nn_backend_vt *be, int64_t batch, uint64_t seed);
void nn_graph_destroy(nn_graph *g);
nn_tid nn_tensor_new(nn_graph *g, const char *name, int ndim, const int64_t *dim, int needs_grad);
static inline nn_tensor *nn_t(nn_graph *g, nn_tid id) { return &g->tensors[id]; }
// Register a parameter owned by the op being built (call before nn_op_push).
int32_t nn_param_new(nn_graph *g, const char *name, int ndim, const int64_t *shape,
                     nn_param_kind kind, nn_init_kind init, float init_arg);
int32_t nn_buffer_new(nn_graph *g, const char *name, int64_t numel, float init_value);
// Append an op to the tape; it takes ownership. Params registered since the
// previous push belong to this op.
void nn_op_push(nn_graph *g, nn_op *op);
// Lay out params, plan and allocate memory, run op setup, initialise params.
void nn_graph_finalize(nn_graph *g);

// ---- running ----------------------------------------------------------------
static inline float *nn_param_data(nn_graph *g, int32_t pid) { return g->params_data + g->params[pid].offset; }
static inline float *nn_param_grad(nn_graph *g, int32_t pid) { return g->grads + g->params[pid].offset; }
static inline float *nn_buf(nn_graph *g, int32_t bid) { return g->buf_data + g->bufs[bid].offset; }
// Runs the tape; s->loss gets the loss when the graph has a loss op.
void nn_forward(nn_graph *g, nn_step *s);
// Seeds d(loss)/d(loss) = s->loss_scale and runs the tape in reverse, calling
// s->grad_ready as parameter gradients complete.
void nn_backward(nn_graph *g, nn_step *s);
// Returns 1 if the gradient of tensor t already holds a contribution this
// backward pass (so the caller must add), 0 if the caller should overwrite.
// Marks it as written either way.
int nn_grad_begin(nn_graph *g, nn_tid t);
// Where an op's backward writes d(loss)/d(t): t->grad (NULL when t needs no
// gradient), with *add = 1 if a contribution is already there.
static inline float *nn_grad_dst(nn_graph *g, nn_tid t, int *add) {
  nn_tensor *x = nn_t(g, t);
  *add = 0;
  if (!x->grad) return NULL;
  *add = nn_grad_begin(g, t);
  return x->grad;
}
// Where an op's backward writes a parameter's gradient: NULL when frozen
// (the weight gradient is skipped).
static inline float *nn_param_grad_dst(nn_graph *g, int32_t pid) {
  if (pid < 0 || g->params[pid].frozen) return NULL;
  return nn_param_grad(g, pid);
}
void nn_graph_set_training(nn_graph *g, int training);
void nn_params_init(nn_graph *g, uint64_t seed);
void nn_buffers_reset(nn_graph *g);
// 1 when the flat buffers and tensors are host memory (CPU graph).
int nn_graph_host_memory(const nn_graph *g);
// Host views of the flat parameter / BN-buffer memory, for checkpoints,
// weight files and broadcasts. On a CPU graph they are the buffers
// themselves; on a CUDA graph a host copy that *_host downloads (one copy)
// and *_push uploads after the caller changed it.
float *nn_params_host(nn_graph *g);
void nn_params_push(nn_graph *g);
float *nn_bufs_host(nn_graph *g);
void nn_bufs_push(nn_graph *g);
// Copies n floats of graph memory (e.g. g->grads, a tensor's data) to the host.
void nn_graph_read(nn_graph *g, float *dst_host, const float *src, int64_t n);

// ---- introspection ----------------------------------------------------------
int32_t nn_param_find(const nn_graph *g, const char *name);
int32_t nn_buffer_find(const nn_graph *g, const char *name);
int64_t nn_flops_per_image(const nn_graph *g);    // forward FLOPs / batch
// Trainable parameter count (sum of tensor sizes, no padding); g->nparam_elems
// is the flat buffer length.
int64_t nn_param_count(const nn_graph *g);
// Offsets of the flat buffers are multiples of this many fp32 elements (256 B).
#define NN_PARAM_ALIGN 64
static inline int64_t nn_param_align(int64_t n) { return (n + NN_PARAM_ALIGN - 1) / NN_PARAM_ALIGN * NN_PARAM_ALIGN; }

typedef struct {
  int64_t params_bytes, grads_bytes, buffers_bytes;
  int64_t activations_bytes;        // forward outputs kept for backward
  int64_t activation_grads_bytes;
  int64_t extras_bytes;             // op-private saved state (masks, stats)
  int64_t workspace_bytes;
  int64_t optimizer_bytes;          // filled by the caller (depends on optimizer)
  int64_t input_bytes;              // input pipeline batch buffers (caller)
  int64_t backend_bytes;            // CUDA: the context's own memory (library workspace,
                                    // autocast staging, op state) as tracked so far
  int64_t total_bytes;
  int64_t measured_bytes;           // CUDA: device memory in use (driver); -1 when not measured
} nn_memory_plan;
// Plan without allocating (works on a finalized or a not-yet-finalized graph).
nn_memory_plan nn_graph_memory_plan(const nn_graph *g, int optimizer_state_copies);
void nn_graph_print_summary(const nn_graph *g, FILE *f);

#endif
