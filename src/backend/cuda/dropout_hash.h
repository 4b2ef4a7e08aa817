// Counter-based dropout randomness shared by the CUDA kernel and host code
// (tests, a CPU replay): keep/drop for element i depends only on
// (seed, stream, i), never on the launch grid or thread order.
#ifndef DP_BACKEND_CUDA_DROPOUT_HASH_H
#define DP_BACKEND_CUDA_DROPOUT_HASH_H
#include <stdint.h>

#ifdef __CUDACC__
#define DP_HD __host__ __device__ __forceinline__
#else
#define DP_HD static inline
#endif

// splitmix64 finaliser: a bijective mix with full avalanche.
DP_HD uint64_t dp_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 random bits (exact in fp32).
DP_HD float dp_dropout_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  uint64_t key = dp_mix64(seed ^ dp_mix64(stream + 0x9E3779B97F4A7C15ull));
  uint64_t z = dp_mix64(key + i * 0x9E3779B97F4A7C15ull);
  return (float)(z >> 40) * (1.0f / 16777216.0f);
}

DP_HD int dp_dropout_keep(uint64_t seed, uint64_t stream, uint64_t i, float p) {
  return dp_dropout_uniform(seed, stream, i) >= p;
}
#endif
