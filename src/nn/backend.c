// Dispatch of the backend hooks (nn/backend.h) on the graph's backend.
#include "nn/backend.h"

#include "core/check.h"

void *nn_backend_alloc(const nn_graph *g, size_t bytes, const char *what) {
  // A zero-byte request (a model without BN buffers) still gets a valid
  // pointer, so callers never special-case NULL.
  return g->be->alloc(g->backend_ctx, bytes > 0 ? bytes : 64, what);
}

void nn_backend_free(const nn_graph *g, void *p, size_t bytes) {
  if (p) g->be->free(g->backend_ctx, p, bytes > 0 ? bytes : 64);
}

void nn_backend_memset(const nn_graph *g, void *p, int value, size_t bytes) {
  if (bytes) g->be->memset(g->backend_ctx, p, value, bytes);
}

void nn_backend_upload(const nn_graph *g, void *dst, const void *src_host, size_t bytes) {
  if (bytes) g->be->upload(g->backend_ctx, dst, src_host, bytes);
}

void nn_backend_download(const nn_graph *g, void *dst_host, const void *src, size_t bytes) {
  if (bytes) g->be->download(g->backend_ctx, dst_host, src, bytes);
}

const nn_op_vt *nn_backend_op_vt(const nn_graph *g, nn_op_kind k, const char *kind_name) {
  const nn_op_vt *vt = (k >= 0 && k < NN_OP_KIND_COUNT && g->be->ops) ? g->be->ops[k] : NULL;
  if (!vt)
    DP_FATAL("building the graph", "use --device cpu for this model",
             "op %s has no %s implementation in this build", kind_name, g->be->name);
  return vt;
}
