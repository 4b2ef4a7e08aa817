// The compute device of a training rank, behind one small table, so the
// training loop, the baseline and evaluation are the same code for CPU ranks
// (oneDNN ops, MPI bucketed all-reduce, nn/optim.h) and GPU ranks (cuDNN
// ops, NCCL bucketed all-reduce, the fused GPU optimizer, pinned input path).
//
// Order of use: train_device_open (picks the GPU, sets precision and binding
// before any graph exists) -> nn_graph_create(td->backend, ...) ->
// reduce_attach (installs the bucket-ready hook on the graph) ->
// optim_create -> steps -> optim_destroy -> destroy -> nn_graph_destroy.
#ifndef DP_TRAIN_DEVICE_H
#define DP_TRAIN_DEVICE_H
#include <stddef.h>

#include "nn/loss_scaler.h"   // plain C, no CUDA types
#include "dist/dist.h"
#include "input/loader.h"
#include "nn/graph.h"
#include "nn/optim.h"

typedef struct train_device train_device;
struct train_device {
  const char *name;          // "cpu" | "cuda"
  nn_backend backend;
  const nn_backend_vt *be;   // for nn_graph_create
  int loader_uint8;          // 1: loaders hand out uint8 pixels (the device normalises)
  char precision[8];         // what the graph computes in (results.json "precision")
  int device_index;          // GPU index, -1 on the CPU
  // Puts a loader batch into g's input tensor and the step's labels and
  // soft_targets (memory of the graph's backend), s->num_valid = nvalid.
  void (*feed)(train_device *td, nn_graph *g, nn_step *s, const loader_batch *b, int64_t nvalid);
  // Logits (N, C) of the last forward, as host memory valid until the next call.
  const float *(*logits)(train_device *td, nn_graph *g);
  // Gradient all-reduce over the ranks, launched bucket by bucket from the
  // step's grad_ready hook during backward (reduce_attach installs it in s).
  void (*reduce_attach)(train_device *td, nn_graph *g, nn_step *s, int64_t bucket_bytes);
  void (*reduce_begin)(train_device *td, int enabled);
  double (*reduce_wait)(train_device *td);             // returns the comm span in s (0: not measured)
  double (*reduce_hidden_fraction)(train_device *td);  // < 0: not measured
  double comm_ref_s;         // blocking all-reduce of the gradients, s (set by reduce_attach; 0: not calibrated)
  void (*grads_scale)(train_device *td, nn_graph *g, float a);   // g->grads *= a; a == 0 zeroes
  // Optional (NULL on the CPU, where nn_forward reads the loss directly):
  // asynchronous loss read-back. With nn_step.defer_loss set, the trainer calls
  // loss_submit after each micro-step's forward (slot = micro-step) and
  // loss_result once the step's work is queued; the host then waits for that
  // forward only, never for the queue to drain. Up to 8 slots are in flight.
  void (*loss_submit)(train_device *td, nn_graph *g, int slot);
  float (*loss_result)(train_device *td, int slot);
  // Optimizer with nn/optim.h semantics. scaler (in the training state)
  // is initialised by the device: enabled for fp16 on the GPU, else off.
  void *(*optim_create)(train_device *td, const optim_cfg *cfg, nn_graph *g, int num_stages, loss_scaler *scaler);
  void (*optim_destroy)(train_device *td, void *opt);
  void (*optim_freezing)(train_device *td, void *opt, nn_graph *g, int64_t epoch);
  float (*optim_step)(train_device *td, void *opt, nn_graph *g);   // returns the head LR
  // Checkpoints: the optimizer state as host data (s allocated with
  // optim_snapshot_alloc for this optimizer's kind and g); set returns 0, or
  // -1 with err filled when the state does not fit this optimizer.
  void (*optim_save)(train_device *td, void *opt, optim_snapshot *s);
  int (*optim_load)(train_device *td, void *opt, const optim_snapshot *s, char *err, int err_sz);
  void (*destroy)(train_device *td);
  void *impl;
};

// The device a run asked for: "cpu", "cuda" (dies with the probe's message
// when no GPU can be used) or "auto" (CUDA when every rank finds a GPU, else
// CPU with a log line). precision: auto | fp32 | tf32 | bf16 | fp16.
// Collective over d (the ranks agree on the device kind).
train_device *train_device_open(const char *device, const char *precision, dist_ctx *d, const float *mean,
                                const float *std);
train_device *train_device_cpu_create(dist_ctx *d);

// CUDA side (backend/cuda/cuda_train.c; stubs when built without CUDA).
// Returns the number of usable GPUs, 0 with a reason in msg.
int train_device_cuda_probe(char *msg, size_t msg_size);
train_device *train_device_cuda_create(dist_ctx *d, const char *precision, const float *mean, const float *std);
#endif
