// MPI start-up, placement and gradient all-reduce for CPU ranks.
#ifndef DP_DIST_H
#define DP_DIST_H
#include <mpi.h>
#include <stdint.h>

#include "core/check.h"

#define MPI_CHECK(call, what)                                                         \
  do {                                                                                \
    int rc_ = (call);                                                                 \
    if (rc_ != MPI_SUCCESS) {                                                         \
      char es_[MPI_MAX_ERROR_STRING];                                                 \
      int el_ = 0;                                                                    \
      MPI_Error_string(rc_, es_, &el_);                                               \
      dp_fatal_at(__FILE__, __LINE__, what, "check the launcher (mpirun/srun --mpi=pmix)", \
                  "%s: %s", #call, es_);                                              \
    }                                                                                 \
  } while (0)

typedef struct {
  int rank, world;
  int local_rank, local_world;   // from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)
  int node_count;
  char host[256];
  MPI_Comm comm, local_comm;
  // Placement (filled by dist_bind).
  int cores;                 // cores this rank is bound to
  int threads;               // OpenMP threads for compute
  int loader_threads;
  int numa_node;
  char cpuset[256];          // human-readable core list
  int oversubscribed;
} dist_ctx;

// MPI_Init_thread, identity for messages, fatal hook that MPI_Aborts, the
// SLURM_NTASKS consistency check. Safe to call without a launcher (world 1).
void dist_init(dist_ctx *d, int *argc, char ***argv);
void dist_finalize(dist_ctx *d);
// Binds this rank with hwloc to its share of cores (one package per rank when
// the node has several and there are no more ranks than packages), sizes the
// thread counts (threads_req / loader_req: 0 = automatic), prints the binding.
void dist_bind(dist_ctx *d, int threads_req, int loader_req);

// ---- gradient buckets -------------------------------------------------------
// The flat gradient buffer is cut into contiguous buckets (~bucket_bytes, the
// first one smaller). Each bucket's MPI_Iallreduce starts as soon as backward
// has produced it (connect grad_reducer_ready to g->grad_ready), and
// grad_reducer_wait() completes all and divides by world (average).
typedef struct {
  dist_ctx *d;
  float *grads;
  int64_t n;
  int nbuckets;
  int64_t *bucket_lo, *bucket_hi;
  MPI_Request *req;
  int next;                   // first bucket not yet started
  int enabled;                // 0: accumulation micro-step, nothing is sent
  double wait_s;              // time blocked in wait (communication not hidden)
  double comm_start, backward_end;
  int64_t bytes;
} grad_reducer;

void grad_reducer_init(grad_reducer *r, dist_ctx *d, float *grads, int64_t n, int64_t bucket_bytes,
                       int64_t first_bucket_bytes);
void grad_reducer_free(grad_reducer *r);
void grad_reducer_begin(grad_reducer *r, int enabled);   // before backward
void grad_reducer_ready(void *r, int64_t ready_upto);    // nn_grad_ready_fn
void grad_reducer_wait(grad_reducer *r);                 // after backward
// Averages a float buffer across ranks (BN running statistics, metrics).
void dist_allreduce_mean(dist_ctx *d, float *buf, int64_t n);
void dist_allreduce_sum_i64(dist_ctx *d, int64_t *buf, int64_t n);
void dist_allreduce_sum_f64(dist_ctx *d, double *buf, int64_t n);
#endif
