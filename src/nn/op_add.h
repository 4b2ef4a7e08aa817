// add and add_relu ops (same struct): y = a + b, or relu(a + b).
#ifndef DP_NN_OP_ADD_H
#define DP_NN_OP_ADD_H
#include "nn/graph.h"
typedef struct {
  nn_op base;
  nn_tid a, b, y;
  int relu;
} nn_add_op;
#endif
