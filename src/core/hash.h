// FNV-1a, 64-bit: a fast non-cryptographic hash for fingerprints and config
// hashes (identity, not security). Feed bytes with dp_fnv1a64_update,
// starting from DP_FNV1A64_INIT.
#ifndef DP_CORE_HASH_H
#define DP_CORE_HASH_H
#include <stddef.h>
#include <stdint.h>

#define DP_FNV1A64_INIT 1469598103934665603ull

static inline uint64_t dp_fnv1a64_update(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
#endif
