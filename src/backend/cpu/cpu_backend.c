#include "backend/cpu/cpu_backend.h"

#include <omp.h>
#include <stdlib.h>

#include "nn/backend.h"

#ifdef DP_HAVE_CUDA
void *cuda_backend_ctx_create(void);
void cuda_backend_ctx_destroy(void *ctx);
#endif

void *nn_backend_ctx_create(nn_backend b) {
  if (b == NN_BACKEND_CUDA) {
#ifdef DP_HAVE_CUDA
    return cuda_backend_ctx_create();
#else
    DP_FATAL("backend", "rebuild with the CUDA toolkit, or use --device cpu",
             "this dptrain was built without CUDA");
#endif
  }
  cpu_ctx *c = dp_calloc(1, sizeof *c, "cpu backend");
  DNNL_CHECK(dnnl_engine_create(&c->engine, dnnl_cpu, 0), "creating oneDNN CPU engine");
  DNNL_CHECK(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags),
             "creating oneDNN stream");
  return c;
}

void nn_backend_ctx_destroy(nn_backend b, void *ctx) {
  if (!ctx) return;
  if (b == NN_BACKEND_CUDA) {
#ifdef DP_HAVE_CUDA
    cuda_backend_ctx_destroy(ctx);
#endif
    return;
  }
  cpu_ctx *c = ctx;
  dnnl_stream_destroy(c->stream);
  dnnl_engine_destroy(c->engine);
  free(c);
}

void nn_backend_set_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}
