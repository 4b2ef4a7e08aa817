// batchnorm2d and batchnorm2d_relu ops (same struct): x (N, H, W, C) -> y.
// y's extra holds the batch mean and biased variance (2 * C floats) saved by
// the training forward for backward.
#ifndef DP_NN_OP_BATCHNORM2D_H
#define DP_NN_OP_BATCHNORM2D_H
#include "nn/graph.h"

// Planned size of the saved statistics in y's extra (2 * C floats).
#define NN_BN_STATS_BYTES(c) (((c) * 8 + 63) / 64 * 64)

typedef struct {
  nn_op base;
  nn_tid x, y;
  int64_t ch;
  float momentum, eps;
  int relu;                 // 1: batchnorm2d_relu
  int32_t w_pid, b_pid;     // "<name>.weight", "<name>.bias"
  int32_t rm_bid, rv_bid;   // "<name>.running_mean", "<name>.running_var"
  int fwd_training;         // mode of the last forward (backward follows it)
} nn_batchnorm2d_op;
#endif
