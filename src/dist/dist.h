// MPI start-up, placement and gradient all-reduce for CPU ranks.
#ifndef DP_DIST_H
#define DP_DIST_H
#include <mpi.h>
#include <stddef.h>
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
  MPI_Comm comm, local_comm;     // comm = MPI_COMM_WORLD
  // Placement (filled by dist_bind).
  int cores;                 // physical cores this rank is bound to
  int threads;               // OpenMP threads for compute
  int loader_threads;
  int numa_node;             // OS index of the nearest NUMA node, -1 if unknown
  char cpuset[256];          // human-readable PU list, e.g. "0-3,8-11"
  int oversubscribed;        // 1: more ranks/threads on this node than cores
  int bound;                 // 1: hwloc binding applied
  struct dist_watchdog *wd;  // collective deadlines (dist/watchdog.h); NULL: plain blocking waits
} dist_ctx;

// MPI_Init_thread (FUNNELED: only the main thread calls MPI), identity for
// messages, a fatal hook that MPI_Aborts the whole job, and the SLURM_NTASKS
// (or SLURM_NPROCS) consistency check: when set and different from the world
// size every rank aborts with a message (likely srun without --mpi=pmix, i.e.
// N independent 1-rank runs). DPTRAIN_IGNORE_SLURM_NTASKS=1 skips the check
// (for a deliberate mpirun -np K inside a larger allocation).
// Safe to call without a launcher (singleton, world 1).
void dist_init(dist_ctx *d, int *argc, char ***argv);
void dist_finalize(dist_ctx *d);

// Binds this rank with hwloc to its share of the node and sizes its threads.
//  * The node's usable PUs: the union over the node's ranks of each rank's
//    current binding (launcher, cgroup) within hwloc's allowed cpuset. If the
//    launcher already gave the ranks disjoint sets, each rank keeps its own.
//  * Otherwise, with L ranks on the node: when the usable PUs span P >= L
//    packages, rank r gets packages [r*P/L, (r+1)*P/L) (one socket per rank
//    when P == L); else the C usable cores are split evenly by local rank
//    (cores [r*C/L, (r+1)*C/L); when C < L, core r % C, oversubscribed).
//  * Memory is bound to the rank's NUMA node when its cores lie in one node of
//    a multi-node machine (best effort, warns on failure).
//  * threads = threads_req if > 0, else OMP_NUM_THREADS if set, else the
//    number of cores bound; loader_threads = loader_req if > 0, else
//    max(1, cores / 2) (decode shares the cores with compute).
//  * Warns when ranks > cores or ranks * threads > PUs on the node.
//  * DPTRAIN_NO_BIND=1: no binding; threads are sized to cores / L.
// Collective over the node. Rank 0 prints one line per rank, in rank order.
void dist_bind(dist_ctx *d, int threads_req, int loader_req);
// The share rule alone, on an hwloc synthetic topology (e.g. "pack:2 core:4
// pu:2"): writes the chosen PU list, returns 1 when oversubscribed. For tests.
int dist_share_for_topology(const char *synthetic, int local_rank, int local_world, char *out, size_t n);

// ---- gradient buckets -------------------------------------------------------
// The flat gradient buffer is cut into contiguous buckets: the first one of
// first_bucket_bytes (backward produces it earliest, so it starts early), the
// last one also first_bucket_bytes when the buffer is large enough (backward
// produces it at the very end, so its transfer is exposed; small keeps that
// short), the middle in equal buckets of at most bucket_bytes. Each
// bucket's MPI_Iallreduce(MPI_IN_PLACE, SUM) starts as soon as the ready
// prefix covers it (connect grad_reducer_ready to g->grad_ready with the
// reducer as context). Every ready callback also polls the started requests
// (MPI_Testsome), because nonblocking collectives only progress inside MPI
// calls; a bucket found complete is scaled by 1/world right away.
// grad_reducer_wait() starts what is left, completes everything and scales
// the rest, so g->grads holds the average over ranks.
// Buckets are started in the same order on every rank, on a private
// duplicate of the communicator, so other collectives cannot interleave.
typedef struct {
  dist_ctx *d;
  MPI_Comm comm;              // duplicate of d->comm
  float *grads;
  int64_t n;
  int nbuckets;
  int64_t *bucket_lo, *bucket_hi;
  MPI_Request *req;
  int *done;                  // (nbuckets) this step: reduced and scaled
  int *idx;                   // scratch for MPI_Testsome
  int next;                   // first bucket not yet started
  int enabled;                // 0: accumulation micro-step, nothing is sent
  int64_t bytes;              // bytes reduced per enabled step
  double span_start;          // when the first bucket of this step started
  // Timings of the last enabled step.
  double last_wait_s;         // blocked in grad_reducer_wait (communication not hidden)
  double last_comm_span_s;    // first bucket start -> last bucket done
  int last_started_early;     // buckets started during backward
  double last_hidden_fraction;// 1 - last_wait_s / ref_s, or -1 without calibration
  // Totals over enabled steps.
  double wait_s;
  int64_t steps;
  // Blocking MPI_Allreduce time of the same bytes (grad_reducer_calibrate), 0 = unknown.
  double ref_s;
} grad_reducer;

// Collective (all ranks). bucket_bytes / first_bucket_bytes <= 0: defaults
// 25 MB / 1 MB.
void grad_reducer_init(grad_reducer *r, dist_ctx *d, float *grads, int64_t n, int64_t bucket_bytes,
                       int64_t first_bucket_bytes);
void grad_reducer_free(grad_reducer *r);
void grad_reducer_begin(grad_reducer *r, int enabled);   // before backward
void grad_reducer_ready(void *r, int64_t ready_upto);    // nn_grad_ready_fn
void grad_reducer_wait(grad_reducer *r);                 // after backward
// Collective: times `reps` blocking MPI_Allreduce calls of the same size on a
// scratch buffer (min over reps) into r->ref_s, the reference for the hidden
// fraction: hidden = 1 - wait / ref_s, clamped to [0, 1].
void grad_reducer_calibrate(grad_reducer *r, int reps);
// Hidden fraction over all steps so far (-1 without calibration).
double grad_reducer_hidden_fraction(const grad_reducer *r);

// Averages a float buffer across ranks (BN running statistics, metrics).
void dist_allreduce_mean(dist_ctx *d, float *buf, int64_t n);
void dist_allreduce_sum_f32(dist_ctx *d, float *buf, int64_t n);
void dist_allreduce_sum_i64(dist_ctx *d, int64_t *buf, int64_t n);
void dist_allreduce_sum_f64(dist_ctx *d, double *buf, int64_t n);
void dist_allreduce_max_f64(dist_ctx *d, double *buf, int64_t n);
#endif
