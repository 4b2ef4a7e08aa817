// CUDA backend shared state and check macros.
//
// One cuda_ctx per graph (g->backend_ctx): the device, three streams (compute,
// host<->device copies, NCCL), cuDNN/cuBLAS/cuBLASLt handles bound to the
// compute stream, a bounded workspace for cuDNN and cuBLASLt, the precision
// mode and a tally of device memory for the planned-vs-measured report.
// Process-wide settings (device, precision, determinism) are set with
// cuda_backend_configure() before the graph is created.
#ifndef DP_BACKEND_CUDA_H
#define DP_BACKEND_CUDA_H
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

typedef enum {
  CUDA_PREC_FP32 = 0,  // fp32 math, no tensor-core rounding
  CUDA_PREC_TF32 = 1,  // fp32 storage, tf32 tensor-core math for conv/GEMM
  CUDA_PREC_BF16 = 2,  // autocast: conv/GEMM in bf16, statistics/loss/optimizer fp32
  CUDA_PREC_FP16 = 3,  // autocast fp16 with dynamic loss scaling (loss_scaler.h)
} cuda_precision;

typedef struct {
  int device;
  cuda_precision precision;
  int deterministic;          // 1: deterministic cuDNN algorithms only
  int64_t workspace_limit;    // bytes allowed per conv algorithm / GEMM
  cudaStream_t compute, copy, comm;
  cudnnHandle_t cudnn;
  cublasHandle_t cublas;
  cublasLtHandle_t cublaslt;
  void *workspace;            // shared by cuDNN and cuBLASLt on the compute stream
  int64_t workspace_bytes;
  void *amp;                  // bf16 autocast staging shared by all ops (transient copies)
  int64_t amp_bytes;
  int64_t allocated_bytes, peak_bytes;   // through cuda_malloc_tracked
  struct cuda_op_state *op_states;       // op-private device memory (cuda_op_state_get)
} cuda_ctx;

// Device memory an op needs beyond the planned arena (class-weight copies,
// loss scratch, algorithm choices), keyed by op and freed with the context.
typedef struct cuda_op_state {
  const void *op;
  void *dev;
  int64_t bytes;
  void *host;                  // optional host-side state
  void (*host_free)(void *);   // frees host (free() when NULL)
  struct cuda_op_state *next;
} cuda_op_state;
// The state of `op` (its nn_op.be_state slot), created with `bytes` of
// zeroed device memory on first use (call from setup: allocation synchronises).
struct nn_op;
cuda_op_state *cuda_op_state_get(cuda_ctx *c, struct nn_op *op, int64_t bytes);

#define CUDA_CHECK(call, what)                                                          \
  do {                                                                                  \
    cudaError_t e_ = (call);                                                            \
    if (e_ != cudaSuccess)                                                              \
      dp_fatal_at(__FILE__, __LINE__, what, "is a GPU visible (nvidia-smi)? out of memory?", \
                  "%s: %s", #call, cudaGetErrorString(e_));                             \
  } while (0)
#define CUDNN_CHECK(call, what)                                                         \
  do {                                                                                  \
    cudnnStatus_t s_ = (call);                                                          \
    if (s_ != CUDNN_STATUS_SUCCESS)                                                     \
      dp_fatal_at(__FILE__, __LINE__, what, "unsupported shape/algorithm or workspace too small", \
                  "%s: %s", #call, cudnnGetErrorString(s_));                            \
  } while (0)
#define CUBLAS_CHECK(call, what)                                                        \
  do {                                                                                  \
    cublasStatus_t s_ = (call);                                                         \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                    \
      dp_fatal_at(__FILE__, __LINE__, what, "check GEMM shapes and workspace", "%s: status %d", \
                  #call, (int)s_);                                                      \
  } while (0)

// Number of usable CUDA devices; 0 (never an error) when there is no driver or GPU.
int cuda_device_count(void);
// Like cuda_device_count, and explains a 0 in msg: no driver, driver too old
// for this runtime, no device, or CUDA_VISIBLE_DEVICES hides them all.
int cuda_device_probe(char *msg, size_t msg_size);
// Dies with a clear message when no GPU can be used (the --device cuda path).
void cuda_require_device(void);
// Settings for contexts created afterwards (device -1: keep the current one).
void cuda_backend_configure(int device, cuda_precision precision, int deterministic,
                            int64_t workspace_limit);
void *cuda_backend_ctx_create(void);
void cuda_backend_ctx_destroy(void *ctx);
static inline cuda_ctx *cuda_ctx_of(void *backend_ctx) { return (cuda_ctx *)backend_ctx; }

// Device memory with a running tally (planned vs measured memory report).
void *cuda_malloc_tracked(cuda_ctx *c, int64_t bytes, const char *what);
void cuda_free_tracked(cuda_ctx *c, void *p, int64_t bytes);
// Grows c->workspace to at least `bytes` (call at setup time only: it syncs).
void cuda_workspace_reserve(cuda_ctx *c, int64_t bytes);
// Grows c->amp (setup time only).
void cuda_amp_reserve(cuda_ctx *c, int64_t bytes);
// Device memory in use on this device by everything (cudaMemGetInfo), bytes.
int64_t cuda_mem_used(void);
const char *cuda_precision_name(cuda_precision p);

// Memory hooks for nn/graph.c (see backend/cuda/README.md): what finalize,
// destroy, params init and the loss read/seed need on a CUDA graph. All take
// the graph's backend_ctx. Copies are synchronous with respect to the
// compute stream (they are for setup, checkpoints and the per-step scalars).
void *cuda_backend_alloc(void *ctx, size_t bytes, const char *what);
void cuda_backend_free(void *ctx, void *p, size_t bytes);
void cuda_backend_memset(void *ctx, void *p, int value, size_t bytes);
void cuda_backend_upload(void *ctx, void *dst_dev, const void *src_host, size_t bytes);
void cuda_backend_download(void *ctx, void *dst_host, const void *src_dev, size_t bytes);
#endif
