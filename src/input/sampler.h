// DistributedSampler semantics over all shards: a global permutation seeded by
// (seed, epoch); rank r takes positions r, r + world, ... With drop_last the
// tail that does not fill a whole round of world ranks is dropped; without
// it the permutation is padded by wrapping around from its start, so every
// rank gets ceil(total / world) samples (the padded ones are duplicates).
//
// Class-aware modes (sampler_set_classes, issue 12): the epoch's global
// sequence is `total` draws WITH replacement, class c drawn with probability
// q_c (balanced: 1/K over the K classes present; sqrt: proportional to
// sqrt(n_c)), then a member of c uniformly; it is drawn from the stream
// (seed, epoch) like the permutation, so every rank computes the same
// sequence and rank r takes positions r, r + world, ... as above: the ranks'
// shares are disjoint positions of one sequence (torch's
// WeightedRandomSampler split the DistributedSampler way). With replacement a
// sample may occur more than once in an epoch, and some not at all.
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
  // Class-aware modes.
  int mode;          // SAMPLER_UNIFORM | SAMPLER_BALANCED | SAMPLER_SQRT
  int num_classes;
  double *class_cdf;     // (num_classes) cumulative q_c
  int64_t *class_start;  // (num_classes + 1) into members
  int64_t *members;      // (total) sample indices grouped by class
} sampler;

enum { SAMPLER_UNIFORM = 0, SAMPLER_BALANCED = 1, SAMPLER_SQRT = 2 };
// "uniform" | "balanced" | "sqrt" -> mode, -1 for anything else.
int sampler_mode_parse(const char *name);

void sampler_init(sampler *s, int64_t total, int rank, int world, int shuffle, int drop_last,
                  uint64_t seed);
void sampler_set_epoch(sampler *s, int64_t epoch);
// Resume mid-epoch, possibly on another world size: positions [0, start) of
// the epoch's global order were consumed already; the rest is dealt out
// again, rank r taking start + r, start + r + world, ... So every sample of
// the epoch is still visited once across the two parts (drop_last drops the
// tail of the remainder).
void sampler_set_epoch_at(sampler *s, int64_t epoch, int64_t start);
// Switches to a class-aware mode; labels (total) in [0, num_classes) (others
// are never drawn). Redraws the current epoch. SAMPLER_UNIFORM restores the
// permutation.
void sampler_set_classes(sampler *s, int mode, const int32_t *labels, int num_classes);
// The sampling probability of class c per draw (uniform mode: n_c / total).
double sampler_class_prob(const sampler *s, int c);
// The k-th global sample index this rank visits this epoch (k < per_rank),
// position start + rank + k * world of the epoch's order.
int64_t sampler_get(const sampler *s, int64_t k);
void sampler_free(sampler *s);
#endif
