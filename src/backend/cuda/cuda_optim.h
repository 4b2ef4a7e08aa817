// The optimizer step of a CUDA graph, entirely on the device except for the
// fp16 overflow flag: (fp16) inf/NaN check, flag all-reduced across ranks,
// global grad norm with unscale and clipping folded into one device scalar,
// fused SGD/AdamW over the flat buffer with per-group segments, scaler update.
// Semantics follow nn/optim.h (torch SGD / AdamW, clip_grad_norm_).
#ifndef DP_BACKEND_CUDA_OPTIM_H
#define DP_BACKEND_CUDA_OPTIM_H
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_plan.h"
#include "nn/loss_scaler.h"
#include "nn/optim.h"

typedef struct {
  cuda_ctx *cx;
  optim_cfg cfg;
  int64_t n;
  float *state1, *state2;        // momentum / exp_avg, exp_avg_sq (device)
  dp_optim_segment *segs;        // device copy
  dp_optim_segment *hsegs;       // host table (AdamW bias corrections are rewritten every step)
  int nsegs, nparams;
  int64_t *param_step;           // (nparams) steps taken per tensor, as nn/optim.c counts them
  int segs_stale;                // 1: param_step was replaced (checkpoint): rebuild segments first
  double *norm_scratch;
  float *norm, *gscale;          // device scalars
  int32_t *found;                // device overflow flag
  int32_t *found_host;           // pinned copy of it (read without a blocking copy)
  cudaEvent_t found_ev;
  int64_t applied;               // optimizer steps actually applied
  int64_t step;                  // steps attempted (schedule position)
  loss_scaler *scaler;           // enabled for fp16; the caller's (training state) or own_scaler
  loss_scaler own_scaler;
  float last_lr;
} cuda_optimizer;

// scaler: where the loss-scaler state lives (the trainer keeps it in its
// training state for checkpoints); NULL: inside the optimizer.
void cuda_optim_init(cuda_optimizer *o, cuda_ctx *cx, const optim_cfg *cfg, nn_graph *g, int fp16_scaling,
                     loss_scaler *scaler);
void cuda_optim_free(cuda_optimizer *o);
// Re-reads frozen flags / groups from g->params (after optim_apply_freezing)
// and zeroes the gradients of frozen ranges so norms and checks ignore them.
void cuda_optim_refresh_segments(cuda_optimizer *o, nn_graph *g);
// Loss-gradient seed for backward (the loss scale under fp16, else 1).
static inline float cuda_optim_loss_seed(const cuda_optimizer *o) { return loss_scaler_scale(o->scaler); }
// Agreement of all ranks on the fp16 overflow flag (device int32, in place):
// returns 1 if any rank saw inf/NaN. Provided by the caller (dist/ owns the
// NCCL communicator; the backend never reaches up into it).
typedef int (*cuda_flag_any_fn)(void *ctx, int32_t *dev_flag);
// One step after the gradients are reduced: zeroes the frozen tensors'
// gradients (backward writes them), then as above. flag_any NULL: single
// rank (the local flag decides). Returns 1 if the update was applied, 0 if
// skipped. Per-tensor step counts advance for the trainable tensors only.
int cuda_optim_step(cuda_optimizer *o, nn_graph *g, cuda_flag_any_fn flag_any, void *flag_ctx);
// Downloads the last global grad norm (a sync; for logging).
float cuda_optim_last_norm(cuda_optimizer *o);
#endif
