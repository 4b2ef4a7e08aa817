// MPI start-up: identity, local rank, node count, the fatal hook that aborts
// the whole job, and the launch check (dist_launch_verdict).
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

// The launch environment, read before MPI_Init (an MPI library may set
// variables of its own during start-up).
void dist_launch_env_read(dist_launch_env *e) {
  memset(e, 0, sizeof *e);
  e->slurm_ntasks = env_long("SLURM_NTASKS");
  if (e->slurm_ntasks < 0) e->slurm_ntasks = env_long("SLURM_NPROCS");
  e->step_tasks = env_long("SLURM_STEP_NUM_TASKS");
  // A task that srun started has SLURM_PROCID and a step id; a process in
  // an salloc shell or a batch script (before any srun) does not.
  e->srun_task = getenv("SLURM_PROCID") && (getenv("SLURM_STEP_ID") || getenv("SLURM_STEPID"));
  e->ompi_size = env_long("OMPI_COMM_WORLD_SIZE");   // set by Open MPI's mpirun/orted for each process
  e->pmi_size = env_long("PMI_SIZE");                // MPICH/Hydra mpiexec (or srun --mpi=pmi2)
  const char *ign = getenv("DPTRAIN_IGNORE_SLURM_NTASKS");
  e->ignore = ign && !strcmp(ign, "1");
}

int dist_launch_verdict(const dist_launch_env *e, int world, char *msg, size_t n) {
  msg[0] = 0;
  if (e->ignore) return DIST_LAUNCH_OK;
  // 1. Started by mpirun (Open MPI): mpirun knows how many it started.
  //    Inside a Slurm allocation any -np up to the allocation is a normal
  //    launch (salloc -n 2 mpirun -np 1 included): no srun advice here.
  if (e->ompi_size > 0) {
    if (world != e->ompi_size) {
      snprintf(msg, n, "mpirun started %ld process(es) (OMPI_COMM_WORLD_SIZE) but they joined an MPI world of "
               "%d: dptrain is linked to a different MPI library than this mpirun (check `which mpirun` and "
               "`ldd dptrain | grep mpi`)", e->ompi_size, world);
      return DIST_LAUNCH_FATAL;
    }
    if (e->slurm_ntasks > 0 && world > e->slurm_ntasks) {
      snprintf(msg, n, "mpirun -np %d inside a Slurm allocation of %ld task(s) (SLURM_NTASKS): the node(s) are "
               "oversubscribed", world, e->slurm_ntasks);
      return DIST_LAUNCH_WARN;
    }
    if (e->slurm_ntasks > 0 && world < e->slurm_ntasks) {
      snprintf(msg, n, "using %d of the allocation's %ld task slot(s) (mpirun -np %d; SLURM_NTASKS=%ld)", world,
               e->slurm_ntasks, world, e->slurm_ntasks);
      return DIST_LAUNCH_INFO;
    }
    return DIST_LAUNCH_OK;
  }
  // 2. A task of an srun step: srun knows how many tasks the step has.
  if (e->srun_task) {
    long want = e->step_tasks > 0 ? e->step_tasks : e->slurm_ntasks;
    if (want <= 0 || world == want) return DIST_LAUNCH_OK;
    if (world == 1)
      snprintf(msg, n, "srun started %ld tasks (SLURM_STEP_NUM_TASKS) but each is an MPI world of 1: srun did not "
               "connect them, so this would be %ld independent 1-rank runs. Launch with `srun --mpi=pmix -n %ld` "
               "(see `srun --mpi=list`; MpiDefault=pmix in slurm.conf makes it the default)", want, want, want);
    else
      snprintf(msg, n, "srun started %ld tasks (SLURM_STEP_NUM_TASKS) but the MPI world has %d ranks: the tasks "
               "were not connected as one job (mpirun inside srun, or a PMIx mismatch between Slurm and MPI?)",
               want, world);
    return DIST_LAUNCH_FATAL;
  }
  // 3. Another launcher (MPICH/Hydra mpiexec).
  if (e->pmi_size > 0) {
    if (world != e->pmi_size) {
      snprintf(msg, n, "the launcher started %ld process(es) (PMI_SIZE) but the MPI world has %d ranks: dptrain "
               "is linked to a different MPI library than this launcher", e->pmi_size, world);
      return DIST_LAUNCH_FATAL;
    }
    return DIST_LAUNCH_OK;
  }
  // 4. No launcher: a singleton, e.g. ./dptrain in an salloc shell. One run
  //    of one rank, which is what was started; say how to use the rest.
  if (e->slurm_ntasks > 1 && world == 1) {
    snprintf(msg, n, "started without srun or mpirun inside a Slurm allocation of %ld tasks (SLURM_NTASKS): "
             "running as 1 rank; use `srun --mpi=pmix -n %ld` or `mpirun -np %ld` for %ld ranks",
             e->slurm_ntasks, e->slurm_ntasks, e->slurm_ntasks, e->slurm_ntasks);
    return DIST_LAUNCH_WARN;
  }
  return DIST_LAUNCH_OK;
}

static void check_launch(const dist_ctx *d, const dist_launch_env *e) {
  char msg[768];
  int v = dist_launch_verdict(e, d->world, msg, sizeof msg);
  // Every rank sees the same environment, so every rank stops here; each one
  // aborts on its own (no rank waits for another).
  if (v == DIST_LAUNCH_FATAL)
    DP_FATAL("checking the launch", "DPTRAIN_IGNORE_SLURM_NTASKS=1 skips this check if the setup is deliberate",
             "%s", msg);
  if (v == DIST_LAUNCH_WARN && d->rank == 0) LOG_WARN("launch: %s", msg);
  if (v == DIST_LAUNCH_INFO && d->rank == 0) LOG_INFO("launch: %s", msg);
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
  dist_launch_env le;
  dist_launch_env_read(&le);
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
  check_launch(d, &le);

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
