// Arena allocator: one aligned block, bump allocation, reset as a whole.
// Planning mode (base == NULL) only counts bytes, so a plan can size the
// arena before anything is allocated.
#ifndef DP_CORE_ARENA_H
#define DP_CORE_ARENA_H
#include <stddef.h>
#include <stdint.h>

#define DP_ARENA_ALIGN 64

typedef struct {
  uint8_t *base;     // NULL while planning
  size_t size;       // capacity in bytes (0 while planning)
  size_t used;       // bytes handed out so far (high-water within this reset)
  size_t peak;
  int external;      // 1: base belongs to the caller (e.g. one cudaMalloc); not freed here
} dp_arena;

void dp_arena_init(dp_arena *a, size_t size);   // size 0: planning mode
// Arena over memory the caller owns (device memory of a CUDA graph): same
// planning and bump allocation, but dp_arena_free leaves base alone.
void dp_arena_init_external(dp_arena *a, void *base, size_t size);
void dp_arena_free(dp_arena *a);
// Returns the byte offset of the new block; aborts if a real arena overflows.
size_t dp_arena_reserve(dp_arena *a, size_t bytes, const char *what);
void *dp_arena_alloc(dp_arena *a, size_t bytes, const char *what);
static inline void *dp_arena_at(dp_arena *a, size_t off) { return a->base + off; }
void dp_arena_reset(dp_arena *a);
#endif
