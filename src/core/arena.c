#include "core/arena.h"

#include <stdlib.h>

#include "core/check.h"

void dp_arena_init(dp_arena *a, size_t size) {
  a->base = NULL;
  a->size = size;
  a->used = a->peak = 0;
  a->external = 0;
  if (size) a->base = dp_aligned_alloc(4096, size, "arena");
}
void dp_arena_init_external(dp_arena *a, void *base, size_t size) {
  DP_CHECK(base != NULL && size > 0, "external arena", "give the arena a non-empty block");
  a->base = base;
  a->size = size;
  a->used = a->peak = 0;
  a->external = 1;
}
void dp_arena_free(dp_arena *a) {
  if (!a->external) free(a->base);
  a->external = 0;
  a->base = NULL;
  a->size = a->used = a->peak = 0;
}
size_t dp_arena_reserve(dp_arena *a, size_t bytes, const char *what) {
  size_t off = (a->used + DP_ARENA_ALIGN - 1) / DP_ARENA_ALIGN * DP_ARENA_ALIGN;
  if (a->base && off + bytes > a->size)
    DP_FATAL(what ? what : "arena", "the memory plan is smaller than what is used; this is a bug",
             "arena overflow: need %zu + %zu bytes, have %zu", off, bytes, a->size);
  a->used = off + bytes;
  if (a->used > a->peak) a->peak = a->used;
  return off;
}
void *dp_arena_alloc(dp_arena *a, size_t bytes, const char *what) {
  size_t off = dp_arena_reserve(a, bytes, what);
  DP_CHECK(a->base != NULL, "arena alloc", "initialise the arena with a size first");
  return a->base + off;
}
void dp_arena_reset(dp_arena *a) { a->used = 0; }
