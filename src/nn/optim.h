// Optimizers over the flat parameter buffer (nn/graph.h layout): SGD with
// momentum (optionally Nesterov) and AdamW with decoupled weight decay, with
// torch 1.13 semantics. Per-parameter groups come from the parameter table:
// no weight decay on BN/LN, biases and embeddings (option), a backbone LR
// multiplier against the head, frozen parameters, and gradual unfreezing by
// stage.
//
// Semantics (each checked against torch in tests/optim/):
//   SGD   (torch.optim.SGD, dampening 0):
//           d = grad + wd * p                   (coupled decay, wd of the group)
//           buf = momentum * buf + d            (buf starts at 0, so step 1: buf = d)
//           d = nesterov ? d + momentum * buf : buf
//           p -= lr * d
//   AdamW (torch.optim.AdamW, amsgrad off): per parameter tensor step t (counts
//         only steps where the tensor was trainable, like torch skips params
//         whose .grad is None):
//           p *= 1 - lr * wd
//           m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//           p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   Clipping (torch.nn.utils.clip_grad_norm_, L2): norm over the gradients of
//         the trainable parameters; coef = min(1, max_norm / (norm + 1e-6)).
//         The coefficient is folded into the update (g->grads is left as is);
//         the result equals clipping the grads first.
//   Groups: lr of a param = lr_at(step) * (is_head ? 1 : backbone_lr_mult);
//           wd of a param = (no_decay_norm_bias && kind != NN_PARAM_WEIGHT) ? 0
//           : weight_decay. Frozen params (g->params[i].frozen) are skipped:
//           neither they nor their optimizer state change.
//
// LR schedule, optim_lr_at(cfg, s) for the global optimizer step s = 0, 1, ...
// (the step optim_step is about to take; o->step before the increment):
//   warmup (s < W = warmup_steps): lr * (f + (1 - f) * s / W), f = warmup_start_factor
//           (torch LinearLR(start_factor=f, total_iters=W)); s >= W: lr before decay.
//   after warmup, with k = s - W:
//     SCHED_CONSTANT: lr
//     SCHED_COSINE:   min_lr + (lr - min_lr) * (1 + cos(pi * min(k, D) / D)) / 2,
//                     D = total_steps - W (torch CosineAnnealingLR(T_max=D, eta_min=min_lr));
//                     when D <= 0 the LR stays at lr.
//     SCHED_STEP:     lr * step_gamma ^ floor(k / step_every) (torch StepLR);
//                     step_every <= 0: lr.
//
// Freezing by stage (optim_apply_freezing, call at the start of each epoch e,
// 0-based). Stages run 0 (stem) .. top (head), top = num_stages - 1. A param
// is trainable at epoch e iff it was not frozen when the optimizer was created
// (the caller's own flags are kept), and stage >= freeze_below_stage, and,
// with unfreeze_every = E > 0, stage >= top - floor(e / E): epochs 0..E-1
// train only the head stage, E..2E-1 the top two stages, and so on until all
// stages at or above freeze_below_stage train.
#ifndef DP_NN_OPTIM_H
#define DP_NN_OPTIM_H
#include <stdint.h>

#include "nn/graph.h"

typedef enum { OPTIM_SGD = 0, OPTIM_ADAMW = 1 } optim_kind;
typedef enum { SCHED_CONSTANT = 0, SCHED_COSINE = 1, SCHED_STEP = 2 } sched_kind;

typedef struct {
  optim_kind kind;
  float lr;                 // peak LR (after warmup)
  float momentum;           // SGD (default 0.9)
  int nesterov;
  float beta1, beta2, eps;  // AdamW (0.9, 0.999, 1e-8)
  float weight_decay;
  int no_decay_norm_bias;   // 1: no decay on BN/LN, biases, embeddings
  float clip_grad_norm;     // 0 = off; clip by global L2 norm
  float backbone_lr_mult;   // LR multiplier for non-head params (default 1)
  int freeze_below_stage;   // params with stage < this are frozen (0 = none)
  int unfreeze_every;       // gradual unfreezing period in epochs; 0 = off (see above)
  // Schedule.
  sched_kind sched;
  int64_t warmup_steps;     // linear warmup from lr * warmup_start_factor
  float warmup_start_factor;
  int64_t total_steps;      // for cosine: warmup + decay steps
  float min_lr;             // cosine floor
  int64_t step_every;       // step decay: every N steps multiply by step_gamma
  float step_gamma;
} optim_cfg;

