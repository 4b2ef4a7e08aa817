// DistributedSampler semantics (see sampler.h). The permutation is drawn from
// the stream (seed, epoch) so every rank computes the same one independently.
#include "input/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"

// Stream id reserved for the epoch permutation (augmentation uses other ids).
#define SAMPLER_STREAM 0x5a3d1e00ULL
#define SAMPLER_CLASS_STREAM 0x5a3d1e01ULL

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
  s->mode = SAMPLER_UNIFORM;
  s->num_classes = 0;
  s->class_cdf = NULL;
  s->class_start = NULL;
  s->members = NULL;
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
  if (s->mode != SAMPLER_UNIFORM) {
    // Draws with replacement: class by inverse CDF, then a member uniformly.
    dp_rng r = dp_rng_stream3(s->seed, (uint64_t)epoch, SAMPLER_CLASS_STREAM);
    int K = s->num_classes;
    for (int64_t i = 0; i < s->total; i++) {
      double u = dp_rng_uniform(&r);
      int lo = 0, hi = K - 1;
      while (lo < hi) {   // first class with cdf > u
        int mid = (lo + hi) / 2;
        if (s->class_cdf[mid] > u) hi = mid; else lo = mid + 1;
      }
      while (lo < K - 1 && s->class_start[lo + 1] == s->class_start[lo]) lo++;   // never an empty class
      int64_t n = s->class_start[lo + 1] - s->class_start[lo];
      s->perm[i] = s->members[s->class_start[lo] + (int64_t)dp_rng_below(&r, (uint64_t)n)];
    }
  } else if (s->shuffle) {
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

int sampler_mode_parse(const char *name) {
  if (!strcmp(name, "uniform")) return SAMPLER_UNIFORM;
  if (!strcmp(name, "balanced")) return SAMPLER_BALANCED;
  if (!strcmp(name, "sqrt")) return SAMPLER_SQRT;
  return -1;
}

void sampler_set_classes(sampler *s, int mode, const int32_t *labels, int num_classes) {
  DP_CHECK(mode >= SAMPLER_UNIFORM && mode <= SAMPLER_SQRT && num_classes >= 1, "sampler_set_classes",
           "mode uniform/balanced/sqrt and num_classes >= 1");
  free(s->class_cdf);
  free(s->class_start);
  free(s->members);
  s->num_classes = num_classes;
  s->class_cdf = dp_calloc((size_t)num_classes, sizeof(double), "sampler classes");
  s->class_start = dp_calloc((size_t)num_classes + 1, sizeof(int64_t), "sampler classes");
  s->members = dp_malloc((size_t)(s->total > 0 ? s->total : 1) * sizeof(int64_t), "sampler members");
  int64_t *fill = dp_calloc((size_t)num_classes, sizeof(int64_t), "sampler classes");
  for (int64_t i = 0; i < s->total; i++)
    if (labels[i] >= 0 && labels[i] < num_classes) s->class_start[labels[i] + 1]++;
  for (int c = 0; c < num_classes; c++) s->class_start[c + 1] += s->class_start[c];
  for (int64_t i = 0; i < s->total; i++) {
    int32_t y = labels[i];
    if (y >= 0 && y < num_classes) s->members[s->class_start[y] + fill[y]++] = i;
  }
  free(fill);
  double sum = 0;
  for (int c = 0; c < num_classes; c++) {
    double n = (double)(s->class_start[c + 1] - s->class_start[c]);
    double w = n <= 0 ? 0 : mode == SAMPLER_BALANCED ? 1.0 : mode == SAMPLER_SQRT ? sqrt(n) : n;
    sum += w;
    s->class_cdf[c] = sum;
  }
  DP_CHECK(sum > 0, "sampler_set_classes", "no sample has a label in [0, num_classes)");
  for (int c = 0; c < num_classes; c++) s->class_cdf[c] /= sum;
  s->class_cdf[num_classes - 1] = 1.0;
  s->mode = mode;
  int64_t e = s->epoch;
  s->epoch = -1;
  sampler_set_epoch_at(s, e < 0 ? 0 : e, s->start);   // a resumed epoch keeps its position
}

double sampler_class_prob(const sampler *s, int c) {
  if (!s->class_cdf || c < 0 || c >= s->num_classes) return 0;
  return s->class_cdf[c] - (c > 0 ? s->class_cdf[c - 1] : 0.0);
}

void sampler_free(sampler *s) {
  free(s->perm);
  free(s->class_cdf);
  free(s->class_start);
  free(s->members);
  s->perm = NULL;
  s->class_cdf = NULL;
  s->class_start = NULL;
  s->members = NULL;
}
