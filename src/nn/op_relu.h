// relu op: y = max(x, 0), any shape.
#ifndef DP_NN_OP_RELU_H
#define DP_NN_OP_RELU_H
#include "nn/graph.h"
typedef struct {
  nn_op base;
  nn_tid x, y;
} nn_relu_op;
#endif