// SGD: lr 0.1, momentum 0.9, wd 1e-4. AdamW: lr 1e-3, betas (0.9, 0.999),
// eps 1e-8, wd 0.05. Both: no_decay_norm_bias 1, no clipping, multiplier 1,
// no freezing, constant schedule, warmup_start_factor 0.1, step_gamma 0.1.
void optim_cfg_defaults(optim_cfg *cfg, optim_kind kind);

typedef struct {
  optim_cfg cfg;
  int64_t n;                // elements in the flat buffer
  float *state1;            // SGD momentum / Adam exp_avg (n), same layout as params
  float *state2;            // Adam exp_avg_sq (n), or NULL
  int32_t nparams;
  int64_t *param_step;      // (nparams) Adam steps taken per param tensor
  uint8_t *base_frozen;     // (nparams) caller's frozen flags at create time
  int64_t step;             // optimizer steps taken (drives the LR schedule)
  float last_lr;            // head LR of the last step
  double last_grad_norm;    // pre-clip norm of the last step; -1 when clipping is off
  float last_clip_coef;     // 1 when not clipped
  int num_stages;           // top stage + 1 (for unfreezing)
  int64_t trainable_elems;  // after the last optim_apply_freezing (-1 before)
  void *segs;               // internal: per-step table of trainable ranges
} optimizer;

// num_stages: 0 = derive from the parameter table (max stage + 1). Captures
// the caller's frozen flags and, when stage freezing is configured, applies
// the epoch-0 rule at once. For a bit-exact checkpoint save state1, state2,
// param_step and step.
optimizer *optim_create(const optim_cfg *cfg, nn_graph *g, int num_stages);
void optim_destroy(optimizer *o);
// LR at a given global step (warmup + decay), before the group multiplier.
float optim_lr_at(const optim_cfg *cfg, int64_t step);
// Is a param of `stage` trainable at `epoch` by the stage rules above?
int optim_stage_trainable(const optim_cfg *cfg, int num_stages, int stage, int64_t epoch);

// The freezing schedule, shared by the CPU optimizer and the GPU one.
// Captures the caller's frozen flags (nparams bytes, to free) and the stage
// count (num_stages 0 = max stage + 1; dies when a parameter's stage is past it).
uint8_t *optim_freeze_capture(const nn_graph *g, int num_stages, int *num_stages_out);
// Sets every parameter's frozen flag for epoch; returns the trainable elements.
int64_t optim_freeze_apply(const optim_cfg *cfg, const uint8_t *base_frozen, int num_stages, nn_graph *g,
                           int64_t epoch);
// Update frozen flags in g->params for an epoch (freeze_below_stage, unfreezing).
void optim_apply_freezing(optimizer *o, nn_graph *g, int64_t epoch);
// Global L2 norm of the gradients of the non-frozen params (double accumulation).
double optim_grad_norm(const nn_graph *g);
// One step: clip (if set), then update g->params_data from g->grads at the LR
// for step o->step; increments o->step. Returns the (head) LR used.
float optim_step(optimizer *o, nn_graph *g);
// How many fp32 copies of the parameters the state holds (for memory plans).
int optim_state_copies(optim_kind kind);

// The optimizer state as plain host data, for checkpoints: everything that
// determines the next updates besides the parameters and the config.
typedef struct {
  optim_kind kind;
  int64_t n;               // elements (flat parameter layout)
  float *state1;           // (n) SGD momentum_buffer / AdamW exp_avg
  float *state2;           // (n) AdamW exp_avg_sq; NULL for SGD
  int32_t nparams;
  int64_t *param_step;     // (nparams) updates each tensor took (AdamW bias correction)
  int64_t step;            // optimizer steps taken (the LR schedule position)
  int64_t applied;         // steps whose update was applied (fp16 can skip some)
} optim_snapshot;
// Allocates the arrays for an optimizer of `kind` over g (zeroed).
void optim_snapshot_alloc(optim_snapshot *s, optim_kind kind, const nn_graph *g);
void optim_snapshot_free(optim_snapshot *s);
// Copies o's state out / back in. restore checks kind and sizes: returns 0,
// or -1 with err filled (e.g. a checkpoint of an SGD run into AdamW).
void optim_snapshot_get(const optimizer *o, optim_snapshot *s);
int optim_snapshot_set(optimizer *o, const optim_snapshot *s, char *err, int err_sz);
#endif
