// LayerNorm over the last dim of x (..., D), torch semantics (biased variance).
#ifndef DP_NN_OP_LAYERNORM_H
#define DP_NN_OP_LAYERNORM_H
#include "nn/graph.h"

typedef struct {
  nn_op base;
  nn_tid x, y;        // (..., D)
  int32_t pw, pb;     // "<name>.weight", "<name>.bias", (D)
  float eps;
  int64_t rows, D;    // rows = numel / D
  // y->extra: per-row mean then rstd, 2 * rows floats (saved for backward).
} nn_layernorm_op;
#endif
