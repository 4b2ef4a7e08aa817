#include "nn/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "nn/backend.h"
#include "nn/plan.h"

// The graph before any op: no backend context yet.
static nn_graph *graph_new(const nn_backend_vt *be, int64_t batch, uint64_t seed) {
  if (batch < 1) DP_FATAL("graph create", "use --batch >= 1", "batch size %lld < 1", (long long)batch);
  if (!be) DP_FATAL("graph create", "internal error", "no backend given");
  nn_graph *g = dp_calloc(1, sizeof *g, "graph");
  g->be = be;
  g->backend = be->kind;
  g->batch = batch;
  g->training = 1;
  g->seed = seed;
  g->input = g->logits = g->loss_tensor = -1;
  g->plan_mode = NN_PLAN_LIFETIME;
  g->plan_recompute = 1;
  return g;
}

nn_graph *nn_graph_create(const nn_backend_vt *be, int64_t batch, uint64_t seed) {
  nn_graph *g = graph_new(be, batch, seed);
  g->backend_ctx = be->ctx_create();
  return g;
}

nn_graph *nn_graph_create_planning(const nn_backend_vt *be, int64_t batch) {
  return graph_new(be, batch, 0);   // backend_ctx stays NULL: nn_graph_finalize refuses this graph
}

void nn_graph_set_plan(nn_graph *g, int mode, int recompute) {
  DP_CHECK(!g->finalized, "choosing the memory plan", "set it before nn_graph_finalize");
  g->plan_mode = mode == NN_PLAN_FLAT ? NN_PLAN_FLAT : NN_PLAN_LIFETIME;
  g->plan_recompute = recompute ? 1 : 0;
}

void nn_step_init(nn_step *s, const nn_graph *g) {
  memset(s, 0, sizeof *s);
  s->num_valid = g->batch;
  s->loss_scale = 1.0f;
}

void nn_graph_destroy(nn_graph *g) {
  if (!g) return;
  for (int32_t i = 0; i < g->nops; i++) {
    if (g->ops[i]->vt->destroy) g->ops[i]->vt->destroy(g->ops[i]);
    free(g->ops[i]);
  }
  free(g->ops);
  free(g->op_param_first);
  free(g->op_param_count);
  free(g->tensors);
  free(g->params);
  free(g->bufs);
  free(g->recompute_start);
  free(g->recompute_list);
  // Backend memory goes back through the hook before the context that owns
  // it (the CUDA context holds the streams the frees synchronise on).
  size_t pbytes = (size_t)(g->nparam_elems > 0 ? g->nparam_elems : 1) * 4;
  nn_backend_free(g, g->params_data, pbytes);
  nn_backend_free(g, g->grads, pbytes);
  nn_backend_free(g, g->buf_data, (size_t)(g->nbuf_elems > 0 ? g->nbuf_elems : 1) * 4);
  nn_backend_free(g, g->act.base, g->act.size);
  dp_arena_free(&g->act);   // external: leaves the base alone
  free(g->workspace);
  free(g->params_host);
  free(g->bufs_host);
  if (g->backend_ctx) g->be->ctx_destroy(g->backend_ctx);
  free(g);
}

static void grow(void **p, int32_t *cap, int32_t need, size_t elem, const char *what) {
  if (need <= *cap) return;
  int32_t nc = *cap ? *cap * 2 : 64;
  while (nc < need) nc *= 2;
  *p = dp_realloc(*p, (size_t)nc * elem, what);
  memset((char *)*p + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
  *cap = nc;
}

nn_tid nn_tensor_new(nn_graph *g, const char *name, int ndim, const int64_t *dim, int needs_grad) {
  DP_CHECK(!g->finalized, "adding a tensor", "build the whole model before finalize");
  if (ndim < 1 || ndim > NN_MAX_DIMS)
    DP_FATAL("tensor new", "model builder bug", "tensor %s has %d dims", name, ndim);
  // Callers pass another tensor's dim array (nn_t(g, x)->dim), which the
  // realloc below may free: copy it first (found by ASan, ResNet-50 build).
  int64_t d[NN_MAX_DIMS];
  memcpy(d, dim, (size_t)ndim * sizeof *d);
  dim = d;
  grow((void **)&g->tensors, &g->cap_tensors, g->ntensors + 1, sizeof(nn_tensor), "tensors");
  nn_tensor *t = &g->tensors[g->ntensors];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name ? name : "t");
  t->ndim = ndim;
  t->numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (dim[i] < 1) DP_FATAL("tensor new", "input too small for this model?", "tensor %s dim %d = %lld", t->name, i, (long long)dim[i]);
    t->dim[i] = dim[i];
    t->numel *= dim[i];
  }
  t->needs_grad = needs_grad;
  t->producer = -1;
  t->data_off = t->grad_off = t->extra_off = -1;
  return g->ntensors++;
}

