// Backend context and memory hooks.
//
// Each backend creates what its ops share (oneDNN engine and stream on the
// CPU; CUDA streams, cuDNN and cuBLAS handles on the GPU), says where the
// graph's flat buffers and arena live, and supplies one op table per op kind.
// graph.c and the op constructors reach a backend only through the
// nn_backend_vt the caller passed to nn_graph_create, so nn/ never names a
// backend symbol (the layers above pick the backend: backend/cpu/cpu.h,
// backend/cuda/cuda.h).
#ifndef DP_NN_BACKEND_H
#define DP_NN_BACKEND_H
#include <stddef.h>
#include <stdint.h>

#include "nn/graph.h"

struct nn_backend_vt {
  const char *name;
  nn_backend kind;
  const nn_op_vt *const *ops;   // (NN_OP_KIND_COUNT); NULL entry: not implemented
  // (NN_OP_KIND_COUNT) or NULL; an entry for each kind whose constructor sets
  // nn_op.recompute, so the lifetime plan (nn/plan.h) is the same on every backend.
  const nn_recompute_fn *recompute;
  int host_memory;   // 1: buffers are host memory the CPU may read and write directly
  void *(*ctx_create)(void);
  void (*ctx_destroy)(void *ctx);
  // Memory of this backend. Copies are synchronous (setup, checkpoints, the
  // per-step loss scalar), never on the per-element path.
  void *(*alloc)(void *ctx, size_t bytes, const char *what);
  void (*free)(void *ctx, void *p, size_t bytes);
  void (*memset)(void *ctx, void *p, int value, size_t bytes);
  void (*upload)(void *ctx, void *dst, const void *src_host, size_t bytes);
  void (*download)(void *ctx, void *dst_host, const void *src, size_t bytes);
  // Bytes the context holds besides what graph.c allocated through `alloc`
  // (GPU: library workspace, autocast staging, op-private and optimizer
  // state); NULL when none is tracked.
  int64_t (*ctx_bytes)(void *ctx);
  // What running the graph costs beyond the planned buffers (libraries'
  // working memory, JIT code, thread stacks), estimated from the op list;
  // *startup gets the part of it a process pays once when the libraries
  // start (already resident in a process that has run anything). NULL: 0.
  int64_t (*runtime_bytes)(const nn_graph *g, int64_t *startup);
  // Device memory in use as the driver reports it; NULL on the CPU.
  int64_t (*measured_bytes)(void *ctx);
};

// Dispatch on a graph's backend (zero-byte requests are no-ops or get a
// valid pointer, so callers never special-case empty buffers).
void *nn_backend_alloc(const nn_graph *g, size_t bytes, const char *what);
void nn_backend_free(const nn_graph *g, void *p, size_t bytes);
void nn_backend_memset(const nn_graph *g, void *p, int value, size_t bytes);
void nn_backend_upload(const nn_graph *g, void *dst, const void *src_host, size_t bytes);
void nn_backend_download(const nn_graph *g, void *dst_host, const void *src, size_t bytes);
// The op table of kind k on g's backend; dies naming the op when missing.
const nn_op_vt *nn_backend_op_vt(const nn_graph *g, nn_op_kind k, const char *kind_name);
#endif
