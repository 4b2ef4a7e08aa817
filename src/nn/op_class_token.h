// Prepend a learned class token: (N, T, D) -> (N, T + 1, D); param "<name>" (1, 1, D).
#ifndef DP_NN_OP_CLASS_TOKEN_H
#define DP_NN_OP_CLASS_TOKEN_H
#include "nn/graph.h"

typedef struct {
  nn_op base;
  nn_tid x, y;
  int32_t p;          // (1, 1, D)
  int64_t N, T, D;    // of x
} nn_class_token_op;
#endif