int32_t nn_param_new(nn_graph *g, const char *name, int ndim, const int64_t *shape,
                     nn_param_kind kind, nn_init_kind init, float init_arg) {
  DP_CHECK(!g->finalized, "adding a parameter", "build the whole model before finalize");
  grow((void **)&g->params, &g->cap_params, g->nparams + 1, sizeof(nn_param), "params");
  nn_param *p = &g->params[g->nparams];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->ndim = ndim;
  p->numel = 1;
  for (int i = 0; i < ndim; i++) {
    p->shape[i] = shape[i];
    p->numel *= shape[i];
  }
  p->kind = kind;
  p->init = init;
  p->init_arg = init_arg;
  p->offset = -1;
  return g->nparams++;
}

int32_t nn_buffer_new(nn_graph *g, const char *name, int64_t numel, float init_value) {
  DP_CHECK(!g->finalized, "adding a buffer", "build the whole model before finalize");
  grow((void **)&g->bufs, &g->cap_bufs, g->nbufs + 1, sizeof(nn_buffer), "buffers");
  nn_buffer *b = &g->bufs[g->nbufs];
  snprintf(b->name, sizeof b->name, "%s", name);
  b->numel = numel;
  b->offset = nn_param_align(g->nbuf_elems);
  b->init_value = init_value;
  g->nbuf_elems = b->offset + numel;
  return g->nbufs++;
}

void nn_op_input(nn_op *op, nn_tid t, int keep) {
  if (op->nin >= NN_OP_MAX_IN)
    DP_FATAL("building an op", "model builder bug", "%s: more than %d inputs", op->name, NN_OP_MAX_IN);
  op->in[op->nin] = t;
  op->in_keep[op->nin++] = keep ? 1 : 0;
}

void nn_op_push(nn_graph *g, nn_op *op) {
  DP_CHECK(!g->finalized, "adding an op", "build the whole model before finalize");
  // The plan needs every op's output and inputs (nn_op_input in the
  // constructor). An op without an output (out < 0: side effects only, e.g.
  // a test's toy op) takes no arena memory.
  if (op->out >= g->ntensors || (op->out >= 0 && g->tensors[op->out].producer >= 0))
    DP_FATAL("adding an op", "op constructor bug", "%s: output %d missing or already written by another op",
             op->name, (int)op->out);
  for (int k = 0; k < op->nin; k++) {
    if (op->in[k] < 0 || op->in[k] >= g->ntensors || op->in[k] == op->out)
      DP_FATAL("adding an op", "op constructor bug", "%s: input %d is tensor %d", op->name, k, (int)op->in[k]);
    g->tensors[op->in[k]].nconsumers++;
  }
  if (op->out >= 0) g->tensors[op->out].producer = g->nops;
  int32_t old = g->cap_ops;
  grow((void **)&g->ops, &g->cap_ops, g->nops + 1, sizeof(nn_op *), "ops");
  if (g->cap_ops != old) {
    int32_t c1 = old, c2 = old;
    grow((void **)&g->op_param_first, &c1, g->cap_ops, sizeof(int32_t), "ops");
    grow((void **)&g->op_param_count, &c2, g->cap_ops, sizeof(int32_t), "ops");
  }
  // Params registered since the previous op belong to this one.
  int32_t first = 0;
  for (int32_t i = 0; i < g->nops; i++) first += g->op_param_count[i];
  g->op_param_first[g->nops] = first;
  g->op_param_count[g->nops] = g->nparams - first;
  // The backend adds its private memory (library scratch, saved formats).
  if (op->vt->plan) op->vt->plan(op, g);
  g->ops[g->nops++] = op;
}

// Offsets of the flat parameter buffer: backward produces gradients from the
// last op to the first, so the last-registered parameter gets offset 0; each
// starts on an NN_PARAM_ALIGN boundary. Returns the buffer length; assigns
// the offsets when params is given (the graph's own table).
static int64_t param_layout(const nn_graph *g, nn_param *params) {
  int64_t off = 0;
  for (int32_t i = g->nparams - 1; i >= 0; i--) {
    off = nn_param_align(off);
    if (params) params[i].offset = off;
    off += g->params[i].numel;
  }
  return nn_param_align(off);
}

