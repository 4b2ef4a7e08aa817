// Host-side planning for the CUDA backend that needs no GPU (and no CUDA
// headers), so it is unit-tested everywhere: gradient bucket plan, device
// choice per rank, optimizer segment table from the parameter table.
#ifndef DP_BACKEND_CUDA_PLAN_H
#define DP_BACKEND_CUDA_PLAN_H
#include <stddef.h>
#include <stdint.h>

#include "nn/graph.h"

// One contiguous range of the flat buffer with its own hyper-parameters
// (the fused optimizer kernels read a device copy of this table). A segment
// is one or more parameter tensors that are adjacent in the flat buffer (the
// alignment padding between them included: it is zero and stays zero) and
// share every setting, the AdamW step count included.
typedef struct {
  int64_t lo, hi;     // element range [lo, hi)
  float lr_mult;      // multiplies the step's LR (backbone/head LR)
  float weight_decay; // 0 for no-decay groups
  int32_t frozen;     // 1: left untouched (no decay either)
  int32_t param0;     // index (in the graph's table) of its first tensor: whose step count it has
  float bc1;          // AdamW bias corrections of the step being taken,
  float sqrt_bc2;     //   1 - beta1^t and sqrt(1 - beta2^t), t = that tensor's step + 1
} dp_optim_segment;

// Cuts [0, n) into contiguous buckets: the first about first_bytes (so the
// first all-reduce starts early in backward), the rest about bucket_bytes,
// boundaries on 64-element multiples. elem_bytes is the wire size (4 fp32,
// 2 bf16). Returns the count; *lo and *hi are malloc'd arrays (free them).
int cuda_bucket_plan(int64_t n, int elem_bytes, int64_t bucket_bytes, int64_t first_bytes,
                     int64_t **lo, int64_t **hi);

// GPU for this rank: local_rank when the node's ranks all see all GPUs; when
// the launcher restricted visibility (CUDA_VISIBLE_DEVICES set, fewer devices
// than local ranks) local_rank % device_count. Returns -1 with a message in
// msg when no valid choice exists (no device, or more ranks than GPUs).
int cuda_pick_device(int local_rank, int local_world, int device_count, const char *visible,
                     char *msg, size_t msg_size);

// Segment table for the fused optimizers from the parameter table (offsets
// assigned, i.e. after finalize): per parameter lr_mult = 1 for the head,
// backbone_lr_mult otherwise; weight_decay 0 for non-weights when
// no_decay_norm_bias; frozen copied. Parameters adjacent in the flat buffer
// (only alignment padding between them) with equal settings and equal step
// counts (param_step, per tensor like nn/optim.h's; NULL: all equal) merge.
// out must hold nparams entries; returns the count, sorted by lo.
int cuda_optim_segments(const nn_param *params, int32_t nparams, const int64_t *param_step, float weight_decay,
                        int no_decay_norm_bias, float backbone_lr_mult, dp_optim_segment *out);
// AdamW bias corrections of each segment for the step about to be taken:
// t = param_step[param0] + 1 (torch.optim.AdamW and nn/optim.c count steps
// per tensor, so a tensor unfrozen late starts at t = 1).
void cuda_adamw_corrections(dp_optim_segment *segs, int nsegs, const int64_t *param_step, float beta1, float beta2);
// Byte offsets of sub-buffers carved from one allocation, each on a
// 256-byte boundary (cuBLASLt and cuDNN take their fastest paths only for
// aligned operands). off gets n offsets; returns the total bytes to allocate.
#define CUDA_SUBBUF_ALIGN 256
int64_t cuda_subbuf_plan(const int64_t *bytes, int n, int64_t *off);

// Arguments of one column-major BLAS GEMM, C = alpha op(A) op(B) + beta C,
// batched over heads with element strides sa/sb/sc (0 when not batched).
// ta/tb: 0 = N, 1 = T. The ops build their cuBLAS/cuBLASLt calls from these,
// and a CPU test runs them through a reference column-major GEMM against
// row-major formulas, so the transposes and leading dims are checked without a GPU.
typedef struct {
  int ta, tb;
  int64_t m, n, k, lda, ldb, ldc;
  int64_t sa, sb, sc;
} cuda_gemm_args;

// linear x (rows, in) -> y (rows, out), W (out, in): [0] forward Y, [1] dgrad dX, [2] wgrad dW.
// A/B/C operands: fwd (W, X, Y), dgrad (W, dY, dX), wgrad (X, dY, dW).
void cuda_linear_gemms(int64_t rows, int64_t in, int64_t out, cuda_gemm_args g[3]);
// attention per sample, heads batched, qkv rows of 3D, y rows of D, P/dS (heads, T, T):
// [0] S = scale Q K^T      operands (K, Q, P)
// [1] Y = P V              operands (V, P, Y)
// [2] dP = dY V^T          operands (V, dY, dS)
// [3] dV = P^T dY          operands (dY, P, dV)
// [4] dQ = scale dS K      operands (K, dS, dQ)
// [5] dK = scale dS^T Q    operands (Q, dS, dK)
void cuda_attention_gemms(int64_t T, int64_t D, int64_t dh, cuda_gemm_args g[6]);

// One candidate of a cuDNN algorithm search, in cuDNN's preference order.
typedef struct {
  int ok;               // status == CUDNN_STATUS_SUCCESS
  int64_t memory;       // workspace bytes
  int deterministic;    // determinism == CUDNN_DETERMINISTIC
} cuda_algo_candidate;
// Index of the first candidate that succeeded, fits workspace_limit and, when
// need_deterministic, is deterministic; -1 if none (the caller dies with a
// message naming the op). Keeps the heuristic's order: it ranks by speed.
int cuda_choose_algo(const cuda_algo_candidate *c, int n, int64_t workspace_limit, int need_deterministic);
#endif
