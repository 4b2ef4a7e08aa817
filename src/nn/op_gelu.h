// GELU, exact erf form (torch's default approximate='none').
#ifndef DP_NN_OP_GELU_H
#define DP_NN_OP_GELU_H
#include "nn/graph.h"

typedef struct {
  nn_op base;
  nn_tid x, y;   // same shape
} nn_gelu_op;
#endif
