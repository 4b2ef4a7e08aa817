// global_avgpool op: x (N, H, W, C) -> y (N, C).
#ifndef DP_NN_OP_GLOBAL_AVGPOOL_H
#define DP_NN_OP_GLOBAL_AVGPOOL_H
#include "nn/graph.h"
typedef struct {
  nn_op base;
  nn_tid x, y;
} nn_global_avgpool_op;
#endif
