// DistributedSampler semantics over all shards: a global permutation seeded by
// (seed, epoch); rank r takes positions r, r + world, ... With drop_last the
// tail that does not fill a whole round of world ranks is dropped; without
// it the permutation is padded by wrapping around from its start, so every
// rank gets ceil(total / world) samples (the padded ones are duplicates).
#ifndef DP_INPUT_SAMPLER_H
#define DP_INPUT_SAMPLER_H
#include <stdint.h>

typedef struct {
  int64_t total;     // samples across all shards
  int rank, world;
  int shuffle, drop_last;
  uint64_t seed;
  int64_t epoch;
  int64_t start;     // global positions [0, start) of this epoch were consumed before (resume)
  int64_t per_rank;  // samples this rank gets this epoch (from position start on)
  int64_t *perm;     // (total) current epoch permutation
} sampler;

void sampler_init(sampler *s, int64_t total, int rank, int world, int shuffle, int drop_last,
                  uint64_t seed);
void sampler_set_epoch(sampler *s, int64_t epoch);
// Resume mid-epoch, possibly on another world size: positions [0, start) of
// the epoch's global order were consumed already; the rest is dealt out
// again, rank r taking start + r, start + r + world, ... So every sample of
// the epoch is still visited once across the two parts (drop_last drops the
// tail of the remainder).
void sampler_set_epoch_at(sampler *s, int64_t epoch, int64_t start);
// The k-th global sample index this rank visits this epoch (k < per_rank),
// position start + rank + k * world of the epoch's order.
int64_t sampler_get(const sampler *s, int64_t k);
void sampler_free(sampler *s);
#endif
