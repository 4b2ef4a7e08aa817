// Failure paths under mpirun, checked by expect_fail.sh:
//   fatal   : rank 1 hits DP_FATAL while rank 0 sits in a barrier; the fatal
//             hook must MPI_Abort the job (non-zero exit, quickly, no hang).
//   ntasks  : start-up only; run with SLURM_NTASKS different from the world
//             size, dist_init must abort naming the launch problem.
#include <string.h>
#include <unistd.h>

#include "dist/dist.h"

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "fatal";
  dist_ctx d;
  dist_init(&d, &argc, &argv);
  if (!strcmp(mode, "fatal")) {
    if (d.rank == 1) {
      usleep(200000);
      DP_FATAL("injected failure", "this is a test", "rank %d fails on purpose", d.rank);
    }
    // Would block forever if rank 1 just exited.
    MPI_CHECK(MPI_Barrier(d.comm), "waiting for the failing rank");
  }
  dist_finalize(&d);
  return 0;
}
