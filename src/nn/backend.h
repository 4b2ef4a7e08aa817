// Backend context and memory hooks.
//
// Each backend creates what its ops share (oneDNN engine and stream on the
// CPU; CUDA streams, cuDNN and cuBLAS handles on the GPU) and says where the
// graph's flat buffers and arena live. graph.c reaches them only through
// nn_backend_vt, so the CPU code never names a CUDA symbol: the CUDA library
// provides its table (cuda_backend_vt) and nn/backend.c picks it up in the
// one place guarded by DP_HAVE_CUDA.
#ifndef DP_NN_BACKEND_H
#define DP_NN_BACKEND_H
#include <stddef.h>
#include <stdint.h>

#include "nn/graph.h"

typedef struct {
  const char *name;
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
  // Device memory in use as the driver reports it; NULL on the CPU.
  int64_t (*measured_bytes)(void *ctx);
} nn_backend_vt;

extern const nn_backend_vt cpu_backend_vt;
// Dies with a message when the backend was not built in.
const nn_backend_vt *nn_backend_get(nn_backend b);

void *nn_backend_ctx_create(nn_backend b);
void nn_backend_ctx_destroy(nn_backend b, void *ctx);
void *nn_backend_alloc(nn_backend b, void *ctx, size_t bytes, const char *what);
void nn_backend_free(nn_backend b, void *ctx, void *p, size_t bytes);
void nn_backend_memset(nn_backend b, void *ctx, void *p, int value, size_t bytes);
void nn_backend_upload(nn_backend b, void *ctx, void *dst, const void *src_host, size_t bytes);
void nn_backend_download(nn_backend b, void *ctx, void *dst_host, const void *src, size_t bytes);
// Threads the CPU backend may use (OpenMP and oneDNN); 0 = leave as is.
void nn_backend_set_threads(int n);
#endif
