// The CUDA training device (train/device.h): GPU choice per local rank,
// precision, GPU-local binding, pinned double-buffered input (cuda_input),
// NCCL bucketed all-reduce from the graph's grad_ready hook (nccl_reduce),
// the fused GPU optimizer with the fp16 loss scaler (cuda_optim).
// Nothing here has run on a GPU yet (see README.md in this folder).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_bind.h"
#include "backend/cuda/cuda_input.h"
#include "backend/cuda/cuda_optim.h"
#include "backend/cuda/cuda_plan.h"
#include "backend/cuda/kernels.h"
#include "dist/nccl_reduce.h"
#include "dist/watchdog.h"
#include "core/log.h"
#include "nn/backend.h"
#include "train/device.h"

#define CU_LOSS_SLOTS 8   // train/device.h: up to 8 loss read-backs in flight

typedef struct {
  dist_ctx *d;
  cuda_precision precision;
  float mean[4], std[4];
  cuda_input in;
  int in_ready;
  uint64_t slot;                // input slot counter (double buffering)
  float *soft;                  // device (batch, C) soft targets
  int64_t soft_elems;
  float *logits_h;              // host copy of the logits
  int64_t logits_elems;
  cuda_nccl nc;
  int nc_ready;
  cuda_grad_reducer red;
  int red_on;
  // Asynchronous loss read-back: per micro-step slot, a pinned float filled by
  // a copy queued right after forward, and its event.
  float *loss_host;             // (CU_LOSS_SLOTS) pinned
  cudaEvent_t loss_ev[CU_LOSS_SLOTS];
  cuda_ctx *loss_cx;
} cuda_dev;

typedef struct {
  cuda_optimizer o;
  uint8_t *base_frozen;         // caller's frozen flags at create time
  int num_stages;
  int any_frozen;
} cuda_dev_optim;

int train_device_cuda_probe(char *msg, size_t msg_size) { return cuda_device_probe(msg, msg_size); }

static cuda_ctx *ctx_of(nn_graph *g) {
  DP_CHECK(g->backend == NN_BACKEND_CUDA, "CUDA training device", "the graph must be created with td->backend");
  return cuda_ctx_of(g->backend_ctx);
}

static void cu_feed(train_device *td, nn_graph *g, nn_step *s, const loader_batch *b, int64_t nvalid) {
  cuda_dev *c = td->impl;
  cuda_ctx *cx = ctx_of(g);
  nn_tensor *x = nn_t(g, g->input);   // (N, H, W, C)
  if (!b->images_u8)
    DP_FATAL("staging a batch on the GPU", "internal error: the loader must run with out_uint8", "no uint8 images");
  if (x->ndim != 4 || x->dim[0] != g->batch)
    DP_FATAL("staging a batch on the GPU", "internal error", "graph input is not (N, H, W, C) at batch %lld",
             (long long)g->batch);
  if (!c->in_ready) {
    // Pinned slots sized for the graph's batch; the loader decodes to the
    // graph's channel count, so c_in == c_out.
    cuda_input_init(&c->in, cx, g->batch, x->dim[1], x->dim[2], (int)x->dim[3], (int)x->dim[3], c->mean, c->std);
    c->in_ready = 1;
  }
  int slot = (int)(c->slot++ & 1);
  int32_t *lab = NULL;
  uint8_t *h = cuda_input_host_slot(&c->in, slot, &lab);
  // Whole batch, padding rows included (zeros from the loader, label 0 and
  // excluded from the loss through num_valid), like the CPU device's feed.
  memcpy(h, b->images_u8, (size_t)x->numel);
  for (int64_t i = 0; i < g->batch; i++) lab[i] = i < nvalid ? b->labels[i] : 0;
  cuda_input_submit(&c->in, slot, g->batch);
  s->labels = cuda_input_to_graph(&c->in, slot, g->batch, x->data);
  s->soft_targets = NULL;
  if (b->soft_targets) {
    int64_t ne = nn_t(g, g->logits)->numel;   // (N, C)
    if (c->soft_elems < ne) {
      if (c->soft) cuda_free_tracked(cx, c->soft, c->soft_elems * 4);
      c->soft = cuda_malloc_tracked(cx, ne * 4, "soft targets");
      c->soft_elems = ne;
    }
    // Queued on the compute stream, no host wait: a copy from pageable memory
    // is staged before the call returns, so the loader may reuse its buffer.
    CUDA_CHECK(cudaMemcpyAsync(c->soft, b->soft_targets, (size_t)ne * 4, cudaMemcpyHostToDevice, cx->compute),
               "uploading soft targets");
    s->soft_targets = c->soft;
  }
  s->num_valid = nvalid;
}

