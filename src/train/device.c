// CPU training device (oneDNN graph, MPI bucketed all-reduce, nn/optim.h)
// and the device choice. The CUDA device is in train/device_cuda.c.
#include "train/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/log.h"
#include "core/sysinfo.h"
#include "backend/cpu/cpu.h"

typedef struct {
  dist_ctx *d;
  grad_reducer red;
  int red_on;
  int32_t *labels;   // (batch) staging of the hard labels
  int64_t labels_n;
} cpu_dev;

// Copies the images into g's input and the labels into the staging buffer;
// rows >= nvalid (padding) get label 0 and are excluded via s->num_valid.
static void cpu_feed(train_device *td, nn_graph *g, nn_step *s, const loader_batch *b, int64_t nvalid) {
  cpu_dev *c = td->impl;
  if (c->labels_n < g->batch) {
    free(c->labels);
    c->labels = dp_malloc((size_t)g->batch * sizeof(int32_t), "labels");
    c->labels_n = g->batch;
  }
  nn_tensor *x = nn_t(g, g->input);   // (N, H, W, C)
  DP_CHECK(x->dim[0] == g->batch, "staging a batch", "graph input batch mismatch");
  memcpy(x->data, b->images, (size_t)x->numel * sizeof(float));
  for (int64_t i = 0; i < g->batch; i++) c->labels[i] = i < nvalid ? b->labels[i] : 0;
  s->labels = c->labels;
  s->soft_targets = b->soft_targets;
  s->num_valid = nvalid;
}

static int64_t cpu_mem_free(train_device *td) { return dp_memory_available_bytes(); }

static const float *cpu_logits(train_device *td, nn_graph *g) { return nn_t(g, g->logits)->data; }

static void cpu_reduce_attach(train_device *td, nn_graph *g, nn_step *s, int64_t bucket_bytes) {
  cpu_dev *c = td->impl;
  grad_reducer_init(&c->red, c->d, g->grads, g->nparam_elems, bucket_bytes, 0);
  grad_reducer_calibrate(&c->red, 3);
  td->comm_ref_s = c->red.ref_s;
  c->red_on = 1;
  s->grad_ready = grad_reducer_ready;
  s->grad_ready_ctx = &c->red;
}

static void cpu_reduce_begin(train_device *td, int enabled) {
  cpu_dev *c = td->impl;
  grad_reducer_begin(&c->red, enabled);
}

static double cpu_reduce_wait(train_device *td) {
  cpu_dev *c = td->impl;
  grad_reducer_wait(&c->red);
  return c->red.last_comm_span_s;
}

static double cpu_reduce_hidden(train_device *td) {
  cpu_dev *c = td->impl;
  return c->red_on ? grad_reducer_hidden_fraction(&c->red) : -1.0;
}

static void cpu_grads_scale(train_device *td, nn_graph *g, float a) {
  float *gr = g->grads;
  if (a == 0.0f) {
    memset(gr, 0, (size_t)g->nparam_elems * sizeof(float));
    return;
  }
  for (int64_t i = 0; i < g->nparam_elems; i++) gr[i] *= a;
}

static void *cpu_optim_create(train_device *td, const optim_cfg *cfg, nn_graph *g, int num_stages,
                              loss_scaler *scaler) {
  // fp32 on the CPU: no loss scaling (a zeroed scaler is disabled, scale 1).
  if (scaler) memset(scaler, 0, sizeof *scaler);
  return optim_create(cfg, g, num_stages);
}
static void cpu_optim_destroy(train_device *td, void *o) { optim_destroy(o); }
static void cpu_optim_freezing(train_device *td, void *o, nn_graph *g, int64_t epoch) {
  optim_apply_freezing(o, g, epoch);
}
static float cpu_optim_step(train_device *td, void *o, nn_graph *g) { return optim_step(o, g); }
static void cpu_optim_save(train_device *td, void *o, optim_snapshot *s) { optim_snapshot_get(o, s); }
static int cpu_optim_load(train_device *td, void *o, const optim_snapshot *s, char *err, int err_sz) {
  return optim_snapshot_set(o, s, err, err_sz);
}

static void cpu_destroy(train_device *td) {
  if (!td) return;
  cpu_dev *c = td->impl;
  if (c->red_on) grad_reducer_free(&c->red);
  free(c->labels);
  free(c);
  free(td);
}

train_device *train_device_cpu_create(dist_ctx *d) {
  train_device *td = dp_calloc(1, sizeof *td, "training device");
  cpu_dev *c = dp_calloc(1, sizeof *c, "training device");
  c->d = d;
  td->name = "cpu";
  td->backend = NN_BACKEND_CPU;
  td->be = cpu_backend();
  td->loader_uint8 = 0;
  snprintf(td->precision, sizeof td->precision, "fp32");
  td->device_index = -1;
  td->feed = cpu_feed;
  td->logits = cpu_logits;
  td->reduce_attach = cpu_reduce_attach;
  td->reduce_begin = cpu_reduce_begin;
  td->reduce_wait = cpu_reduce_wait;
  td->reduce_hidden_fraction = cpu_reduce_hidden;
  td->grads_scale = cpu_grads_scale;
  td->optim_create = cpu_optim_create;
  td->optim_destroy = cpu_optim_destroy;
  td->optim_freezing = cpu_optim_freezing;
  td->optim_step = cpu_optim_step;
  td->optim_save = cpu_optim_save;
  td->optim_load = cpu_optim_load;
  td->destroy = cpu_destroy;
  td->mem_free = cpu_mem_free;
  td->impl = c;
  return td;
}

train_device *train_device_open(const char *device, const char *precision, dist_ctx *d, const float *mean,
                                const float *std) {
  if (!strcmp(device, "cpu")) return train_device_cpu_create(d);
  char msg[256];
  int have = train_device_cuda_probe(msg, sizeof msg) > 0;
  // All ranks must take the same path (NCCL vs MPI reduction): one rank
  // without a GPU sends every rank to the CPU (auto) or stops the job (cuda).
  int all = have;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, d->comm), "agreeing on the device");
  if (!strcmp(device, "cuda")) {
    if (!have)
      DP_FATAL("selecting the CUDA device", "use --device cpu (or --device auto) on nodes without a GPU",
               "--device cuda on rank %d (host %s): %s", d->rank, d->host, msg);
    if (!all)
      DP_FATAL("selecting the CUDA device", "run GPU jobs only on GPU nodes (check the Slurm partition)",
               "--device cuda: another rank found no usable GPU");
    return train_device_cuda_create(d, precision, mean, std);
  }
  if (all) return train_device_cuda_create(d, precision, mean, std);
  if (d->rank == 0) {
    LOG_INFO("device auto: CPU ranks (%s)", have ? "another rank found no usable GPU" : msg);
    if (strcmp(precision, "auto") && strcmp(precision, "fp32"))
      LOG_INFO("--precision %s ignored: the CPU backend computes in fp32", precision);
  }
  return train_device_cpu_create(d);
}

#ifndef DP_HAVE_CUDA
// Built without the CUDA toolkit: no GPU can be used.
int train_device_cuda_probe(char *msg, size_t msg_size) {
  snprintf(msg, msg_size, "this dptrain was built without CUDA");
  return 0;
}
train_device *train_device_cuda_create(dist_ctx *d, const char *precision, const float *mean, const float *std) {
  DP_FATAL("selecting the CUDA device", "rebuild with the CUDA toolkit, or use --device cpu",
           "this dptrain was built without CUDA");
}
#endif
