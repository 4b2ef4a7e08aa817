// softmax_xent op: logits (N, C) -> scalar loss (1). Hard labels from
// g->labels, or soft targets from g->soft_targets (N, C) when non-NULL.
// Torch semantics (CrossEntropyLoss, reduction='mean', label_smoothing eps,
// weight w); only the first g->num_valid rows count:
//   hard:  l_i = (1-eps) w[y_i] (-logp[i,y_i]) + eps/C sum_c w[c] (-logp[i,c]),
//          loss = sum_i l_i / sum_i w[y_i]
//   soft:  t' = (1-eps) t + eps/C,  l_i = -sum_c w[c] t'[i,c] logp[i,c],
//          loss = sum_i l_i / num_valid  (torch divides by N here, not by weights)
// The loss tensor's extra holds softmax(logits) (N * C floats) for backward.
#ifndef DP_NN_OP_SOFTMAX_XENT_H
#define DP_NN_OP_SOFTMAX_XENT_H
#include "nn/graph.h"
typedef struct {
  nn_op base;
  nn_tid x, y;
  int64_t rows, classes;
  float label_smoothing;
  float *class_weights;   // (C) malloc'd copy or NULL; the backend's destroy frees it
  float denom;            // denominator of the last forward (for backward)
} nn_softmax_xent_op;
#endif
