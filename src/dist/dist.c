// MPI start-up: identity, local rank, node count, the fatal hook that aborts
// the whole job, and the SLURM_NTASKS launch check.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "dist/dist.h"
#include "dist/watchdog.h"

// A fatal error on one rank must end every rank: without this the others
// would block forever in their next collective.
static void abort_hook(int code) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

static long env_long(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) return -1;
  char *end = NULL;
  long x = strtol(v, &end, 10);
  return (end && *end == 0 && x > 0) ? x : -1;
}

static void check_slurm_ntasks(const dist_ctx *d) {
  const char *ign = getenv("DPTRAIN_IGNORE_SLURM_NTASKS");
  if (ign && !strcmp(ign, "1")) return;
  const char *var = "SLURM_NTASKS";
  long nt = env_long(var);
  if (nt < 0) {
    var = "SLURM_NPROCS";
    nt = env_long(var);
  }
  if (nt < 0 || nt == d->world) return;
  // Every rank sees the same environment, so every rank stops here; each one
  // aborts on its own (no rank waits for another).
  DP_FATAL("checking the launch", "launch with `srun --mpi=pmix -n N` (or mpirun -np N), or set "
           "DPTRAIN_IGNORE_SLURM_NTASKS=1 if the mismatch is deliberate",
           "%s=%ld but the MPI world size is %d: this looks like srun without --mpi=pmix (or a "
           "broken PMIx), which starts %ld independent %d-rank runs instead of one %ld-rank job",
           var, nt, d->world, nt, d->world, nt);
}

void dist_init(dist_ctx *d, int *argc, char ***argv) {
  memset(d, 0, sizeof *d);
  d->numa_node = -1;
  // Open MPI 4.1's libnbc picks a binomial reduce + broadcast for every
  // in-place MPI_Iallreduce (our buckets are in place): the root reduces the
  // whole bucket alone and the data crosses twice. Reduce-scatter + allgather
  // splits the work; measured about 2x faster for 25 MB buckets on 2 ranks
  // here. Only a default: a value the user set wins. Other MPIs ignore it.
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0);
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "starting MPI");
  dp_set_fatal_hook(abort_hook);
  // Errors come back to MPI_CHECK, which prints where and why, then aborts.
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "setting the MPI error handler");
  d->comm = MPI_COMM_WORLD;
  MPI_CHECK(MPI_Comm_rank(d->comm, &d->rank), "querying the rank");
  MPI_CHECK(MPI_Comm_size(d->comm, &d->world), "querying the world size");
  if (gethostname(d->host, sizeof d->host - 1) != 0) snprintf(d->host, sizeof d->host, "unknown");
  d->host[sizeof d->host - 1] = 0;
  dp_set_identity(d->rank, d->host);
  if (provided < MPI_THREAD_FUNNELED)
    DP_FATAL("starting MPI", "use an MPI library with thread support",
             "MPI provides thread level %d, dptrain needs MPI_THREAD_FUNNELED", provided);
  check_slurm_ntasks(d);

  MPI_CHECK(MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &d->local_comm),
            "finding the ranks on this node");
  MPI_CHECK(MPI_Comm_rank(d->local_comm, &d->local_rank), "querying the local rank");
  MPI_CHECK(MPI_Comm_size(d->local_comm, &d->local_world), "querying the local world size");
  int leader = d->local_rank == 0;
  MPI_CHECK(MPI_Allreduce(&leader, &d->node_count, 1, MPI_INT, MPI_SUM, d->comm), "counting nodes");
  if (d->rank == 0)
    LOG_INFO("MPI: %d rank(s) on %d node(s), %d on this node", d->world, d->node_count, d->local_world);
}

void dist_finalize(dist_ctx *d) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (fin) return;
  if (d->local_comm != MPI_COMM_NULL && d->local_comm != 0) MPI_Comm_free(&d->local_comm);
  dp_set_fatal_hook(NULL);
  MPI_CHECK(MPI_Finalize(), "finalizing MPI");
}

// Chunks below INT_MAX elements because MPI counts are int.
#define DIST_CHUNK ((int64_t)1 << 30)

// Non-blocking plus a watchdog wait (dist/watchdog.h), so a rank that never
// arrives stops the job with its name instead of hanging it.
static void allreduce_chunks(dist_ctx *d, void *buf, int64_t n, size_t elem, MPI_Datatype t, MPI_Op op,
                             const char *what) {
  for (int64_t o = 0; o < n; o += DIST_CHUNK) {
    int64_t c = n - o < DIST_CHUNK ? n - o : DIST_CHUNK;
    MPI_Request rq;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + (size_t)o * elem, (int)c, t, op, d->comm, &rq), what);
    dist_wait_all(d, 1, &rq, what);
  }
}

void dist_allreduce_sum_f32(dist_ctx *d, float *buf, int64_t n) {
  if (d->world > 1) allreduce_chunks(d, buf, n, sizeof(float), MPI_FLOAT, MPI_SUM, "summing floats");
}
void dist_allreduce_mean(dist_ctx *d, float *buf, int64_t n) {
  if (d->world <= 1) return;
  allreduce_chunks(d, buf, n, sizeof(float), MPI_FLOAT, MPI_SUM, "averaging across ranks");
  float s = 1.0f / (float)d->world;
  for (int64_t i = 0; i < n; i++) buf[i] *= s;
}
void dist_allreduce_sum_i64(dist_ctx *d, int64_t *buf, int64_t n) {
  if (d->world > 1) allreduce_chunks(d, buf, n, sizeof(int64_t), MPI_INT64_T, MPI_SUM, "summing counts");
}
void dist_allreduce_sum_f64(dist_ctx *d, double *buf, int64_t n) {
  if (d->world > 1) allreduce_chunks(d, buf, n, sizeof(double), MPI_DOUBLE, MPI_SUM, "summing doubles");
}
void dist_allreduce_max_f64(dist_ctx *d, double *buf, int64_t n) {
  if (d->world > 1) allreduce_chunks(d, buf, n, sizeof(double), MPI_DOUBLE, MPI_MAX, "max over ranks");
}
