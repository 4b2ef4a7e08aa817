// dropout op (inverted): training y = x * m / (1 - p), m ~ Bernoulli(1 - p);
// eval y = x. The mask stream is a function of (g->seed, g->step, op_index)
// only (fixed chunks, one rng stream each), so it does not depend on the
// thread count. y's extra holds the mask (1 byte per element).
#ifndef DP_NN_OP_DROPOUT_H
#define DP_NN_OP_DROPOUT_H
#include "nn/graph.h"
#define NN_DROPOUT_CHUNK 4096   // elements per rng stream
typedef struct {
  nn_op base;
  nn_tid x, y;
  float p;
  int32_t op_index;
  int fwd_training;   // mode of the last forward
} nn_dropout_op;
#endif
