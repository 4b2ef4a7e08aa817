// Core utilities: RNG streams reproducible and independent, arena planning,
// JSON writer output parses back (checked with python if present).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/afile.h"
#include "core/arena.h"
#include "core/check.h"
#include "core/json.h"
#include "core/rng.h"
#include "testutil.h"

static void test_rng(void) {
  dp_rng a = dp_rng_stream(42, 3), b = dp_rng_stream(42, 3), c = dp_rng_stream(42, 4);
  int same = 1, diff = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = dp_rng_u64(&a), y = dp_rng_u64(&b), z = dp_rng_u64(&c);
    same &= x == y;
    diff += x != z;
  }
  TU_CHECK(same, "same stream must repeat");
  TU_CHECK(diff > 990, "streams must differ (%d)", diff);
  // Uniform mean/var and normal moments.
  dp_rng r = dp_rng_stream(1, 1);
  double s = 0, s2 = 0, ns = 0, ns2 = 0;
  int n = 200000;
  for (int i = 0; i < n; i++) {
    double u = dp_rng_uniform(&r), z = dp_rng_normal(&r);
    s += u; s2 += u * u; ns += z; ns2 += z * z;
  }
  TU_CHECK(fabs(s / n - 0.5) < 0.01, "uniform mean %f", s / n);
  TU_CHECK(fabs(s2 / n - 1.0 / 3) < 0.01, "uniform E[u^2] %f", s2 / n);
  TU_CHECK(fabs(ns / n) < 0.01 && fabs(ns2 / n - 1) < 0.02, "normal moments %f %f", ns / n, ns2 / n);
  double bs = 0;
  for (int i = 0; i < 20000; i++) bs += dp_rng_beta(&r, 0.4, 0.4);
  TU_CHECK(fabs(bs / 20000 - 0.5) < 0.02, "beta(0.4,0.4) mean %f", bs / 20000);
  int64_t perm[100];
  dp_rng_permutation(&r, perm, 100);
  int seen[100] = {0};
  for (int i = 0; i < 100; i++) seen[perm[i]]++;
  for (int i = 0; i < 100; i++) TU_CHECK(seen[i] == 1, "permutation %d seen %d", i, seen[i]);
}

static void test_arena(void) {
  dp_arena plan;
  dp_arena_init(&plan, 0);
  size_t o1 = dp_arena_reserve(&plan, 10, "a");
  size_t o2 = dp_arena_reserve(&plan, 100, "b");
  TU_CHECK(o1 == 0 && o2 == 64, "offsets %zu %zu", o1, o2);
  dp_arena real;
  dp_arena_init(&real, plan.peak);
  char *p = dp_arena_alloc(&real, 10, "a");
  char *q = dp_arena_alloc(&real, 100, "b");
  TU_CHECK(q - p == 64 && ((uintptr_t)p % 64) == 0, "aligned");
  dp_arena_free(&real);
  // External memory (a CUDA graph's arena is one cudaMalloc): same offsets
  // as the plan, and freeing the arena leaves the block to its owner.
  char *block = dp_aligned_alloc(4096, plan.peak, "external block");
  dp_arena ext;
  dp_arena_init_external(&ext, block, plan.peak);
  char *e1 = dp_arena_alloc(&ext, 10, "a");
  char *e2 = dp_arena_alloc(&ext, 100, "b");
  TU_CHECK(e1 == block && e2 == block + o2, "external offsets %td %td", e1 - block, e2 - block);
  dp_arena_free(&ext);
  TU_CHECK(ext.base == NULL && ext.external == 0, "external arena reset after free");
  block[0] = 1;   // still ours (ASan would flag a use after free)
  free(block);
}

static void test_json(void) {
  char path[] = "/tmp/dp_json_XXXXXX";
  int fd = mkstemp(path);
  TU_CHECK(fd >= 0, "mkstemp");
  FILE *f = fdopen(fd, "w");
  dp_json j;
  dp_json_init(&j, f, 1);
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "name", "quote\" back\\ nl\n");
  dp_json_kv_double(&j, "nan", NAN);
  dp_json_kv_int(&j, "big", 1LL << 40);
  double arr[3] = {1.5, -2, 3e-9};
  dp_json_kv_double_array(&j, "arr", arr, 3);
  dp_json_key(&j, "nested");
  dp_json_begin_array(&j);
  dp_json_begin_object(&j);
  dp_json_kv_bool(&j, "t", 1);
  dp_json_end_object(&j);
  dp_json_begin_object(&j);
  dp_json_end_object(&j);
  dp_json_end_array(&j);
  dp_json_end_object(&j);
  fclose(f);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "python3 -c \"import json,sys; d=json.load(open('%s')); "
           "assert d['big']==2**40 and d['nan'] is None and d['arr'][2]==3e-9 and d['nested'][0]['t'] is True and d['name'].endswith('\\n')\"",
           path);
  int rc = system(cmd);
  TU_CHECK(rc == 0, "JSON written does not parse back as expected (%s)", path);
  if (rc == 0) remove(path);
}

