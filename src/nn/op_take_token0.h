// Select token 0 (the class token): (N, T, D) -> (N, D).
#ifndef DP_NN_OP_TAKE_TOKEN0_H
#define DP_NN_OP_TAKE_TOKEN0_H
#include "nn/graph.h"

typedef struct {
  nn_op base;
  nn_tid x, y;
  int64_t N, T, D;
} nn_take_token0_op;
#endif
