// Seedable RNG with independent, reproducible streams.
// xoshiro256** seeded through splitmix64 of (seed, stream): the same
// (seed, stream) always gives the same sequence, whatever thread draws it.
// The state is plain data so checkpoints can save and restore it bit-exactly.
#ifndef DP_CORE_RNG_H
#define DP_CORE_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } dp_rng;

dp_rng dp_rng_stream(uint64_t seed, uint64_t stream);
// Stream derived from several ids, e.g. (seed, epoch, sample index).
dp_rng dp_rng_stream3(uint64_t seed, uint64_t a, uint64_t b);
uint64_t dp_rng_u64(dp_rng *r);
uint32_t dp_rng_u32(dp_rng *r);
double dp_rng_uniform(dp_rng *r);                // [0, 1)
float dp_rng_uniformf(dp_rng *r);                // [0, 1)
double dp_rng_range(dp_rng *r, double lo, double hi);
uint64_t dp_rng_below(dp_rng *r, uint64_t n);    // unbiased, [0, n)
double dp_rng_normal(dp_rng *r);                 // N(0, 1), Box-Muller
double dp_rng_gamma(dp_rng *r, double shape);    // Marsaglia-Tsang, shape > 0
double dp_rng_beta(dp_rng *r, double a, double b);
// Fisher-Yates permutation of 0..n-1 into perm.
void dp_rng_permutation(dp_rng *r, int64_t *perm, int64_t n);
uint64_t dp_splitmix64(uint64_t *x);
#endif
