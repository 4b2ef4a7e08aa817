// maxpool2d op: x (N, H, W, C) -> y (N, OH, OW, C); padding counts as -inf,
// ties go to the first element of the window in row-major order (as torch).
// y's extra holds the argmax of each window (uint8 u * k + v, one per output
// element) for backward, which then needs neither x nor y.
#ifndef DP_NN_OP_MAXPOOL2D_H
#define DP_NN_OP_MAXPOOL2D_H
#include "nn/graph.h"
typedef struct {
  nn_op base;
  nn_tid x, y;
  int k, stride, pad;
} nn_maxpool2d_op;
#endif
