// linear op: x (..., in) -> y (..., out) = x W^T + b; weight (out, in).
#ifndef DP_NN_OP_LINEAR_H
#define DP_NN_OP_LINEAR_H
#include "nn/graph.h"
typedef struct {
  nn_op base;
  nn_tid x, y;
  int64_t rows, in, out;    // rows = product of leading dims
  int has_bias;
  int32_t w_pid, b_pid;     // b_pid = -1 without bias
} nn_linear_op;
#endif