// Atomic files: the final name appears only at commit, with all the bytes;
// an aborted file leaves nothing; a write into a missing directory is an
// error naming the path; the append log never leaves a partial row.
static void test_afile(void) {
  char dir[] = "/tmp/dp_afile_XXXXXX";
  TU_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  char path[256], sub[256];
  snprintf(path, sizeof path, "%s/out.json", dir);
  dp_err e;
  dp_err_clear(&e);
  dp_afile *a = dp_afile_open(path, &e);
  TU_CHECK(a != NULL, "open: %s", e.msg);
  fputs("{\"x\": 1}\n", dp_afile_stream(a));
  TU_CHECK(!tu_file_exists(path), "final name must not exist before commit");
  TU_CHECK(dp_afile_commit(a, &e) == 0, "commit: %s", e.msg);
  FILE *f = fopen(path, "r");
  char buf[64] = {0};
  TU_CHECK(f && fgets(buf, sizeof buf, f) && !strcmp(buf, "{\"x\": 1}\n"), "content after commit '%s'", buf);
  if (f) fclose(f);
  a = dp_afile_open(path, &e);
  fputs("partial", dp_afile_stream(a));
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s", dp_afile_tmp_path(a));
  dp_afile_abort(a);
  TU_CHECK(!tu_file_exists(tmp), "abort must remove the temp file");
  f = fopen(path, "r");
  TU_CHECK(f && fgets(buf, sizeof buf, f) && !strcmp(buf, "{\"x\": 1}\n"), "abort must keep the old file");
  if (f) fclose(f);
  snprintf(sub, sizeof sub, "%s/missing/out.json", dir);
  dp_err_clear(&e);
  TU_CHECK(dp_write_file_atomic(sub, "x", 1, &e) != 0 && strstr(e.msg, "missing/out.json"),
           "a missing directory must be an error naming the path (%s)", e.msg);
  // Full disk: /dev/full makes every write fail; the error names the path.
  if (tu_file_exists("/dev/full")) {
    FILE *full = fopen("/dev/full", "w");
    TU_CHECK(full && fputs("x", full) >= 0 && fflush(full) != 0, "/dev/full must fail on flush");
    if (full) fclose(full);
  }
  dp_alog l;
  snprintf(sub, sizeof sub, "%s/steps.csv", dir);
  TU_CHECK(dp_alog_open(&l, sub, -1, &e) == 0, "alog open: %s", e.msg);
  dp_alog_printf(&l, "a,b\n");
  dp_alog_printf(&l, "1,2\n");
  TU_CHECK(dp_alog_size(&l) == 0, "rows are buffered until flush");
  TU_CHECK(dp_alog_flush(&l, 1, &e) == 0 && dp_alog_size(&l) == 8, "flush writes whole rows");
  int64_t keep = dp_alog_size(&l);
  dp_alog_printf(&l, "3,4\n");
  TU_CHECK(dp_alog_close(&l, &e) == 0, "close");
  TU_CHECK(dp_alog_open(&l, sub, keep, &e) == 0 && dp_alog_size(&l) == keep, "reopen truncates to %lld",
           (long long)keep);
  dp_alog_close(&l, &e);
  TU_CHECK(dp_alog_open(&l, sub, 1000, &e) != 0, "truncating past the end must fail");
  dp_alog_close(&l, &e);
  snprintf(sub, sizeof sub, "%s/a/b/c", dir);
  TU_CHECK(dp_dir_check_writable(sub, &e) == 0, "writable check creates the directory: %s", e.msg);
  TU_CHECK(dp_dir_check_writable("/proc/nonexistent-dir", &e) != 0, "/proc must not be writable");
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
  test_afile();
  test_rng();
  test_arena();
  test_json();
  return tu_finish("test_core");
}
