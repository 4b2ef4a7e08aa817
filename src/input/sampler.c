// DistributedSampler semantics (see sampler.h). The permutation is drawn from
// the stream (seed, epoch) so every rank computes the same one independently.
#include "input/sampler.h"

#include <stdlib.h>

#include "core/check.h"
#include "core/rng.h"

// Stream id reserved for the epoch permutation (augmentation uses other ids).
#define SAMPLER_STREAM 0x5a3d1e00ULL

static int64_t per_rank_count(int64_t total, int world, int drop_last) {
  if (total <= 0) return 0;
  return drop_last ? total / world : (total + world - 1) / world;
}

void sampler_init(sampler *s, int64_t total, int rank, int world, int shuffle, int drop_last,
                  uint64_t seed) {
  DP_CHECK(world >= 1 && rank >= 0 && rank < world, "sampler_init", "rank must be in [0, world)");
  DP_CHECK(total >= 0, "sampler_init", "total must be >= 0");
  s->total = total;
  s->rank = rank;
  s->world = world;
  s->shuffle = shuffle;
  s->drop_last = drop_last;
  s->seed = seed;
  s->epoch = -1;
  s->start = 0;
  s->per_rank = per_rank_count(total, world, drop_last);
  s->perm = dp_malloc((size_t)(total > 0 ? total : 1) * sizeof(int64_t), "sampler permutation");
  sampler_set_epoch(s, 0);
}

void sampler_set_epoch(sampler *s, int64_t epoch) { sampler_set_epoch_at(s, epoch, 0); }

void sampler_set_epoch_at(sampler *s, int64_t epoch, int64_t start) {
  if (start < 0 || start > s->total) start = start < 0 ? 0 : s->total;
  s->start = start;
  s->per_rank = per_rank_count(s->total - start, s->world, s->drop_last);
  if (epoch == s->epoch) return;
  s->epoch = epoch;
  if (s->shuffle) {
    dp_rng r = dp_rng_stream3(s->seed, (uint64_t)epoch, SAMPLER_STREAM);
    dp_rng_permutation(&r, s->perm, s->total);
  } else {
    for (int64_t i = 0; i < s->total; i++) s->perm[i] = i;
  }
}

// Position p = rank + k * world in the (padded) global order. Without
// drop_last, positions >= total wrap to the start of the permutation, exactly
// like torch's `indices += indices[:padding_size]`.
int64_t sampler_get(const sampler *s, int64_t k) {
  DP_CHECK(k >= 0 && k < s->per_rank, "sampler_get", "k must be in [0, per_rank)");
  int64_t p = s->start + (int64_t)s->rank + k * (int64_t)s->world;
  return s->perm[p % s->total];
}

void sampler_free(sampler *s) {
  free(s->perm);
  s->perm = NULL;
}
