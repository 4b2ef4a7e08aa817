// Dispatch of the backend hooks (nn/backend.h) on the graph's backend.
#include "nn/backend.h"

#include "core/check.h"

#ifdef DP_HAVE_CUDA
extern const nn_backend_vt cuda_backend_vt;   // backend/cuda/cuda_backend.c
#endif

const nn_backend_vt *nn_backend_get(nn_backend b) {
  if (b == NN_BACKEND_CPU) return &cpu_backend_vt;
  if (b == NN_BACKEND_CUDA) {
#ifdef DP_HAVE_CUDA
    return &cuda_backend_vt;
#else
    DP_FATAL("backend", "rebuild with the CUDA toolkit, or use --device cpu", "this dptrain was built without CUDA");
#endif
  }
  DP_FATAL("backend", "internal error", "unknown backend %d", (int)b);
}

void *nn_backend_ctx_create(nn_backend b) { return nn_backend_get(b)->ctx_create(); }

void nn_backend_ctx_destroy(nn_backend b, void *ctx) {
  if (ctx) nn_backend_get(b)->ctx_destroy(ctx);
}

void *nn_backend_alloc(nn_backend b, void *ctx, size_t bytes, const char *what) {
  // A zero-byte request (a model without BN buffers) still gets a valid
  // pointer, so callers never special-case NULL.
  return nn_backend_get(b)->alloc(ctx, bytes > 0 ? bytes : 64, what);
}

void nn_backend_free(nn_backend b, void *ctx, void *p, size_t bytes) {
  if (p) nn_backend_get(b)->free(ctx, p, bytes > 0 ? bytes : 64);
}

void nn_backend_memset(nn_backend b, void *ctx, void *p, int value, size_t bytes) {
  if (bytes) nn_backend_get(b)->memset(ctx, p, value, bytes);
}

void nn_backend_upload(nn_backend b, void *ctx, void *dst, const void *src_host, size_t bytes) {
  if (bytes) nn_backend_get(b)->upload(ctx, dst, src_host, bytes);
}

void nn_backend_download(nn_backend b, void *ctx, void *dst_host, const void *src, size_t bytes) {
  if (bytes) nn_backend_get(b)->download(ctx, dst_host, src, bytes);
}
