// Batch-level mixup / cutmix (timm semantics): lambda ~ Beta(alpha, alpha)
// from the stream (seed, epoch, batch index), the batch is mixed with its
// reversed order, and soft targets lambda * onehot(y) + (1 - lambda) *
// onehot(y reversed) are written for the loss. Label smoothing is the loss's job.
// When both alphas are > 0, cutmix is chosen with probability 0.5 per batch.
// Only the first n (valid) samples take part; padding rows stay untouched.
#ifndef DP_INPUT_MIX_H
#define DP_INPUT_MIX_H
#include <stdint.h>

#include "input/augment.h"

typedef struct {
  float mixup_alpha, cutmix_alpha;   // 0 = off
  float prob;                        // probability that a batch is mixed
  int num_classes;
} mix_cfg;

static inline int mix_enabled(const mix_cfg *m) {
  return (m->mixup_alpha > 0 || m->cutmix_alpha > 0) && m->prob > 0;
}

// images: float or uint8 (per o->u8) batch of B >= n samples in o's layout.
// labels: (n); soft: (n, num_classes). Returns 1 if the batch was mixed (soft
// written, lambda in *lam_out), 0 if not (images and soft untouched).
int mix_batch_apply(const mix_cfg *m, const aug_out *o, uint64_t seed, int64_t epoch,
                    int64_t batch_index, void *images, const int32_t *labels, int64_t n,
                    float *soft, float *lam_out);
#endif
