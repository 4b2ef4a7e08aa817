// Shard read throughput: pread at H5Dget_offset (the loader's path) against
// H5Dread of a hyperslab (the fallback), random 50-170 KB records from one
// contiguous shard (default 200 MB), 1 and 2 threads, page cache warm.
// usage: bench_shard_read [--mb 200] [--dir /tmp] [--reps 3]
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/opts.h"
#include "core/rng.h"
#include "input/shard.h"

typedef struct {
  shard *s;
  const int64_t *order;
  int64_t n, bytes;
  int bad;
} job;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *run(void *p) {
  job *j = p;
  uint8_t *buf = malloc(200 << 10);
  dp_err err;
  for (int64_t k = 0; k < j->n; k++) {
    int64_t r = shard_read_record(j->s, j->order[k], buf, 200 << 10, &err);
    if (r < 0) j->bad++;
    else j->bytes += r;
  }
  free(buf);
  return NULL;
}

static double measure(shard *s, const int64_t *order, int64_t n, int threads, int reps) {
  double best = 0;
  for (int rep = 0; rep < reps; rep++) {
    pthread_t th[8];
    job jobs[8];
    double t0 = now();
    for (int t = 0; t < threads; t++) {
      jobs[t] = (job){s, order + t * (n / threads), n / threads, 0, 0};
      pthread_create(&th[t], NULL, run, &jobs[t]);
    }
    int64_t bytes = 0;
    for (int t = 0; t < threads; t++) {
      pthread_join(th[t], NULL);
      bytes += jobs[t].bytes;
      if (jobs[t].bad) fprintf(stderr, "read errors: %d\n", jobs[t].bad);
    }
    double mbs = (double)bytes / 1e6 / (now() - t0);
    if (mbs > best) best = mbs;
  }
  return best;
}

typedef struct {
  int64_t mb;
  int reps;
  char dir[900];
} args_t;
static const dp_opt arg_list[] = {
    DP_OPT_I(args_t, "mb", DP_OPT_I64, mb, 1, 1 << 20, 0, "dataset size in MB"),
    DP_OPT_I(args_t, "reps", DP_OPT_INT, reps, 1, 10000, 0, "repetitions"),
    DP_OPT_S(args_t, "dir", dir, 0, "scratch directory"),
};
static const dp_opts arg_table = {"bench_shard_read", arg_list, 3,
                                  "usage: bench_shard_read [--mb 200] [--reps 3] [--dir /tmp]\n", 0};

int main(int argc, char **argv) {
  args_t a = {200, 3, "/tmp"};
  int prc = dp_opts_parse(&arg_table, &a, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  int64_t mb = a.mb;
  int reps = a.reps;
  const char *dir = a.dir;
  char path[1024];
  snprintf(path, sizeof path, "%s/bench_shard_read_%d.h5", dir, (int)getpid());
  const char *names[1] = {"x"};
  shard_writer_cfg cfg = {SHARD_CODEC_JPEG, 1, names, 0, 0, 0, NULL};
  dp_err err;
  shard_writer *w = shard_writer_create(path, &cfg, &err);
  if (!w) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  dp_rng r = dp_rng_stream(42, 0);
  uint8_t *rec = malloc(170 << 10);
  for (int64_t k = 0; k < (170 << 10); k++) rec[k] = (uint8_t)dp_rng_u32(&r);
  int64_t n = 0;
  while (shard_writer_bytes(w) < mb * 1000000) {
    int64_t len = (50 << 10) + (int64_t)dp_rng_below(&r, 120 << 10);
    rec[0] = (uint8_t)n;
    shard_writer_add(w, rec, len, 0, n++, NULL, &err);
  }
  if (shard_writer_close(w, &err) != 0) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  shard *s = shard_open(path, &err);
  if (!s) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  int64_t *order = malloc((size_t)n * sizeof(int64_t));
  dp_rng_permutation(&r, order, n);
  printf("shard: %lld records, %.1f MB, HDF5 thread-safe: %s\n", (long long)n, (double)s->blob_size / 1e6,
         shard_h5_threadsafe() ? "yes" : "no");
  measure(s, order, n, 1, 1);   // warm the page cache
  double p1 = measure(s, order, n, 1, reps), p2 = measure(s, order, n, 2, reps);
  shard_force_h5dread(s, &err);
  double h1 = measure(s, order, n, 1, reps), h2 = measure(s, order, n, 2, reps);
  printf("%-22s %10s %10s\n", "path", "1 thread", "2 threads");
  printf("%-22s %7.0f MB/s %7.0f MB/s\n", "pread (H5Dget_offset)", p1, p2);
  printf("%-22s %7.0f MB/s %7.0f MB/s\n", "H5Dread hyperslab", h1, h2);
  printf("ratio pread / H5Dread: %.2fx (1 thread), %.2fx (2 threads)\n", p1 / h1, p2 / h2);
  shard_close(s);
  remove(path);
  free(order);
  free(rec);
  return 0;
}
