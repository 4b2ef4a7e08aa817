// Every piece of mutable training state in one struct, so that a checkpoint
// can save and restore a run bit-exactly (train/resume.c):
//   * position: global optimizer step, epoch, micro-batches consumed in the
//     epoch (the sampler position: loader_seek resumes it; the permutation
//     itself is a pure function of (seed, epoch)) and where this epoch's
//     current part started (epoch_start: a resume on another world size deals
//     the rest of the epoch out again from there);
//   * randomness: the run seed and this rank's trainer stream (augmentation
//     and mixup draws are pure functions of (seed, epoch, sample index) inside
//     the loader, dropout of (graph seed, step, op));
//   * optimizer state (momentum / Adam moments and step counts live in *opt,
//     in the flat parameter layout; the LR schedule is a pure function of the
//     optimizer config and step); opt is the training device's optimizer
//     (nn/optim.h on the CPU, the fused GPU optimizer on CUDA);
//   * the loss scaler (fp16 on the GPU; disabled, scale 1, otherwise);
//   * early-stopping state and the best metric so far;
//   * counters that continue across restarts (records decoded and skipped,
//     wall time of earlier segments).
// Parameters and BN buffers live in the graph (g->params_data, g->buf_data).
#ifndef DP_TRAIN_STATE_H
#define DP_TRAIN_STATE_H
#include <stdint.h>

#include "core/rng.h"
#include "nn/loss_scaler.h"   // plain C state, also on CPU builds
#include "nn/optim.h"

typedef struct {
  int64_t step;             // optimizer steps completed
  int64_t epoch;            // current epoch (0-based)
  int64_t batch_in_epoch;   // micro-batches consumed in the current part of the epoch
  int64_t epoch_start;      // global sample positions of this epoch consumed before that part
  int64_t images_seen;      // this rank
  uint64_t seed;
  dp_rng rng;               // this rank's stream: dp_rng_stream(seed, 1000 + rank)
  void *opt;                // train_device optimizer (see train/device.h)
  loss_scaler scaler;       // initialised by the device's optim_create
  float last_lr;
  // Early stopping and the best model.
  double best_metric;       // best val macro-F1 (higher) or loss (lower); NAN: none yet
  int64_t best_step;        // step of the best evaluation (-1: none)
  int evals_since_best;
  int stop;                 // 1: patience exhausted
  int64_t last_eval_step;   // -1: none
  double last_metric;       // metric of the last evaluation
  // Continued across restarts.
  int64_t decoded_before, skipped_before;   // this rank's records of earlier segments
  double wall_before;       // wall seconds of earlier segments
  double train_wall_before;
  int segments;             // 1 + restarts
} train_state;
#endif
