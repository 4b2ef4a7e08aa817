#include "core/rng.h"

#include <math.h>

uint64_t dp_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

dp_rng dp_rng_stream(uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ 0x5851f42d4c957f2dULL;
  uint64_t h = dp_splitmix64(&x);
  x = h ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
  dp_rng r;
  for (int i = 0; i < 4; i++) r.s[i] = dp_splitmix64(&x);
  if (!(r.s[0] | r.s[1] | r.s[2] | r.s[3])) r.s[0] = 1;
  return r;
}

dp_rng dp_rng_stream3(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL);
  return dp_rng_stream(seed, dp_splitmix64(&x));
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dp_rng_u64(dp_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}
uint32_t dp_rng_u32(dp_rng *r) { return (uint32_t)(dp_rng_u64(r) >> 32); }
double dp_rng_uniform(dp_rng *r) { return (double)(dp_rng_u64(r) >> 11) * 0x1.0p-53; }
float dp_rng_uniformf(dp_rng *r) { return (float)(dp_rng_u64(r) >> 40) * 0x1.0p-24f; }
double dp_rng_range(dp_rng *r, double lo, double hi) { return lo + (hi - lo) * dp_rng_uniform(r); }

uint64_t dp_rng_below(dp_rng *r, uint64_t n) {
  if (n <= 1) return 0;
  uint64_t lim = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do v = dp_rng_u64(r); while (v >= lim);
  return v % n;
}

double dp_rng_normal(dp_rng *r) {
  double u1 = dp_rng_uniform(r), u2 = dp_rng_uniform(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double dp_rng_gamma(dp_rng *r, double shape) {
  if (shape < 1.0) {
    double u = dp_rng_uniform(r);
    return dp_rng_gamma(r, shape + 1.0) * pow(u > 0 ? u : 1e-300, 1.0 / shape);
  }
  double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = dp_rng_normal(r);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    double u = dp_rng_uniform(r);
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (log(u) < 0.5 * x * x + d * (1 - v + log(v))) return d * v;
  }
}

double dp_rng_beta(dp_rng *r, double a, double b) {
  double x = dp_rng_gamma(r, a), y = dp_rng_gamma(r, b);
  return (x + y) > 0 ? x / (x + y) : 0.5;
}

void dp_rng_permutation(dp_rng *r, int64_t *perm, int64_t n) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)dp_rng_below(r, (uint64_t)i + 1);
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}