int64_t nn_param_count(const nn_graph *g) {
  int64_t n = 0;
  for (int32_t i = 0; i < g->nparams; i++) n += g->params[i].numel;
  return n;
}

nn_memory_plan nn_graph_memory_plan(const nn_graph *g, int optimizer_state_copies) {
  nn_memory_plan m;
  memset(&m, 0, sizeof m);
  // The real buffer length, padding included (what is allocated).
  int64_t np = g->finalized ? g->nparam_elems : param_layout(g, NULL);
  m.params_bytes = np * 4;
  m.grads_bytes = np * 4;
  m.buffers_bytes = g->nbuf_elems * 4;
  nn_plan p;
  nn_plan_build(g, 0, &p);
  m.arena_bytes = p.arena_bytes;
  m.activations_bytes = p.live_data;
  m.activation_grads_bytes = p.live_grad;
  m.extras_bytes = p.live_extra;
  m.peak_step = p.peak_step;
  m.kept_bytes = p.kept_bytes;
  m.flat_arena_bytes = p.flat_bytes;
  m.recomputed_tensors = p.nrecompute;
  const nn_backend_vt *vt = g->be;
  // The CPU kernels share g->workspace; the CUDA tables never touch it (their
  // libraries use the context's bounded workspace, counted in backend_bytes).
  if (vt->host_memory)
    for (int32_t i = 0; i < g->nops; i++)
      if (g->ops[i]->workspace_bytes > m.workspace_bytes) m.workspace_bytes = g->ops[i]->workspace_bytes;
  m.optimizer_bytes = (int64_t)optimizer_state_copies * np * 4;
  // What the context allocated itself so far (its tally includes the graph's
  // own buffers, which are counted above). Call before creating a GPU
  // optimizer, whose state is in optimizer_bytes.
  if (vt->ctx_bytes && g->backend_ctx) {
    int64_t own = vt->ctx_bytes(g->backend_ctx) - g->backend_alloc_bytes;
    m.backend_bytes = own > 0 ? own : 0;
  }
  m.runtime_bytes = vt->runtime_bytes ? vt->runtime_bytes(g, &m.runtime_startup_bytes) : 0;
  m.total_bytes = m.params_bytes + m.grads_bytes + m.buffers_bytes + m.arena_bytes + m.workspace_bytes +
                  m.optimizer_bytes + m.backend_bytes + m.runtime_bytes;
  m.measured_bytes = vt->measured_bytes && g->backend_ctx ? vt->measured_bytes(g->backend_ctx) : -1;
  return m;
}

// Carves the arena by the lifetime plan: tensor data, gradients, extras and
// backward scratch at their planned offsets; the recompute schedule.
static size_t arena_layout(nn_graph *g) {
  nn_plan p;
  nn_plan_build(g, 1, &p);
  DP_CHECK(p.overlaps == 0, "planning the activation arena", "a planner bug: live items overlap");
  size_t bytes = (size_t)p.arena_bytes + 4096;
  // One block from the backend (one cudaMalloc on a GPU).
  dp_arena_init_external(&g->act, nn_backend_alloc(g, bytes, "activation arena"), bytes);
  g->act.used = g->act.peak = (size_t)p.arena_bytes;
  uint8_t *base = g->act.base;
  int32_t nrc = 0;
  for (int32_t i = 0; i < g->ntensors; i++) {
    nn_tensor *t = &g->tensors[i];
    t->data_off = p.data_off[i];
    t->grad_off = t->needs_grad ? p.grad_off[i] : -1;
    t->extra_off = t->extra_bytes > 0 ? p.extra_off[i] : -1;
    t->data = (float *)(base + t->data_off);
    t->grad = t->grad_off >= 0 ? (float *)(base + t->grad_off) : NULL;
    t->extra = t->extra_off >= 0 ? base + t->extra_off : NULL;
    t->pinned = p.pinned[i];
    t->recomputed = p.recomputed[i];
    nrc += t->recomputed;
  }
  for (int32_t i = 0; i < g->nops; i++)
    g->ops[i]->bwd_scratch = p.scratch_off[i] >= 0 ? base + p.scratch_off[i] : NULL;
  // Recompute schedule, by the op before whose backward each tensor is rebuilt.
  g->recompute_start = dp_calloc((size_t)g->nops + 1, sizeof(int32_t), "recompute schedule");
  g->recompute_list = dp_malloc((size_t)(nrc > 0 ? nrc : 1) * sizeof(nn_tid), "recompute schedule");
  for (int32_t i = 0; i < g->ntensors; i++)
    if (p.recomputed[i]) g->recompute_start[p.recompute_at[i] + 1]++;
  for (int32_t i = 0; i < g->nops; i++) g->recompute_start[i + 1] += g->recompute_start[i];
  int32_t *fill = dp_calloc((size_t)g->nops + 1, sizeof(int32_t), "recompute schedule");
  for (int32_t i = 0; i < g->ntensors; i++)
    if (p.recomputed[i]) {
      int32_t at = p.recompute_at[i];
      g->recompute_list[g->recompute_start[at] + fill[at]++] = i;
    }
  free(fill);
  nn_plan_free(&p);
  return bytes;
}

