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

static const nn_recompute_fn cpu_recompute_table[NN_OP_KIND_COUNT] = {
    [NN_OP_batchnorm2d] = bn_cpu_recompute,
    [NN_OP_batchnorm2d_relu] = bn_cpu_recompute,
    [NN_OP_gelu] = gelu_cpu_apply,
    [NN_OP_layernorm] = layernorm_cpu_recompute,
};

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

// Memory the process gains by running a graph beyond the buffers the plan
// lists: oneDNN's JIT kernels and primitive objects, OpenMP and loader
// thread stacks, malloc's own use. Calibrated on the development machine
// (docs/memory.md: peak RSS growth minus the plan of one-image graphs of
// every model, 2 threads): 8 MiB with no oneDNN primitive (ViT: sgemm only),
// 4 MiB more once there is a conv or BN, and 56 KiB per conv / BN op.
// The 8 + 4 MiB are library start-up: a dptrain process has paid them before
// it plans a run (MPI, hwloc and device start-up touch the same pages), so
// the batch-size finder leaves them out (*startup).
static int64_t cpu_runtime_bytes(const nn_graph *g, int64_t *startup) {
  int64_t prims = 0;
  for (int32_t i = 0; i < g->nops; i++) {
    nn_op_kind k = g->ops[i]->kind;
    prims += k == NN_OP_conv2d || k == NN_OP_batchnorm2d || k == NN_OP_batchnorm2d_relu;
  }
  int64_t start = ((int64_t)8 << 20) + (prims ? (int64_t)4 << 20 : 0);
  if (startup) *startup = start;
  return start + prims * ((int64_t)56 << 10);
}

static const nn_backend_vt cpu_backend_vt = {
    .name = "cpu",
    .kind = NN_BACKEND_CPU,
    .ops = cpu_op_table,
    .recompute = cpu_recompute_table,
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
    .runtime_bytes = cpu_runtime_bytes,
};

const nn_backend_vt *cpu_backend(void) { return &cpu_backend_vt; }