static const float *cu_logits(train_device *td, nn_graph *g) {
  cuda_dev *c = td->impl;
  const nn_tensor *l = nn_t(g, g->logits);
  if (c->logits_elems < l->numel) {
    free(c->logits_h);
    c->logits_h = dp_malloc((size_t)l->numel * 4, "logits copy");
    c->logits_elems = l->numel;
  }
  nn_graph_read(g, c->logits_h, l->data, l->numel);
  return c->logits_h;
}

static void cu_reduce_attach(train_device *td, nn_graph *g, nn_step *s, int64_t bucket_bytes) {
  cuda_dev *c = td->impl;
  // The context may have lowered the precision (bf16/tf32 below sm_80): report what runs.
  c->precision = ctx_of(g)->precision;
  snprintf(td->precision, sizeof td->precision, "%s", cuda_precision_name(c->precision));
  s->grad_ready = NULL;
  s->grad_ready_ctx = NULL;
  if (c->d->world < 2) return;   // one rank: nothing to reduce
  cuda_nccl_init(&c->nc, c->d->comm, dist_watchdog_timeout(c->d));
  c->nc_ready = 1;
  // fp32 on the wire: the reduced gradients equal the CPU path's up to
  // summation order. (bf16 reduction halves the bytes; not enabled yet.)
  int64_t first = bucket_bytes < (1 << 20) ? bucket_bytes : (1 << 20);
  cuda_grad_reducer_init(&c->red, &c->nc, ctx_of(g), g->grads, g->nparam_elems, bucket_bytes, first, 0);
  c->red_on = 1;
  s->grad_ready = cuda_grad_reducer_ready;
  s->grad_ready_ctx = &c->red;
}

static void cu_reduce_begin(train_device *td, int enabled) {
  cuda_dev *c = td->impl;
  if (c->red_on) cuda_grad_reducer_begin(&c->red, enabled);
}

static double cu_reduce_wait(train_device *td) {
  cuda_dev *c = td->impl;
  if (!c->red_on) return 0.0;
  // The compute stream waits for the reduction on the device; the host check
  // (of the previous step's reduction: no per-step drain) applies the
  // timeout/abort policy.
  cuda_grad_reducer_finish(&c->red);
  cuda_grad_reducer_check(&c->red);
  return 0.0;   // the span is not timed on the GPU yet
}

static double cu_reduce_hidden(train_device *td) { return -1.0; }

// Queues the copy of this forward's loss into a pinned slot: the host does not
// wait for the forward here (it goes on queueing backward), only later in
// cu_loss_result, for that copy alone.
static void cu_loss_submit(train_device *td, nn_graph *g, int slot) {
  cuda_dev *c = td->impl;
  cuda_ctx *cx = ctx_of(g);
  if (!c->loss_host) {
    CUDA_CHECK(cudaMallocHost((void **)&c->loss_host, CU_LOSS_SLOTS * sizeof(float)), "pinned loss slots");
    for (int i = 0; i < CU_LOSS_SLOTS; i++)
      CUDA_CHECK(cudaEventCreateWithFlags(&c->loss_ev[i], cudaEventDisableTiming), "loss events");
    c->loss_cx = cx;
  }
  int k = slot % CU_LOSS_SLOTS;
  CUDA_CHECK(cudaMemcpyAsync(&c->loss_host[k], nn_t(g, g->loss_tensor)->data, sizeof(float), cudaMemcpyDeviceToHost,
                             cx->compute),
             "queueing the loss read-back");
  CUDA_CHECK(cudaEventRecord(c->loss_ev[k], cx->compute), "queueing the loss read-back");
}

static float cu_loss_result(train_device *td, int slot) {
  cuda_dev *c = td->impl;
  int k = slot % CU_LOSS_SLOTS;
  CUDA_CHECK(cudaEventSynchronize(c->loss_ev[k]), "reading the loss back");
  return c->loss_host[k];
}

static void cu_grads_scale(train_device *td, nn_graph *g, float a) {
  cuda_ctx *cx = ctx_of(g);
  if (a == 0.0f) {
    CUDA_CHECK(cudaMemsetAsync(g->grads, 0, (size_t)g->nparam_elems * 4, cx->compute), "zeroing gradients");
    return;
  }
  CUDA_CHECK(dp_cuda_scale_inplace(g->grads, g->nparam_elems, a, cx->compute), "scaling gradients");
}

