// flatten op: x (N, ...) -> y (N, rest). A 4-d NHWC input is flattened in
// torch's NCHW order (y[n, c*H*W + h*W + w]) so a following linear layer has
// torch's weight layout; other inputs are copied as they are.
#ifndef DP_NN_OP_FLATTEN_H
#define DP_NN_OP_FLATTEN_H
#include "nn/graph.h"
typedef struct {
  nn_op base;
  nn_tid x, y;
} nn_flatten_op;
#endif
