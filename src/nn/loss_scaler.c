#include "nn/loss_scaler.h"

#include <math.h>
#include <string.h>

void loss_scaler_init(loss_scaler *s, int enabled) {
  memset(s, 0, sizeof *s);
  s->enabled = enabled;
  s->scale = enabled ? 65536.0f : 1.0f;
  s->growth_factor = 2.0f;
  s->backoff_factor = 0.5f;
  s->growth_interval = 2000;
}

int loss_scaler_update(loss_scaler *s, int found_inf) {
  s->steps_total++;
  if (!s->enabled) return 1;
  if (found_inf) {
    // GradScaler: scale *= backoff, tracker reset, optimizer.step() skipped.
    s->scale *= s->backoff_factor;
    s->growth_tracker = 0;
    s->steps_skipped++;
    return 0;
  }
  if (++s->growth_tracker >= s->growth_interval) {
    // Grow only while the result stays finite (torch's _amp_update_scale).
    float grown = s->scale * s->growth_factor;
    if (isfinite(grown)) s->scale = grown;
    s->growth_tracker = 0;
  }
  return 1;
}

int loss_scaler_validate(const loss_scaler *s) {
  if (!s->enabled) return 0;
  if (!(s->scale > 0.0f) || !isfinite(s->scale)) return -1;
  if (!(s->growth_factor > 1.0f) || !(s->backoff_factor > 0.0f && s->backoff_factor < 1.0f)) return -1;
  if (s->growth_interval < 1 || s->growth_tracker < 0 || s->growth_tracker >= s->growth_interval) return -1;
  return 0;
}
