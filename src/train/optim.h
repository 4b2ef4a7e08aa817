// Optimizers over the flat parameter buffer (nn/graph.h layout): SGD with
// momentum (optionally Nesterov) and AdamW with decoupled weight decay, with
// torch semantics. Per-parameter groups come from the parameter table:
// no weight decay on BN/bias/embeddings (option), a backbone LR multiplier
// against the head, frozen parameters, and gradual unfreezing by stage.
#ifndef DP_TRAIN_OPTIM_H
#define DP_TRAIN_OPTIM_H
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
  // Gradual unfreezing: every `unfreeze_every` epochs one more stage (from the
  // head down) is unfrozen; 0 = off.
  int unfreeze_every;
  // Schedule.
  sched_kind sched;
  int64_t warmup_steps;     // linear warmup from lr * warmup_start_factor
  float warmup_start_factor;
  int64_t total_steps;      // for cosine
  float min_lr;             // cosine floor
  int64_t step_every;       // step decay: every N steps multiply by step_gamma
  float step_gamma;
} optim_cfg;

void optim_cfg_defaults(optim_cfg *cfg, optim_kind kind);

typedef struct {
  optim_cfg cfg;
  int64_t n;                // elements in the flat buffer
  float *state1;            // SGD momentum / Adam exp_avg (n), same layout as params
  float *state2;            // Adam exp_avg_sq (n), or NULL
  float *lr_scale;          // (n)? no: per-param-table entry scale, see .c
  int64_t step;             // optimizer steps taken (Adam bias correction)
  float last_lr;
  double last_grad_norm;
  int num_stages;           // for unfreezing
} optimizer;

optimizer *optim_create(const optim_cfg *cfg, nn_graph *g, int num_stages);
void optim_destroy(optimizer *o);
// LR at a given global step (warmup + decay).
float optim_lr_at(const optim_cfg *cfg, int64_t step);
// Update frozen flags in g->params for an epoch (freeze_below_stage, unfreezing).
void optim_apply_freezing(optimizer *o, nn_graph *g, int64_t epoch);
// Global L2 norm of the gradients (non-frozen params).
double optim_grad_norm(const nn_graph *g);
// One step: clip (if set), then update g->params_data from g->grads at the LR
// for step o->step; increments o->step. Returns the LR used.
float optim_step(optimizer *o, nn_graph *g);
// How many fp32 copies of the parameters the state holds (for memory plans).
int optim_state_copies(optim_kind kind);
#endif