void nn_graph_finalize(nn_graph *g) {
  DP_CHECK(!g->finalized, "finalize", "finalize once");
  DP_CHECK(g->backend_ctx != NULL, "finalize", "a planning graph (nn_graph_create_planning) cannot be finalized");
  int64_t off = param_layout(g, g->params);
  g->nparam_elems = off;
  for (int32_t i = 0; i < g->nops; i++) {
    nn_op *op = g->ops[i];
    int32_t f = g->op_param_first[i], c = g->op_param_count[i];
    if (c == 0) {
      op->param_lo = op->param_hi = 0;
      continue;
    }
    int64_t lo = INT64_MAX, hi = 0;
    for (int32_t p = f; p < f + c; p++) {
      if (g->params[p].offset < lo) lo = g->params[p].offset;
      if (g->params[p].offset + g->params[p].numel > hi) hi = g->params[p].offset + g->params[p].numel;
    }
    op->param_lo = lo;
    // The padding after the op's last tensor is ready with it (it is zero), so
    // the ready prefix reported to grad_ready covers whole aligned blocks.
    op->param_hi = nn_param_align(hi) < off ? nn_param_align(hi) : off;
  }
  size_t pbytes = (size_t)(off > 0 ? off : 1) * 4, bbytes = (size_t)(g->nbuf_elems > 0 ? g->nbuf_elems : 1) * 4;
  g->params_data = nn_backend_alloc(g, pbytes, "parameter buffer");
  g->grads = nn_backend_alloc(g, pbytes, "gradient buffer");
  // Padding starts (and stays) zero in all three flat buffers.
  nn_backend_memset(g, g->params_data, 0, pbytes);
  nn_backend_memset(g, g->grads, 0, pbytes);
  g->buf_data = nn_backend_alloc(g, bbytes, "buffers");
  nn_backend_memset(g, g->buf_data, 0, bbytes);

  // Activation arena, planned by lifetime (nn/plan.h).
  size_t arena_bytes = arena_layout(g);
  g->backend_alloc_bytes = (int64_t)(2 * pbytes + bbytes + arena_bytes);
  // Touch everything now so the first step does not pay page faults and RSS
  // matches the plan from the start.
  nn_backend_memset(g, g->act.base, 0, g->act.size);
  // Shared op workspace: the largest op's (0 on a CUDA graph, see the memory plan).
  g->workspace_bytes = 0;
  if (g->be->host_memory)
    for (int32_t i = 0; i < g->nops; i++)
      if (g->ops[i]->workspace_bytes > g->workspace_bytes) g->workspace_bytes = g->ops[i]->workspace_bytes;
  if (g->workspace_bytes > 0) {
    g->workspace = dp_aligned_alloc(64, (size_t)g->workspace_bytes, "op workspace");
    memset(g->workspace, 0, (size_t)g->workspace_bytes);
  }
  g->finalized = 1;
  for (int32_t i = 0; i < g->nops; i++)
    if (g->ops[i]->vt->setup) g->ops[i]->vt->setup(g->ops[i], g);
  nn_params_init(g, g->seed);
  nn_buffers_reset(g);
}

int nn_graph_host_memory(const nn_graph *g) { return g->be->host_memory; }

// Host staging for a CUDA graph's flat buffers (kept: checkpoints reuse it).
static float *host_copy(nn_graph *g, float **slot, int64_t n) {
  if (nn_graph_host_memory(g)) return NULL;
  if (!*slot) {
    *slot = dp_aligned_alloc(64, (size_t)(n > 0 ? n : 1) * 4, "host copy of graph buffers");
    memset(*slot, 0, (size_t)(n > 0 ? n : 1) * 4);   // padding uploads as zeros
  }
  return *slot;
}