// Frozen flags from the schedule the CPU optimizer uses (optim_freeze_apply).
static void cu_optim_freezing(train_device *td, void *opt, nn_graph *g, int64_t epoch) {
  cuda_dev_optim *o = opt;
  int64_t trainable = optim_freeze_apply(&o->o.cfg, o->base_frozen, o->num_stages, g, epoch);
  o->any_frozen = trainable < nn_param_count(g);
  if (o->o.cfg.freeze_below_stage > 0 || o->o.cfg.unfreeze_every > 0)
    LOG_INFO("epoch %lld: %lld of %lld parameters trainable", (long long)epoch, (long long)trainable,
             (long long)nn_param_count(g));
  cuda_optim_refresh_segments(&o->o, g);
}

static void *cu_optim_create(train_device *td, const optim_cfg *cfg, nn_graph *g, int num_stages,
                             loss_scaler *scaler) {
  cuda_dev *c = td->impl;
  cuda_dev_optim *o = dp_calloc(1, sizeof *o, "GPU optimizer");
  o->base_frozen = optim_freeze_capture(g, num_stages, &o->num_stages);
  cuda_optim_init(&o->o, ctx_of(g), cfg, g, c->precision == CUDA_PREC_FP16, scaler);
  if (cfg->freeze_below_stage > 0 || cfg->unfreeze_every > 0) cu_optim_freezing(td, o, g, 0);
  return o;
}

static void cu_optim_destroy(train_device *td, void *opt) {
  cuda_dev_optim *o = opt;
  if (!o) return;
  cuda_optim_free(&o->o);
  free(o->base_frozen);
  free(o);
}

// The overflow flag's agreement across ranks, through the run's NCCL communicator.
typedef struct {
  cuda_nccl *nc;
  cuda_ctx *cx;
} flag_any_ctx;
static int cu_flag_any(void *ctx, int32_t *dev_flag) {
  flag_any_ctx *f = ctx;
  return cuda_nccl_flag_any(f->nc, f->cx, dev_flag);
}

static float cu_optim_step(train_device *td, void *opt, nn_graph *g) {
  cuda_dev *c = td->impl;
  cuda_dev_optim *o = opt;
  // (cuda_optim_step zeroes the frozen tensors' gradients itself.)
  flag_any_ctx fc = {&c->nc, ctx_of(g)};
  cuda_optim_step(&o->o, g, c->nc_ready ? cu_flag_any : NULL, &fc);
  return o->o.last_lr;
}

// Checkpoints: the optimizer's device state to / from host arrays (one
// synchronous copy each; checkpoints are rare), with the per-tensor step
// counts the GPU optimizer keeps like nn/optim.c.
static void cu_optim_save(train_device *td, void *opt, optim_snapshot *s) {
  cuda_dev_optim *o = opt;
  cuda_optimizer *q = &o->o;
  DP_CHECK(s->n == q->n && s->kind == q->cfg.kind, "saving the GPU optimizer", "snapshot allocated for another optimizer");
  cuda_backend_download(q->cx, s->state1, q->state1, (size_t)q->n * 4);
  if (q->state2 && s->state2) cuda_backend_download(q->cx, s->state2, q->state2, (size_t)q->n * 4);
  DP_CHECK(s->nparams == q->nparams, "saving the GPU optimizer", "snapshot allocated for another graph");
  memcpy(s->param_step, q->param_step, (size_t)q->nparams * sizeof *s->param_step);
  s->step = q->step;
  s->applied = q->applied;
}
static int cu_optim_load(train_device *td, void *opt, const optim_snapshot *s, char *err, int err_sz) {
  cuda_dev_optim *o = opt;
  cuda_optimizer *q = &o->o;
  if (s->kind != q->cfg.kind || s->n != q->n) {
    snprintf(err, err_sz, "the saved optimizer state (%s, %lld elements) does not fit this run's (%s, %lld)",
             s->kind == OPTIM_ADAMW ? "adamw" : "sgd", (long long)s->n, q->cfg.kind == OPTIM_ADAMW ? "adamw" : "sgd",
             (long long)q->n);
    return -1;
  }
  cuda_backend_upload(q->cx, q->state1, s->state1, (size_t)q->n * 4);
  if (q->state2 && s->state2) cuda_backend_upload(q->cx, q->state2, s->state2, (size_t)q->n * 4);
  if (s->nparams != q->nparams) {
    snprintf(err, err_sz, "the saved optimizer state has %d tensors, this model %d", s->nparams, q->nparams);
    return -1;
  }
  memcpy(q->param_step, s->param_step, (size_t)q->nparams * sizeof *q->param_step);
  q->segs_stale = 1;   // segments split by step count: rebuilt at the next step
  q->step = s->step;
  q->applied = s->applied;
  return 0;
}

