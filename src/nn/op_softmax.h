// Softmax over the last dim.
#ifndef DP_NN_OP_SOFTMAX_H
#define DP_NN_OP_SOFTMAX_H
#include "nn/graph.h"

typedef struct {
  nn_op base;
  nn_tid x, y;        // (..., L)
  int64_t rows, L;
} nn_softmax_op;
#endif
