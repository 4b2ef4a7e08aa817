#include "dist/nccl_reduce.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/cuda/cuda_plan.h"
#include "backend/cuda/kernels.h"
#include "core/log.h"
#include "dist/dist.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static _Noreturn void abort_comm(cuda_nccl *c, const char *what, const char *why) {
  const char *last = c->comm ? ncclGetLastError(c->comm) : "";
  if (c->comm) ncclCommAbort(c->comm);
  c->comm = NULL;
  DP_FATAL(what, "a peer rank died or the network failed; check the other ranks' logs (NCCL_DEBUG=WARN)",
           "NCCL %s on rank %d of %d: %s", why, c->rank, c->world, last ? last : "");
}

void cuda_nccl_settle(cuda_nccl *c, const char *what) {
  double t0 = now_s();
  for (;;) {
    ncclResult_t st = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(c->comm, &st), "polling the NCCL communicator");
    if (st == ncclSuccess) return;
    if (st != ncclInProgress) abort_comm(c, what, ncclGetErrorString(st));
    if (now_s() - t0 > c->timeout_s) abort_comm(c, what, "timed out");
    usleep(20);
  }
}

void cuda_nccl_init(cuda_nccl *c, MPI_Comm mpi, double timeout_s) {
  memset(c, 0, sizeof *c);
  c->timeout_s = timeout_s > 0 ? timeout_s : 600.0;
  MPI_CHECK(MPI_Comm_rank(mpi, &c->rank), "NCCL bootstrap");
  MPI_CHECK(MPI_Comm_size(mpi, &c->world), "NCCL bootstrap");
  CUDA_CHECK(cudaGetDevice(&c->device), "NCCL bootstrap: current device");
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  if (c->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id), "creating the NCCL unique id");
  MPI_CHECK(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, mpi), "broadcasting the NCCL unique id");
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  cfg.blocking = 0;
  NCCL_CHECK(ncclCommInitRankConfig(&c->comm, c->world, id, c->rank, &cfg),
             "creating the NCCL communicator");
  cuda_nccl_settle(c, "creating the NCCL communicator");
  CUDA_CHECK(cudaMallocHost((void **)&c->flag_host, sizeof *c->flag_host), "pinned overflow flag");
  int v = 0;
  ncclGetVersion(&v);
  if (c->rank == 0) LOG_INFO("NCCL %d ready: %d ranks, timeout %.0f s", v, c->world, c->timeout_s);
}

void cuda_nccl_destroy(cuda_nccl *c) {
  if (c->flag_host) cudaFreeHost(c->flag_host);
  c->flag_host = NULL;
  if (!c->comm) return;
  // Finalize flushes outstanding work; in non-blocking mode it must settle too.
  NCCL_CHECK(ncclCommFinalize(c->comm), "finalizing the NCCL communicator");
  cuda_nccl_settle(c, "finalizing the NCCL communicator");
  NCCL_CHECK(ncclCommDestroy(c->comm), "destroying the NCCL communicator");
  c->comm = NULL;
}

void cuda_nccl_wait_event(cuda_nccl *c, cudaEvent_t ev, const char *what) {
  double t0 = now_s();
  for (int spin = 0;; spin++) {
    cudaError_t q = cudaEventQuery(ev);
    if (q == cudaSuccess) return;
    if (q != cudaErrorNotReady) CUDA_CHECK(q, what);
    ncclResult_t st = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(c->comm, &st), "polling the NCCL communicator");
    if (st != ncclSuccess && st != ncclInProgress) abort_comm(c, what, ncclGetErrorString(st));
    if (now_s() - t0 > c->timeout_s) abort_comm(c, what, "collective timed out");
    if (spin > 100) usleep(50);  // spin briefly first: most waits are short
  }
}

int cuda_nccl_flag_any(cuda_nccl *c, cuda_ctx *cx, int32_t *dev_flag) {
  cudaEvent_t ev;
  CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "overflow flag event");
  CUDA_CHECK(cudaEventRecord(ev, cx->compute), "overflow flag event");
  CUDA_CHECK(cudaStreamWaitEvent(cx->comm, ev, 0), "ordering the overflow flag");
  NCCL_CHECK(ncclAllReduce(dev_flag, dev_flag, 1, ncclInt32, ncclMax, c->comm, cx->comm),
             "all-reducing the overflow flag");
  cuda_nccl_settle(c, "all-reducing the overflow flag");
  // Into pinned memory: a copy to pageable memory would block inside
  // cudaMemcpyAsync until the all-reduce finished, so a dead peer would hang
  // the host before the polling loop below could time out.
  *c->flag_host = 0;
  CUDA_CHECK(cudaMemcpyAsync(c->flag_host, dev_flag, sizeof *c->flag_host, cudaMemcpyDeviceToHost, cx->comm),
             "reading the overflow flag");
  CUDA_CHECK(cudaEventRecord(ev, cx->comm), "overflow flag event");
  cuda_nccl_wait_event(c, ev, "all-reducing the overflow flag");
  CUDA_CHECK(cudaEventDestroy(ev), "overflow flag event");
  return *c->flag_host != 0;
}

