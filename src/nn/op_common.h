// Helpers shared by op constructors: op allocation (with the backend's
// function table for the op kind) and small shape utilities. Op-private structs live in nn/op_<kind>.h so every
// backend sees the same fields.
#ifndef DP_NN_OP_COMMON_H
#define DP_NN_OP_COMMON_H
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "nn/backend.h"
#include "nn/graph.h"

// Allocate a zeroed op struct of `size` bytes (nn_op first) and take its
// function table from the graph's backend.
static inline void *nn_op_alloc(const nn_graph *g, size_t size, nn_op_kind kind, const char *kind_name,
                                const char *opname) {
  nn_op *o = dp_calloc(1, size, kind_name);
  o->vt = nn_backend_op_vt(g, kind, kind_name);
  o->kind = kind;
  snprintf(o->name, sizeof o->name, "%s", opname ? opname : kind_name);
  o->out = -1;
  return o;
}
// T *op = NN_OP_NEW(T, g, conv2d, name);
#define NN_OP_NEW(T, g, K, opname) ((T *)nn_op_alloc((g), sizeof(T), NN_OP_##K, #K, (opname)))

// "<prefix>.<suffix>" into out.
static inline void nn_join_name(char *out, size_t n, const char *prefix, const char *suffix) {
  if (prefix && *prefix) snprintf(out, n, "%s.%s", prefix, suffix);
  else snprintf(out, n, "%s", suffix);
}
#endif
