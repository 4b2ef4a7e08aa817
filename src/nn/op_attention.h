// Multi-head self-attention core on a packed qkv tensor (torch MHA in_proj
// output): qkv (N, T, 3D) = [q | k | v] -> y (N, T, D), head h uses columns
// h*dh .. (h+1)*dh - 1 of each of q, k, v (dh = D / heads).
#ifndef DP_NN_OP_ATTENTION_H
#define DP_NN_OP_ATTENTION_H
#include "nn/graph.h"

typedef struct {
  nn_op base;
  nn_tid qkv, y;
  int64_t N, T, D, heads, dh;
  float scale;        // 1 / sqrt(dh)
  int nthreads;       // threads the workspace was planned for
  // y->extra: softmax probabilities P (N, heads, T, T), saved for backward.
  // workspace: one T x T scratch (dP) per thread.
} nn_attention_op;
#endif
