// Helpers shared by the CUDA op tables (backend/cuda/*_cuda.c).
//
// Contract the tables rely on (see backend/cuda/README.md): in a CUDA graph,
// every tensor's data/grad/extra, g->params_data, g->grads, g->buf_data,
// g->workspace and the step's labels / soft_targets are DEVICE pointers, and all work
// is queued on the compute stream (nothing here synchronises the host).
#ifndef DP_BACKEND_CUDA_OPS_H
#define DP_BACKEND_CUDA_OPS_H
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_plan.h"
#include "backend/cuda/kernels.h"
#include "nn/graph.h"

static inline cuda_ctx *cuda_cx(nn_graph *g) { return (cuda_ctx *)g->backend_ctx; }
static inline cudaStream_t cuda_stream(nn_graph *g) { return cuda_cx(g)->compute; }


// Autocast staging type of conv/linear: 0 none (fp32/tf32), 1 bf16, 2 fp16.
static inline int cuda_lp_mode(const cuda_ctx *c) {
  return c->precision == CUDA_PREC_BF16 ? 1 : c->precision == CUDA_PREC_FP16 ? 2 : 0;
}
static inline cudaError_t cuda_to_lp(int mode, const float *x, uint16_t *y, int64_t n, cudaStream_t s) {
  return mode == 2 ? dp_cuda_f32_to_f16(x, y, n, s) : dp_cuda_f32_to_bf16(x, y, n, s);
}
static inline cudaError_t cuda_from_lp(int mode, const uint16_t *x, float *y, int64_t n, int acc, cudaStream_t s) {
  return mode == 2 ? dp_cuda_f16_to_f32_acc(x, y, n, acc, s) : dp_cuda_bf16_to_f32_acc(x, y, n, acc, s);
}
#endif