// A flat graph buffer as host memory: itself on the CPU, a fresh download
// into its staging copy on a GPU.
static float *host_view(nn_graph *g, float **slot, float *data, int64_t n) {
  DP_CHECK(g->finalized, "reading graph buffers", "call nn_graph_finalize first");
  float *h = host_copy(g, slot, n);
  if (!h) return data;
  nn_backend_download(g, h, data, (size_t)n * 4);
  return h;
}
// Uploads the staging copy (edited through host_view) back; no-op on the CPU.
static void host_push(nn_graph *g, const float *staged, float *data, int64_t n) {
  if (nn_graph_host_memory(g) || !staged) return;
  nn_backend_upload(g, data, staged, (size_t)n * 4);
}
float *nn_params_host(nn_graph *g) { return host_view(g, &g->params_host, g->params_data, g->nparam_elems); }
void nn_params_push(nn_graph *g) { host_push(g, g->params_host, g->params_data, g->nparam_elems); }
float *nn_bufs_host(nn_graph *g) { return host_view(g, &g->bufs_host, g->buf_data, g->nbuf_elems); }
void nn_bufs_push(nn_graph *g) { host_push(g, g->bufs_host, g->buf_data, g->nbuf_elems); }
void nn_graph_read(nn_graph *g, float *dst_host, const float *src, int64_t n) {
  if (n > 0) nn_backend_download(g, dst_host, src, (size_t)n * 4);
}

void nn_buffers_reset(nn_graph *g) {
  // Fill host memory (the buffer itself on the CPU, the staging copy on a
  // GPU), then upload once.
  float *h = host_copy(g, &g->bufs_host, g->nbuf_elems);
  float *base = h ? h : g->buf_data;
  for (int32_t i = 0; i < g->nbufs; i++) {
    float *b = base + g->bufs[i].offset;
    for (int64_t k = 0; k < g->bufs[i].numel; k++) b[k] = g->bufs[i].init_value;
  }
  if (h) nn_bufs_push(g);
}

static void fans(const nn_param *p, double *fan_in, double *fan_out) {
  double recept = 1;
  for (int i = 2; i < p->ndim; i++) recept *= (double)p->shape[i];
  if (p->ndim >= 2) {
    *fan_in = (double)p->shape[1] * recept;
    *fan_out = (double)p->shape[0] * recept;
  } else {
    *fan_in = *fan_out = (double)p->shape[0];
  }
}

void nn_params_init(nn_graph *g, uint64_t seed) {
  float *h = host_copy(g, &g->params_host, g->nparam_elems);
  float *base = h ? h : g->params_data;
  for (int32_t i = 0; i < g->nparams; i++) {
    const nn_param *p = &g->params[i];
    float *w = base + p->offset;
    dp_rng r = dp_rng_stream3(seed, 0x1417, (uint64_t)i);
    double fi, fo;
    fans(p, &fi, &fo);
    for (int64_t k = 0; k < p->numel; k++) {
      double v = 0;
      switch (p->init) {
        case NN_INIT_ZEROS: v = 0; break;
        case NN_INIT_ONES: v = 1; break;
        case NN_INIT_NORMAL: v = p->init_arg * dp_rng_normal(&r); break;
        case NN_INIT_TRUNC_NORMAL:
          do v = dp_rng_normal(&r); while (fabs(v) > 2.0);
          v *= p->init_arg;
          break;
        case NN_INIT_UNIFORM: v = dp_rng_range(&r, -p->init_arg, p->init_arg); break;
        case NN_INIT_KAIMING_FAN_OUT: v = sqrt(2.0 / fo) * dp_rng_normal(&r); break;
        case NN_INIT_XAVIER_UNIFORM: {
          double b = sqrt(6.0 / (fi + fo));
          v = dp_rng_range(&r, -b, b);
          break;
        }
      }
      w[k] = (float)v;
    }
  }
  if (h) nn_params_push(g);
}

int nn_grad_begin(nn_graph *g, nn_tid t) {
  nn_tensor *x = &g->tensors[t];
  int had = x->grad_written;
  x->grad_written = 1;
  return had;
}

void nn_graph_set_training(nn_graph *g, int training) { g->training = training; }