static void cu_destroy(train_device *td) {
  if (!td) return;
  cuda_dev *c = td->impl;
  if (c->red_on) cuda_grad_reducer_free(&c->red);   // drains the last reductions first
  if (c->nc_ready) cuda_nccl_destroy(&c->nc);
  if (c->loss_host) {
    cudaStreamSynchronize(c->loss_cx->compute);
    for (int i = 0; i < CU_LOSS_SLOTS; i++) cudaEventDestroy(c->loss_ev[i]);
    cudaFreeHost(c->loss_host);
  }
  if (c->in_ready) {
    cuda_ctx *cx = c->in.cx;
    if (c->soft) cuda_free_tracked(cx, c->soft, c->soft_elems * 4);
    cuda_input_free(&c->in);
  }
  free(c->logits_h);
  free(c);
  free(td);
}

static cuda_precision parse_precision(const char *p) {
  if (!strcmp(p, "fp32")) return CUDA_PREC_FP32;
  if (!strcmp(p, "bf16")) return CUDA_PREC_BF16;
  if (!strcmp(p, "fp16")) return CUDA_PREC_FP16;
  // "tf32" and "auto": tf32 stays the default until bf16 is measured correct
  // and faster on a GPU (issue 15); cuda_backend_ctx_create falls back to
  // fp32 with a warning below sm_80.
  return CUDA_PREC_TF32;
}

train_device *train_device_cuda_create(dist_ctx *d, const char *precision, const float *mean, const float *std) {
  char msg[256];
  int n = cuda_device_probe(msg, sizeof msg);
  if (n <= 0)
    DP_FATAL("selecting the CUDA device", "use --device cpu (or --device auto) on nodes without a GPU", "%s", msg);
  int dev = cuda_pick_device(d->local_rank, d->local_world, n, getenv("CUDA_VISIBLE_DEVICES"), msg, sizeof msg);
  if (dev < 0)
    DP_FATAL("selecting the CUDA device", "launch at most one rank per GPU on each node", "rank %d (host %s): %s",
             d->rank, d->host, msg);
  cuda_dev *c = dp_calloc(1, sizeof *c, "training device");
  c->d = d;
  c->precision = parse_precision(precision);
  for (int k = 0; k < 3; k++) {
    c->mean[k] = mean[k];
    c->std[k] = std[k];
  }
  c->mean[3] = 0.0f;
  c->std[3] = 1.0f;
  cuda_backend_configure(dev, c->precision, 0, 0);
  CUDA_CHECK(cudaSetDevice(dev), "selecting the GPU of this rank");
  // Placement near the GPU is an optimisation: a failure is logged, not fatal.
  cuda_binding bind;
  if (cuda_bind_near_device(dev, &bind, msg, sizeof msg) == 0) {
    LOG_DEBUG("rank %d: GPU %d, bound to %d cores (%s)%s", d->rank, dev, bind.cores, bind.cpuset,
              bind.gpu_local ? "" : " (not GPU-local)");
  } else if (d->rank == 0) {
    LOG_WARN("GPU-local binding unavailable: %s", msg);
  }
  train_device *td = dp_calloc(1, sizeof *td, "training device");
  td->name = "cuda";
  td->backend = NN_BACKEND_CUDA;
  td->be = cuda_backend();
  td->loader_uint8 = 1;
  snprintf(td->precision, sizeof td->precision, "%s", cuda_precision_name(c->precision));
  td->device_index = dev;
  td->feed = cu_feed;
  td->logits = cu_logits;
  td->reduce_attach = cu_reduce_attach;
  td->reduce_begin = cu_reduce_begin;
  td->reduce_wait = cu_reduce_wait;
  td->reduce_hidden_fraction = cu_reduce_hidden;
  td->loss_submit = cu_loss_submit;
  td->loss_result = cu_loss_result;
  td->grads_scale = cu_grads_scale;
  td->optim_create = cu_optim_create;
  td->optim_destroy = cu_optim_destroy;
  td->optim_freezing = cu_optim_freezing;
  td->optim_step = cu_optim_step;
  td->optim_save = cu_optim_save;
  td->optim_load = cu_optim_load;
  td->destroy = cu_destroy;
  td->impl = c;
  return td;
}
