#include "backend/cpu/cpu_backend.h"

#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "nn/backend.h"

#define DECL_VT(K) extern const nn_op_vt K##_cpu_vt;
NN_OP_KIND_LIST(DECL_VT)
#undef DECL_VT
#define REF_VT(K) [NN_OP_##K] = &K##_cpu_vt,
static const nn_op_vt *const cpu_op_table[NN_OP_KIND_COUNT] = {NN_OP_KIND_LIST(REF_VT)};
#undef REF_VT

static void *cpu_ctx_create(void) {
  cpu_ctx *c = dp_calloc(1, sizeof *c, "cpu backend");
  DNNL_CHECK(dnnl_engine_create(&c->engine, dnnl_cpu, 0), "creating oneDNN CPU engine");
  DNNL_CHECK(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags),
             "creating oneDNN stream");
  return c;
}

static void cpu_ctx_destroy(void *ctx) {
  cpu_ctx *c = ctx;
  dnnl_stream_destroy(c->stream);
  dnnl_engine_destroy(c->engine);
  free(c);
}

// Page-aligned: the arena is one block and page alignment also satisfies the
// 64-byte alignment the SIMD kernels want for the flat buffers.
static void *cpu_alloc(void *ctx, size_t bytes, const char *what) { return dp_aligned_alloc(4096, bytes, what); }
static void cpu_free(void *ctx, void *p, size_t bytes) { free(p); }
static void cpu_memset(void *ctx, void *p, int value, size_t bytes) { memset(p, value, bytes); }
static void cpu_copy(void *ctx, void *dst, const void *src, size_t bytes) {
  if (dst != src) memcpy(dst, src, bytes);
}

static const nn_backend_vt cpu_backend_vt = {
    .name = "cpu",
    .kind = NN_BACKEND_CPU,
    .ops = cpu_op_table,
    .host_memory = 1,
    .ctx_create = cpu_ctx_create,
    .ctx_destroy = cpu_ctx_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .memset = cpu_memset,
    .upload = cpu_copy,
    .download = cpu_copy,
    .ctx_bytes = NULL,
    .measured_bytes = NULL,
};

const nn_backend_vt *cpu_backend(void) { return &cpu_backend_vt; }