void nn_forward(nn_graph *g, nn_step *s) {
  DP_CHECK(g->finalized, "forward", "call nn_graph_finalize first");
  for (int32_t i = 0; i < g->nops; i++) g->ops[i]->vt->forward(g->ops[i], g, s);
  // On a GPU this read-back waits for the forward; the trainer defers it
  // (defer_loss) and reads the loss asynchronously instead.
  if (g->loss_tensor >= 0 && (nn_graph_host_memory(g) || !s->defer_loss))
    nn_graph_read(g, &s->loss, g->tensors[g->loss_tensor].data, 1);
}

void nn_backward(nn_graph *g, nn_step *s) {
  DP_CHECK(g->finalized && g->loss_tensor >= 0, "backward", "the model needs a loss op");
  for (int32_t i = 0; i < g->ntensors; i++) g->tensors[i].grad_written = 0;
  nn_tensor *l = &g->tensors[g->loss_tensor];
  if (l->grad) {
    // The seed is the loss scale (fp16 scaling multiplies the seed, not the
    // loss). The loss gradient is nobody else's memory, so it is uploaded only
    // when the scale changes: on a GPU an upload waits for the stream, and a
    // per-step one would stall every backward behind its forward.
    if (!g->loss_seed_set || g->loss_seed != s->loss_scale) {
      nn_backend_upload(g, l->grad, &s->loss_scale, sizeof(float));
      g->loss_seed = s->loss_scale;
      g->loss_seed_set = 1;
    }
    l->grad_written = 1;
  }
  for (int32_t i = g->nops - 1; i >= 0; i--) {
    nn_op *op = g->ops[i];
    // Outputs not kept from forward are rebuilt before their first reader.
    for (int32_t k = g->recompute_start[i]; k < g->recompute_start[i + 1]; k++) {
      const nn_tensor *t = &g->tensors[g->recompute_list[k]];
      nn_op *po = g->ops[t->producer];
      g->be->recompute[po->kind](po, g);
    }
    // Gradient memory is reused: an output no consumer wrote a gradient into
    // (a dead end of the graph) holds zeros, not another tensor's values.
    nn_tensor *y = op->out >= 0 ? &g->tensors[op->out] : NULL;
    if (y && y->grad && !y->grad_written) {
      nn_backend_memset(g, y->grad, 0, (size_t)y->numel * 4);
      y->grad_written = 1;
    }
    op->vt->backward(op, g, s);
    if (s->grad_ready && op->param_hi > op->param_lo) s->grad_ready(s->grad_ready_ctx, op->param_hi);
  }
  if (s->grad_ready) s->grad_ready(s->grad_ready_ctx, g->nparam_elems);
}

int32_t nn_param_find(const nn_graph *g, const char *name) {
  for (int32_t i = 0; i < g->nparams; i++)
    if (!strcmp(g->params[i].name, name)) return i;
  return -1;
}
int32_t nn_buffer_find(const nn_graph *g, const char *name) {
  for (int32_t i = 0; i < g->nbufs; i++)
    if (!strcmp(g->bufs[i].name, name)) return i;
  return -1;
}

int64_t nn_flops_per_image(const nn_graph *g) {
  int64_t f = 0;
  for (int32_t i = 0; i < g->nops; i++) f += g->ops[i]->flops;
  return g->batch > 0 ? f / g->batch : f;
}

void nn_graph_print_summary(const nn_graph *g, FILE *f) {
  fprintf(f, "%-4s %-40s %-16s %-24s %12s %14s\n", "#", "op", "kind", "output", "params", "MFLOP/img");
  for (int32_t i = 0; i < g->nops; i++) {
    const nn_op *op = g->ops[i];
    int64_t np = 0;
    for (int32_t p = g->op_param_first[i]; p < g->op_param_first[i] + g->op_param_count[i]; p++)
      np += g->params[p].numel;
    char shape[64] = "";
    if (op->out >= 0 && op->out < g->ntensors) {
      const nn_tensor *t = &g->tensors[op->out];
      int o = 0;
      for (int d = 0; d < t->ndim && o < (int)sizeof shape - 12; d++)
        o += snprintf(shape + o, sizeof shape - (size_t)o, d ? "x%lld" : "%lld", (long long)t->dim[d]);
    }
    fprintf(f, "%-4d %-40.40s %-16s %-24s %12lld %14.2f\n", i, op->name, op->vt->kind, shape,
            (long long)np, g->batch ? (double)op->flops / (double)g->batch / 1e6 : 0.0);
  }
}
