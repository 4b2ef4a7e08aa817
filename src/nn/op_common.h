// Helpers shared by op constructors: backend function-table selection and
// small shape utilities. Op-private structs live in nn/op_<kind>.h so every
// backend sees the same fields.
#ifndef DP_NN_OP_COMMON_H
#define DP_NN_OP_COMMON_H
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "nn/graph.h"

// Each op kind K defines `const nn_op_vt K_cpu_vt` in backend/cpu/ and, in CUDA
// builds, `const nn_op_vt K_cuda_vt` in backend/cuda/. The CUDA table is a weak
// reference so a missing GPU implementation is a clear error at build time of
// the graph, not a link failure.
#define NN_DECLARE_VT(K)          \
  extern const nn_op_vt K##_cpu_vt; \
  extern const nn_op_vt K##_cuda_vt __attribute__((weak))

static inline const nn_op_vt *nn_pick_vt(const nn_graph *g, const nn_op_vt *cpu,
                                         const nn_op_vt *cuda, const char *kind) {
  if (g->backend == NN_BACKEND_CPU) return cpu;
  if (!cuda)
    DP_FATAL("building the graph", "use --device cpu for this model",
             "op %s has no CUDA implementation in this build", kind);
  return cuda;
}
#define NN_PICK_VT(g, K) nn_pick_vt((g), &K##_cpu_vt, &K##_cuda_vt, #K)

// Allocate a zeroed op struct of `size` bytes (nn_op first), pick its table.
static inline void *nn_op_alloc(const nn_graph *g, size_t size, const nn_op_vt *cpu,
                                const nn_op_vt *cuda, const char *kind, const char *opname) {
  nn_op *o = dp_calloc(1, size, kind);
  o->vt = nn_pick_vt(g, cpu, cuda, kind);
  snprintf(o->name, sizeof o->name, "%s", opname ? opname : kind);
  o->out = -1;
  return o;
}
// T *op = NN_OP_NEW(T, g, conv2d, name);
#define NN_OP_NEW(T, g, K, opname) \
  ((T *)nn_op_alloc((g), sizeof(T), &K##_cpu_vt, &K##_cuda_vt, #K, (opname)))

// "<prefix>.<suffix>" into out.
static inline void nn_join_name(char *out, size_t n, const char *prefix, const char *suffix) {
  if (prefix && *prefix) snprintf(out, n, "%s.%s", prefix, suffix);
  else snprintf(out, n, "%s", suffix);
}
#endif
