// Lifetime plan of the activation arena (see docs/memory.md).
//
// Time is the tape step: op i runs forward at step i and backward at step
// 2n - 1 - i (n ops). Every arena item lives over one or two closed step
// intervals:
//   * output data of op p: from p to its last forward reader; to the backward
//     of the earliest op that reads it in backward when some op keeps it
//     (nn_op.in_keep / out_keep). If its producer can recompute it
//     (nn_op.recompute, nn_backend_vt.recompute), it is not kept: a second interval
//     from the first to the last backward reader holds the rebuilt values;
//   * gradient of a tensor: from the backward of its last consumer (the first
//     writer) to the backward of its producer (its only reader);
//   * extras of op p's output: from p's forward to p's backward;
//   * op i's backward scratch: step 2n - 1 - i only;
//   * pinned tensors (leaves, tensors no op reads, g->input, g->logits,
//     g->loss_tensor): the whole step, gradients the whole backward, so a
//     caller may fill and read them around nn_forward / nn_backward.
// Offsets: greedy by size (largest first), each item in the smallest gap
// between the already placed items whose lifetimes overlap it (best fit),
// 64-byte aligned. The plan depends only on the tape, shapes and the
// backends' size hooks, so the CPU and CUDA graphs of a model share it.
#ifndef DP_NN_PLAN_H
#define DP_NN_PLAN_H
#include <stdint.h>

#include "nn/graph.h"

typedef struct {
  int64_t arena_bytes;      // size of the arena (max offset + size)
  int64_t flat_bytes;       // sum of all items: the arena without reuse
  int64_t peak_live_bytes;  // most bytes live at one step (<= arena_bytes)
  int32_t peak_step;
  int64_t live_data, live_grad, live_extra;   // live at peak_step (extra includes scratch)
  int64_t kept_bytes;       // data + extras live at both step n-1 and step n
  int32_t nrecompute;       // tensors rebuilt in backward
  int64_t overlaps;         // layout only: pairs of items alive together that share bytes (must be 0)
  // Layout (NULL unless nn_plan_build was asked for it):
  int64_t *data_off, *grad_off, *extra_off;   // (ntensors) byte offsets, -1: none
  int64_t *scratch_off;                       // (nops) -1: none
  uint8_t *pinned, *recomputed;               // (ntensors)
  int32_t *recompute_at;                      // (ntensors) op whose backward first reads it, -1
} nn_plan;

// Plans g's arena under g->plan_mode / g->plan_recompute. layout = 1 also
// fills the per-tensor arrays (free them with nn_plan_free).
void nn_plan_build(const nn_graph *g, int layout, nn_plan *p);
void nn_plan_free(nn_plan *p);
#endif