void cuda_grad_reducer_init(cuda_grad_reducer *r, cuda_nccl *nc, cuda_ctx *cx, float *grads,
                            int64_t n, int64_t bucket_bytes, int64_t first_bucket_bytes, int bf16) {
  memset(r, 0, sizeof *r);
  r->nc = nc;
  r->cx = cx;
  r->grads = grads;
  r->n = n;
  r->bf16 = bf16;
  r->nbuckets = cuda_bucket_plan(n, bf16 ? 2 : 4, bucket_bytes, first_bucket_bytes, &r->lo, &r->hi);
  r->ready = dp_calloc((size_t)(r->nbuckets > 0 ? r->nbuckets : 1), sizeof(cudaEvent_t), "bucket events");
  for (int b = 0; b < r->nbuckets; b++)
    CUDA_CHECK(cudaEventCreateWithFlags(&r->ready[b], cudaEventDisableTiming), "bucket event");
  for (int i = 0; i < 2; i++)
    CUDA_CHECK(cudaEventCreateWithFlags(&r->done[i], cudaEventDisableTiming), "reduction done event");
  if (bf16) r->stage = cuda_malloc_tracked(cx, n * 2, "bf16 gradient staging");
  r->next = r->nbuckets;  // nothing pending until begin
  if (nc->rank == 0)
    LOG_INFO("gradient buckets: %d over %.1f MB (%s on the wire)", r->nbuckets, (double)n * 4 / 1e6,
             bf16 ? "bf16" : "fp32");
}

void cuda_grad_reducer_free(cuda_grad_reducer *r) {
  if (r->nc && r->nc->comm) cuda_grad_reducer_drain(r);
  for (int b = 0; b < r->nbuckets; b++) cudaEventDestroy(r->ready[b]);
  for (int i = 0; i < 2; i++)
    if (r->done[i]) cudaEventDestroy(r->done[i]);
  if (r->stage) cuda_free_tracked(r->cx, r->stage, r->n * 2);
  free(r->ready);
  free(r->lo);
  free(r->hi);
  memset(r, 0, sizeof *r);
}

void cuda_grad_reducer_begin(cuda_grad_reducer *r, int enabled) {
  r->enabled = enabled;
  r->next = 0;
  r->bytes_sent = 0;
}

static void launch_bucket(cuda_grad_reducer *r, int b) {
  cuda_ctx *cx = r->cx;
  int64_t lo = r->lo[b], len = r->hi[b] - r->lo[b];
  // The comm stream must not read the bucket before backward wrote it.
  CUDA_CHECK(cudaEventRecord(r->ready[b], cx->compute), "marking a gradient bucket ready");
  CUDA_CHECK(cudaStreamWaitEvent(cx->comm, r->ready[b], 0), "ordering a bucket after backward");
  if (r->bf16) {
    CUDA_CHECK(dp_cuda_f32_to_bf16(r->grads + lo, r->stage + lo, len, cx->comm), "bf16 bucket cast");
    NCCL_CHECK(ncclAllReduce(r->stage + lo, r->stage + lo, (size_t)len, ncclBfloat16, ncclAvg,
                             r->nc->comm, cx->comm), "all-reducing a gradient bucket (bf16)");
    cuda_nccl_settle(r->nc, "all-reducing a gradient bucket");
    CUDA_CHECK(dp_cuda_bf16_to_f32(r->stage + lo, r->grads + lo, len, cx->comm), "bf16 bucket cast");
    r->bytes_sent += len * 2;
  } else {
    NCCL_CHECK(ncclAllReduce(r->grads + lo, r->grads + lo, (size_t)len, ncclFloat32, ncclAvg,
                             r->nc->comm, cx->comm), "all-reducing a gradient bucket");
    cuda_nccl_settle(r->nc, "all-reducing a gradient bucket");
    r->bytes_sent += len * 4;
  }
}

void cuda_grad_reducer_ready(void *ctx, int64_t ready_upto) {
  cuda_grad_reducer *r = ctx;
  if (!r->enabled) return;
  while (r->next < r->nbuckets && r->hi[r->next] <= ready_upto) launch_bucket(r, r->next++);
}

void cuda_grad_reducer_finish(cuda_grad_reducer *r) {
  if (!r->enabled) return;
  while (r->next < r->nbuckets) launch_bucket(r, r->next++);
  int k = r->parity;
  // The slot is reused every other step: its previous reduction must have
  // been waited for (check runs once a step, so it has).
  if (r->pending[k]) cuda_nccl_wait_event(r->nc, r->done[k], "waiting for the gradient all-reduce");
  CUDA_CHECK(cudaEventRecord(r->done[k], r->cx->comm), "marking the reduction done");
  r->pending[k] = 1;
  r->parity = k ^ 1;
  // The optimizer on the compute stream reads reduced gradients only.
  CUDA_CHECK(cudaStreamWaitEvent(r->cx->compute, r->done[k], 0), "ordering the optimizer after the reduction");
}

void cuda_grad_reducer_check(cuda_grad_reducer *r) {
  // After finish, done[parity] is the older of the two: the previous step's.
  int k = r->parity;
  if (!r->pending[k]) return;
  cuda_nccl_wait_event(r->nc, r->done[k], "waiting for the gradient all-reduce");
  r->pending[k] = 0;
}

void cuda_grad_reducer_drain(cuda_grad_reducer *r) {
  for (int i = 0; i < 2; i++) {
    int k = (r->parity + i) & 1;   // older first
    if (!r->pending[k]) continue;
    cuda_nccl_wait_event(r->nc, r->done[k], "waiting for the gradient all-reduce");
    r->pending[k] = 0;
  }
}
