// hwloc placement of CPU ranks: each rank gets its share of the node's cores
// (a package per rank where the node has enough), threads are sized to that
// share, and rank 0 prints every rank's binding in rank order. Rules in dist.h.
//
// Which PUs the node offers: hwloc's allowed cpuset (cgroups: containers,
// Slurm ConstrainCores), not the launcher's per-process binding, because
// mpirun binds to a single core by default, which would leave a one-rank run
// or a one-rank-per-socket run with one core. The exception is srun with an
// explicit --cpu-bind (SLURM_CPU_BIND_TYPE set, not "none"): then each rank
// keeps the cores Slurm gave it.
#include <hwloc.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "dist/dist.h"

#define HWLOC_CHECK(call, what)                                                        \
  do {                                                                                 \
    if ((call) < 0)                                                                    \
      dp_fatal_at(__FILE__, __LINE__, what, "set DPTRAIN_NO_BIND=1 to skip binding",   \
                  "%s failed: %s", #call, dp_errno_str());                             \
  } while (0)

#define LINE_MAX_CHARS 768

static int env_pos_int(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) return 0;
  char *end = NULL;
  long x = strtol(v, &end, 10);
  return (end && *end == 0 && x > 0 && x < 1 << 20) ? (int)x : 0;
}

static int env_is(const char *name, const char *val) {
  const char *v = getenv(name);
  return v && !strcmp(v, val);
}

// Objects of `type` whose cpuset intersects `within`, in logical order.
static int objs_within(hwloc_topology_t topo, hwloc_obj_type_t type, hwloc_const_cpuset_t within,
                       hwloc_obj_t *out, int cap) {
  int n = hwloc_get_nbobjs_by_type(topo, type), k = 0;
  for (int i = 0; i < n; i++) {
    hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, (unsigned)i);
    if (o && o->cpuset && hwloc_bitmap_intersects(o->cpuset, within)) {
      if (out && k < cap) out[k] = o;
      k++;
    }
  }
  return k;
}

// Cores (or PUs on topologies without core objects) within `set`.
static hwloc_obj_type_t core_type(hwloc_topology_t topo) {
  return hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
}

// This rank's share of `node` (see dist.h): a range of packages, or a range
// of cores, or one core when there are fewer cores than ranks.
static void pick_share(hwloc_topology_t topo, hwloc_const_cpuset_t node, int r, int L,
                       hwloc_cpuset_t out, int *oversub) {
  hwloc_bitmap_zero(out);
  int P = objs_within(topo, HWLOC_OBJ_PACKAGE, node, NULL, 0);
  hwloc_obj_type_t ct = core_type(topo);
  int C = objs_within(topo, ct, node, NULL, 0);
  if (P >= L && P > 0) {
    hwloc_obj_t *pk = dp_calloc((size_t)P, sizeof *pk, "binding");
    objs_within(topo, HWLOC_OBJ_PACKAGE, node, pk, P);
    for (int i = (int)((int64_t)r * P / L); i < (int)((int64_t)(r + 1) * P / L); i++)
      hwloc_bitmap_or(out, out, pk[i]->cpuset);
    free(pk);
  } else if (C > 0) {
    hwloc_obj_t *co = dp_calloc((size_t)C, sizeof *co, "binding");
    objs_within(topo, ct, node, co, C);
    if (C >= L) {
      for (int i = (int)((int64_t)r * C / L); i < (int)((int64_t)(r + 1) * C / L); i++)
        hwloc_bitmap_or(out, out, co[i]->cpuset);
    } else {
      hwloc_bitmap_or(out, out, co[r % C]->cpuset);
      *oversub = 1;
    }
    free(co);
  }
  hwloc_bitmap_and(out, out, node);
  if (hwloc_bitmap_iszero(out)) hwloc_bitmap_copy(out, node);   // nothing sensible: all of it
}

