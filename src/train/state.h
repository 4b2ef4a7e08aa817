// Every piece of mutable training state in one struct, so that a checkpoint
// can save and restore a run bit-exactly:
//   * position: global optimizer step, epoch, micro-batches consumed in the
//     epoch (the sampler position: loader_seek(batch_in_epoch) resumes it;
//     the sampler permutation itself is a pure function of (seed, epoch));
//   * randomness: the run seed and this rank's trainer stream (augmentation
//     and mixup draws are pure functions of (seed, epoch, sample index) inside
//     the loader, dropout of (graph seed, step, op));
//   * optimizer state (momentum / Adam moments and step count live in *opt,
//     in the flat parameter layout; the LR schedule is a pure function of
//     the optimizer config and step); opt is the training device's optimizer
//     (nn/optim.h on the CPU, the fused GPU optimizer on CUDA);
//   * the loss scaler (fp16 on the GPU; disabled, scale 1, otherwise);
//   * early-stopping state.
// Parameters and BN buffers live in the graph (g->params_data, g->buf_data).
#ifndef DP_TRAIN_STATE_H
#define DP_TRAIN_STATE_H
#include <stdint.h>

#include "nn/loss_scaler.h"   // plain C state, also on CPU builds
#include "core/rng.h"
#include "nn/optim.h"

typedef struct {
  int64_t step;             // optimizer steps completed
  int64_t epoch;            // current epoch (0-based)
  int64_t batch_in_epoch;   // micro-batches consumed this epoch (sampler position)
  int64_t images_seen;      // this rank
  uint64_t seed;
  dp_rng rng;               // this rank's stream: dp_rng_stream(seed, 1000 + rank)
  void *opt;                // train_device optimizer (see train/device.h)
  loss_scaler scaler;       // initialised by the device's optim_create
  float last_lr;
  // Early stopping.
  double best_metric;       // best val macro-F1 (higher) or loss (lower)
  int64_t best_step;
  int evals_since_best;
  int stop;                 // 1: patience exhausted
} train_state;
#endif
