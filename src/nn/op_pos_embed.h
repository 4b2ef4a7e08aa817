// Add a learned position embedding: y = x + pos, pos "<name>" (1, T, D).
#ifndef DP_NN_OP_POS_EMBED_H
#define DP_NN_OP_POS_EMBED_H
#include "nn/graph.h"

typedef struct {
  nn_op base;
  nn_tid x, y;        // (N, T, D)
  int32_t p;          // (1, T, D)
  int64_t N, T, D;
} nn_pos_embed_op;
#endif
