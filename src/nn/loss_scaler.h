// Dynamic loss scaling for fp16 training with torch.cuda.amp.GradScaler
// semantics. Host-side state machine only (no CUDA types), so it is tested on
// machines without a GPU; the GPU part is dp_cuda_nonfinite_check + the
// all-reduce of the flag across ranks, done by the trainer.
//
// Per step: loss is multiplied by scale before backward; gradients are
// unscaled by 1/scale (fused into the optimizer's gscale); if any rank saw an
// inf/NaN gradient the step is skipped on every rank and the scale backs off,
// else after growth_interval clean steps in a row the scale grows.
#ifndef DP_NN_LOSS_SCALER_H
#define DP_NN_LOSS_SCALER_H
#include <stdint.h>

// Plain data: saved into and restored from the training state as is.
typedef struct {
  int enabled;              // 0: scale stays 1 and no step is ever skipped
  float scale;              // current loss scale (init 2^16)
  float growth_factor;      // x2
  float backoff_factor;     // x0.5
  int64_t growth_interval;  // 2000 clean steps
  int64_t growth_tracker;   // clean steps since the last growth or backoff
  int64_t steps_skipped;    // total skipped (reported in results)
  int64_t steps_total;
} loss_scaler;

void loss_scaler_init(loss_scaler *s, int enabled);
// Scale to multiply the loss (or dloss seed) by, and its inverse for unscaling.
static inline float loss_scaler_scale(const loss_scaler *s) { return s->enabled ? s->scale : 1.0f; }
static inline float loss_scaler_inv_scale(const loss_scaler *s) { return s->enabled ? 1.0f / s->scale : 1.0f; }
// found_inf: the all-reduced flag (any rank). Returns 1 if the optimizer step
// must be applied, 0 if it must be skipped. Updates the scale either way.
int loss_scaler_update(loss_scaler *s, int found_inf);
// Validates a restored state; returns 0 if plausible, -1 otherwise (and the
// caller reinitialises).
int loss_scaler_validate(const loss_scaler *s);
#endif
