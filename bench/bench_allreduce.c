// Plain MPI_Allreduce of N MB against the bucketed grad_reducer of the same
// size (middle buckets <= 25 MB, first and last 1 MB), on any number of ranks.
//   mpirun -np 2 build/bench/bench_allreduce [MB=100] [reps=5]
// Prints, per variant, the best and median time over reps and the algorithm
// bandwidth (bytes reduced / time), and the ratio bucketed / plain.
// Variants: "plain" one in-place MPI_Allreduce; "bucketed" begin, one ready
// callback covering everything, wait; "bucketed-64" the ready prefix grows in
// 64 steps (as during backward, each callback polls MPI) with no compute.
// Then "overlap": the same 64 steps with a simulated backward (a busy loop
// of about 2x the plain all-reduce time spread over the 64 gaps); it reports
// the time still blocked in grad_reducer_wait and the hidden fraction
// 1 - wait / plain all-reduce time.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/opts.h"
#include "core/timer.h"
#include "dist/dist.h"

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct { double best, median; } stat2;

static stat2 summarize(double *t, int reps) {
  qsort(t, (size_t)reps, sizeof *t, cmp_d);
  stat2 s = {t[0], t[reps / 2]};
  return s;
}

typedef struct {
  double mb;
  int reps;
} args_t;
static const dp_opt arg_list[] = {
    DP_OPT_F(args_t, "mb", DP_OPT_DOUBLE, mb, 0, 8000, DP_OPT_LO_OPEN | DP_OPT_POS, "buffer size in MB (first positional)"),
    DP_OPT_I(args_t, "reps", DP_OPT_INT, reps, 1, 100000, DP_OPT_POS, "repetitions (second positional)"),
};
static const dp_opts arg_table = {"bench_allreduce", arg_list, 2,
                                  "usage: mpirun -np N bench_allreduce [MB] [REPS]   (or --mb MB --reps R)\n", 0};

int main(int argc, char **argv) {
  dist_ctx d;
  dist_init(&d, &argc, &argv);
  args_t a = {100.0, 5};
  int prc = dp_opts_parse(&arg_table, &a, argc, argv);
  if (prc) {
    dist_finalize(&d);
    return prc > 0 ? 0 : 2;
  }
  double mb = a.mb;
  int reps = a.reps;
  int64_t n = (int64_t)(mb * 1e6 / 4);
  if (n > 0x7fffffff) DP_FATAL("bench arguments", "use at most 8000 MB", "%lld floats", (long long)n);
  float *buf = dp_aligned_alloc(64, (size_t)n * 4, "bench buffer");
  for (int64_t i = 0; i < n; i++) buf[i] = 1.0f;
  double *t = dp_calloc((size_t)reps, sizeof(double), "bench times");
  stat2 res[3];
  const char *names[3] = {"plain MPI_Allreduce", "bucketed (1 ready call)", "bucketed (64 ready calls)"};
  grad_reducer r;
  grad_reducer_init(&r, &d, buf, n, 0, 0);

  for (int v = 0; v < 3; v++) {
    for (int k = -1; k < reps; k++) {   // k = -1: warm-up
      MPI_CHECK(MPI_Barrier(d.comm), "bench barrier");
      double t0 = dp_now();
      if (v == 0) {
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, d.comm), "plain all-reduce");
        // The reducer averages; give the plain path the same scaling pass.
        float s = 1.0f / (float)d.world;
        for (int64_t i = 0; i < n; i++) buf[i] *= s;
      } else {
        grad_reducer_begin(&r, 1);
        int calls = v == 1 ? 1 : 64;
        for (int c = 1; c <= calls; c++) grad_reducer_ready(&r, n * c / calls);
        grad_reducer_wait(&r);
      }
      double dt = dp_now() - t0;
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, d.comm), "bench max time");
      if (k >= 0) t[k] = dt;
    }
    res[v] = summarize(t, reps);
  }
  if (d.rank == 0) {
    printf("all-reduce of %.1f MB (%lld floats) on %d rank(s), %d rep(s), %d bucket(s) (first and last 1 MB, middle <= 25 MB)\n",
           (double)n * 4 / 1e6, (long long)n, d.world, reps, r.nbuckets);
    for (int v = 0; v < 3; v++)
      printf("%-28s best %8.2f ms (%6.2f GB/s)  median %8.2f ms (%6.2f GB/s)\n", names[v], res[v].best * 1e3,
             (double)n * 4 / res[v].best / 1e9, res[v].median * 1e3, (double)n * 4 / res[v].median / 1e9);
    printf("ratio bucketed/plain (median throughput): %.3f (1 ready call), %.3f (64 ready calls)\n",
           res[0].median / res[1].median, res[0].median / res[2].median);
  }
  // Simulated backward: ~2x the plain time of compute, in 64 slices.
  double slice = 2.0 * res[0].median / 64;
  double *w = dp_calloc((size_t)reps, sizeof(double), "bench times");
  volatile double sink = 0;
  for (int k = -1; k < reps; k++) {
    MPI_CHECK(MPI_Barrier(d.comm), "bench barrier");
    grad_reducer_begin(&r, 1);
    for (int c = 1; c <= 64; c++) {
      double t0 = dp_now();
      while (dp_now() - t0 < slice) sink += 1e-9;
      grad_reducer_ready(&r, n * c / 64);
    }
    grad_reducer_wait(&r);
    double dt = r.last_wait_s;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, d.comm), "bench max time");
    if (k >= 0) w[k] = dt;
  }
  stat2 ws = summarize(w, reps);
  if (d.rank == 0)
    printf("overlap (64 slices of %.2f ms compute): wait after backward median %.2f ms -> hidden fraction %.2f\n",
           slice * 1e3, ws.median * 1e3, 1.0 - ws.median / res[0].median > 0 ? 1.0 - ws.median / res[0].median : 0.0);
  free(w);
  grad_reducer_free(&r);
  free(buf);
  free(t);
  dist_finalize(&d);
  return 0;
}