// node = union of every local rank's `own` set (Slurm gave each its cores).
static void node_union(dist_ctx *d, hwloc_const_cpuset_t own, hwloc_cpuset_t node) {
  enum { W = 1024 };
  char mine[W];
  memset(mine, 0, sizeof mine);
  hwloc_bitmap_list_snprintf(mine, sizeof mine, own);
  char *all = dp_calloc((size_t)d->local_world, W, "binding");
  MPI_CHECK(MPI_Allgather(mine, W, MPI_CHAR, all, W, MPI_CHAR, d->local_comm), "exchanging core sets");
  hwloc_bitmap_t tmp = hwloc_bitmap_alloc();
  PTR_CHECK(tmp, "hwloc bitmap");
  hwloc_bitmap_zero(node);
  for (int i = 0; i < d->local_world; i++) {
    all[(size_t)i * W + W - 1] = 0;
    if (hwloc_bitmap_list_sscanf(tmp, all + (size_t)i * W) == 0) hwloc_bitmap_or(node, node, tmp);
  }
  hwloc_bitmap_free(tmp);
  free(all);
}

// Gathers one line per rank to rank 0, which prints them in rank order.
static void print_bindings(dist_ctx *d, const char *line) {
  char mine[LINE_MAX_CHARS];
  memset(mine, 0, sizeof mine);
  memcpy(mine, line, strnlen(line, sizeof mine - 1));
  char *all = NULL;
  if (d->rank == 0) all = dp_calloc((size_t)d->world, LINE_MAX_CHARS, "binding report");
  MPI_CHECK(MPI_Gather(mine, LINE_MAX_CHARS, MPI_CHAR, all, LINE_MAX_CHARS, MPI_CHAR, 0, d->comm),
            "gathering the binding report");
  if (d->rank == 0) {
    for (int i = 0; i < d->world; i++) LOG_INFO("%s", all + (size_t)i * LINE_MAX_CHARS);
    free(all);
  }
}

