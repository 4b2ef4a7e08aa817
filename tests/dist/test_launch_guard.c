// The launch check's decision (dist_launch_verdict) on the launches a user
// makes, in both directions: legitimate launches pass (salloc -n 2 mpirun
// -np 1 must not be told to use srun --mpi=pmix), broken ones are fatal with
// the real cause named.
#include <string.h>

#include "dist/dist.h"
#include "testutil.h"

static dist_launch_env env(long ntasks, long step, int srun, long ompi, long pmi) {
  dist_launch_env e = {ntasks, step, srun, ompi, pmi, 0};
  return e;
}

static void expect(const char *what, dist_launch_env e, int world, int verdict, const char *needle,
                   const char *absent) {
  char msg[768];
  int v = dist_launch_verdict(&e, world, msg, sizeof msg);
  TU_CHECK(v == verdict, "%s: verdict %d, want %d (%s)", what, v, verdict, msg);
  if (needle) TU_CHECK(strstr(msg, needle) != NULL, "%s: '%s' lacks '%s'", what, msg, needle);
  if (absent) TU_CHECK(strstr(msg, absent) == NULL, "%s: '%s' must not say '%s'", what, msg, absent);
  printf("%-44s -> %d %s\n", what, v, msg);
}

int main(void) {
  // Legitimate.
  expect("no Slurm, no launcher", env(-1, -1, 0, -1, -1), 1, DIST_LAUNCH_OK, NULL, NULL);
  expect("mpirun -np 2 outside Slurm", env(-1, -1, 0, 2, -1), 2, DIST_LAUNCH_OK, NULL, NULL);
  expect("salloc -n 2 mpirun -np 1", env(2, -1, 0, 1, -1), 1, DIST_LAUNCH_INFO, "1 of the allocation's 2",
         "--mpi=pmix");
  expect("salloc -n 4 mpirun -np 4", env(4, -1, 0, 4, -1), 4, DIST_LAUNCH_OK, NULL, NULL);
  // Multi-node mpirun: orted runs inside an srun step (one task per node),
  // its processes inherit that step's variables; mpirun's own count wins.
  expect("sbatch -N 2 -n 8, mpirun -np 8", env(8, 2, 1, 8, -1), 8, DIST_LAUNCH_OK, NULL, NULL);
  expect("srun --mpi=pmix -n 4", env(4, 4, 1, -1, -1), 4, DIST_LAUNCH_OK, NULL, NULL);
  expect("salloc -n 4; srun -n 2 --mpi=pmix", env(4, 2, 1, -1, -1), 2, DIST_LAUNCH_OK, NULL, NULL);
  expect("mpiexec (hydra) -n 3", env(-1, -1, 0, -1, 3), 3, DIST_LAUNCH_OK, NULL, NULL);
  expect("singleton in salloc -n 2", env(2, -1, 0, -1, -1), 1, DIST_LAUNCH_WARN, "without srun or mpirun", NULL);
  // Broken.
  expect("srun -n 4 without --mpi=pmix", env(4, 4, 1, -1, -1), 1, DIST_LAUNCH_FATAL, "--mpi=pmix", NULL);
  expect("srun -n 4, world of 2", env(4, 4, 1, -1, -1), 2, DIST_LAUNCH_FATAL, "not connected", "--mpi=pmix -n");
  expect("mpirun of another MPI", env(-1, -1, 0, 2, -1), 1, DIST_LAUNCH_FATAL, "different MPI library", "srun");
  expect("salloc -n 2 mpirun -np 4 (oversubscribed)", env(2, -1, 0, 4, -1), 4, DIST_LAUNCH_WARN, "oversubscribed",
         "--mpi=pmix");
  dist_launch_env ig = env(4, 4, 1, -1, -1);
  ig.ignore = 1;
  expect("DPTRAIN_IGNORE_SLURM_NTASKS=1", ig, 1, DIST_LAUNCH_OK, NULL, NULL);
  return tu_finish("test_launch_guard");
}
