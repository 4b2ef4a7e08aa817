// conv2d op: x (N, H, W, C) -> y (N, OH, OW, O); weight (O, C, k, k) torch layout.
#ifndef DP_NN_OP_CONV2D_H
#define DP_NN_OP_CONV2D_H
#include "nn/graph.h"

typedef struct {
  nn_op base;
  nn_tid x, y;
  int64_t in_ch, out_ch;
  int k, stride, pad, has_bias;
  int32_t w_pid, b_pid;   // b_pid = -1 without bias
} nn_conv2d_op;
#endif