void dist_bind(dist_ctx *d, int threads_req, int loader_req) {
  hwloc_topology_t topo;
  HWLOC_CHECK(hwloc_topology_init(&topo), "initialising hwloc");
  HWLOC_CHECK(hwloc_topology_load(topo), "loading the hardware topology");
  hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(topo);
  hwloc_cpuset_t own = hwloc_bitmap_alloc(), node = hwloc_bitmap_alloc(), set = hwloc_bitmap_alloc();
  PTR_CHECK(own, "hwloc bitmap");
  PTR_CHECK(node, "hwloc bitmap");
  PTR_CHECK(set, "hwloc bitmap");
  if (hwloc_get_cpubind(topo, own, HWLOC_CPUBIND_PROCESS) < 0) hwloc_bitmap_copy(own, allowed);
  hwloc_bitmap_and(own, own, allowed);
  if (hwloc_bitmap_iszero(own)) hwloc_bitmap_copy(own, allowed);

  const char *sb = getenv("SLURM_CPU_BIND_TYPE");
  int keep_own = sb && *sb && strncmp(sb, "none", 4) != 0;
  int no_bind = env_is("DPTRAIN_NO_BIND", "1");
  int L = d->local_world > 0 ? d->local_world : 1, r = d->local_rank;
  int oversub = 0;
  hwloc_bitmap_copy(node, allowed);
  if (keep_own) node_union(d, own, node);
  hwloc_obj_type_t ct = core_type(topo);
  int node_cores = objs_within(topo, ct, node, NULL, 0);
  int node_pus = hwloc_bitmap_weight(node);

  if (keep_own) hwloc_bitmap_copy(set, own);
  else pick_share(topo, node, r, L, set, &oversub);
  if (!keep_own && node_cores < L) oversub = 1;

  d->bound = 0;
  if (no_bind) {
    hwloc_bitmap_copy(set, own);
    d->cores = node_cores / L > 0 ? node_cores / L : 1;
  } else {
    if (hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) < 0)
      LOG_WARN("hwloc_set_cpubind failed (%s): running unbound", dp_errno_str());
    else
      d->bound = 1;
    d->cores = objs_within(topo, ct, set, NULL, 0);
    if (d->cores < 1) d->cores = 1;
  }

  // NUMA: nearest node = the first one under our cores; bind memory there
  // when there is a choice and our cores sit in a single node.
  int nnuma_machine = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  hwloc_obj_t numa[64];
  int nnuma = objs_within(topo, HWLOC_OBJ_NUMANODE, set, numa, 64);
  d->numa_node = nnuma > 0 ? (int)numa[0]->os_index : -1;
  if (!no_bind && nnuma_machine > 1 && nnuma == 1) {
    if (hwloc_set_membind(topo, numa[0]->nodeset, HWLOC_MEMBIND_BIND,
                          HWLOC_MEMBIND_PROCESS | HWLOC_MEMBIND_BYNODESET) < 0)
      LOG_WARN("binding memory to NUMA node %d failed (%s): first-touch placement instead",
               d->numa_node, dp_errno_str());
  }

  // Threads.
  int env_threads = env_pos_int("OMP_NUM_THREADS");
  d->threads = threads_req > 0 ? threads_req : (env_threads > 0 ? env_threads : d->cores);
  d->loader_threads = loader_req > 0 ? loader_req : (d->cores / 2 > 1 ? d->cores / 2 : 1);
  omp_set_num_threads(d->threads);

  // Oversubscription: more ranks than cores, or more compute threads on the
  // node than PUs, or more threads than this rank's PUs.
  int node_threads = d->threads;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &node_threads, 1, MPI_INT, MPI_SUM, d->local_comm),
            "summing threads on the node");
  int set_pus = hwloc_bitmap_weight(set);
  if (node_threads > node_pus) oversub = 1;
  if (d->threads > set_pus && set_pus > 0) oversub = 1;
  d->oversubscribed = oversub;
  // Once per node, unless this rank's own threads exceed its PUs.
  if (oversub && (d->local_rank == 0 || d->threads > set_pus))
    LOG_WARN("oversubscribed: %d rank(s) x %d thread(s) on this node's %d core(s) / %d PU(s)%s; "
             "expect slow steps (use fewer ranks per node or --threads)",
             L, d->threads, node_cores, node_pus, d->threads > set_pus ? ", threads exceed this rank's PUs" : "");

  hwloc_bitmap_list_snprintf(d->cpuset, sizeof d->cpuset, set);
  char line[LINE_MAX_CHARS];
  snprintf(line, sizeof line, "rank %d/%d host %s local %d/%d: PUs %s (%d core%s) NUMA %d, %d thread%s, %d loader%s%s",
           d->rank, d->world, d->host, d->local_rank, L, d->cpuset, d->cores, d->cores == 1 ? "" : "s",
           d->numa_node, d->threads, d->threads == 1 ? "" : "s", d->loader_threads,
           d->loader_threads == 1 ? "" : "s",
           no_bind ? " [DPTRAIN_NO_BIND: not bound]" : (keep_own ? " [Slurm --cpu-bind kept]" : (d->bound ? "" : " [unbound]")));
  print_bindings(d, line);

  hwloc_bitmap_free(own);
  hwloc_bitmap_free(node);
  hwloc_bitmap_free(set);
  hwloc_topology_destroy(topo);
}

int dist_share_for_topology(const char *synthetic, int local_rank, int local_world, char *out, size_t n) {
  hwloc_topology_t topo;
  HWLOC_CHECK(hwloc_topology_init(&topo), "initialising hwloc");
  HWLOC_CHECK(hwloc_topology_set_synthetic(topo, synthetic), "parsing a synthetic topology");
  HWLOC_CHECK(hwloc_topology_load(topo), "loading a synthetic topology");
  hwloc_cpuset_t set = hwloc_bitmap_alloc();
  PTR_CHECK(set, "hwloc bitmap");
  int oversub = 0;
  pick_share(topo, hwloc_topology_get_allowed_cpuset(topo), local_rank, local_world, set, &oversub);
  hwloc_bitmap_list_snprintf(out, n, set);
  hwloc_bitmap_free(set);
  hwloc_topology_destroy(topo);
  return oversub;
}
