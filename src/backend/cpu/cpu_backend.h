// CPU backend shared state: one oneDNN engine and stream for all ops.
#ifndef DP_BACKEND_CPU_H
#define DP_BACKEND_CPU_H
#include <dnnl.h>

#include "core/check.h"

typedef struct {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
} cpu_ctx;

// Check macro for oneDNN calls.
#define DNNL_CHECK(call, what)                                                        \
  do {                                                                                \
    dnnl_status_t st_ = (call);                                                       \
    if (st_ != dnnl_success)                                                          \
      dp_fatal_at(__FILE__, __LINE__, what, "unsupported shape or out of memory?",    \
                  "%s failed with dnnl status %d", #call, (int)st_);                  \
  } while (0)

static inline cpu_ctx *cpu_ctx_of(void *backend_ctx) { return (cpu_ctx *)backend_ctx; }

// Recompute hooks (nn_backend_vt.recompute): an op's output from what it keeps.
struct nn_op;
struct nn_graph;
void bn_cpu_recompute(struct nn_op *op, struct nn_graph *g);        // batchnorm2d(+relu)
void gelu_cpu_apply(struct nn_op *op, struct nn_graph *g);          // gelu (also its forward)
void layernorm_cpu_recompute(struct nn_op *op, struct nn_graph *g);
#endif
