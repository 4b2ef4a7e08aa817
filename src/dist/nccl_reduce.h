// NCCL for GPU ranks: communicator bootstrap over MPI, bucketed gradient
// all-reduce (ncclAvg) on the comm stream overlapped with backward, and
// error/timeout handling that aborts instead of hanging.
//
// The communicator is non-blocking (config.blocking = 0): every NCCL call is
// followed by polling ncclCommGetAsyncError until it settles, with a timeout,
// so a dead peer turns into ncclCommAbort + DP_FATAL (-> MPI_Abort), never a hang.
#ifndef DP_BACKEND_CUDA_NCCL_REDUCE_H
#define DP_BACKEND_CUDA_NCCL_REDUCE_H
#include <mpi.h>
#include <nccl.h>
#include <stdint.h>

#include "backend/cuda/cuda_backend.h"

#define NCCL_CHECK(call, what)                                                         \
  do {                                                                                 \
    ncclResult_t r_ = (call);                                                          \
    if (r_ != ncclSuccess && r_ != ncclInProgress)                                     \
      dp_fatal_at(__FILE__, __LINE__, what, "set NCCL_DEBUG=WARN for details",         \
                  "%s: %s", #call, ncclGetErrorString(r_));                            \
  } while (0)

typedef struct {
  ncclComm_t comm;
  int rank, world, device;
  double timeout_s;          // a collective or init slower than this aborts the job
  int32_t *flag_host;        // pinned: the overflow flag is read without a blocking copy
} cuda_nccl;

// Collective over `mpi`: rank 0 makes the unique id, MPI_Bcast, ncclCommInitRankConfig.
// The current CUDA device must already be set (cuda_backend_configure / cudaSetDevice).
void cuda_nccl_init(cuda_nccl *c, MPI_Comm mpi, double timeout_s);
void cuda_nccl_destroy(cuda_nccl *c);
// Waits until NCCL calls on the communicator have settled (non-blocking mode).
void cuda_nccl_settle(cuda_nccl *c, const char *what);
// Host-waits for `ev` while polling the communicator for asynchronous errors;
// error or timeout -> ncclCommAbort and a fatal message naming `what`.
void cuda_nccl_wait_event(cuda_nccl *c, cudaEvent_t ev, const char *what);
// Max-reduce an int flag across ranks on the comm stream and wait (the fp16
// overflow flag: a step is skipped on all ranks together). `dev_flag` is a device int32.
int cuda_nccl_flag_any(cuda_nccl *c, cuda_ctx *cx, int32_t *dev_flag);

typedef struct {
  cuda_nccl *nc;
  cuda_ctx *cx;
  float *grads;              // device, g->grads layout
  int64_t n;
  int nbuckets;
  int64_t *lo, *hi;
  cudaEvent_t *ready;        // per bucket, recorded on the compute stream
  cudaEvent_t done[2];       // recorded on the comm stream after the last bucket, alternating steps
  int pending[2];            // done[i] recorded and not yet waited for by the host
  int parity;                // done[] slot of the next finish
  uint16_t *stage;           // bf16 staging (n) when reducing in bf16, else NULL
  int bf16;
  int next;                  // first bucket not yet launched
  int enabled;               // 0: accumulation micro-step, nothing is reduced
  int64_t bytes_sent;        // wire bytes of the last step
} cuda_grad_reducer;

void cuda_grad_reducer_init(cuda_grad_reducer *r, cuda_nccl *nc, cuda_ctx *cx, float *grads,
                            int64_t n, int64_t bucket_bytes, int64_t first_bucket_bytes, int bf16);
void cuda_grad_reducer_free(cuda_grad_reducer *r);
void cuda_grad_reducer_begin(cuda_grad_reducer *r, int enabled);
// nn_grad_ready_fn: launches every bucket lying inside [0, ready_upto).
void cuda_grad_reducer_ready(void *r, int64_t ready_upto);
// After backward: launches what is left and makes the compute stream wait for
// the reduction (device-side ordering, the host does not block).
void cuda_grad_reducer_finish(cuda_grad_reducer *r);
// Host-side completion check with the timeout/abort policy, one step behind:
// waits for the reduction finished before the last one, so the host can queue
// the optimizer and the next forward while this step's reduction runs (no
// per-step drain of the GPU queue), and a dead peer still aborts within
// timeout_s. Call once a step after finish.
void cuda_grad_reducer_check(cuda_grad_reducer *r);
// Waits for every finished reduction (teardown, before reading gradients on the host).
void cuda_grad_reducer_drain(cuda_grad_reducer *r);
#endif
