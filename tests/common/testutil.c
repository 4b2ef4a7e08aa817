#include "testutil.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "core/rng.h"

int tu_failures = 0;

double tu_rel_err(const float *a, const float *b, int64_t n) {
  double scale = 0, err = 0;
  for (int64_t i = 0; i < n; i++) {
    double s = fabs((double)b[i]);
    if (s > scale) scale = s;
  }
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d == d)) return INFINITY;  // NaN
    if (d > err) err = d;
  }
  return err / (scale + 1e-12);
}
double tu_rel_err_d(const double *a, const double *b, int64_t n) {
  double scale = 0, err = 0;
  for (int64_t i = 0; i < n; i++)
    if (fabs(b[i]) > scale) scale = fabs(b[i]);
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (!(d == d)) return INFINITY;
    if (d > err) err = d;
  }
  return err / (scale + 1e-300);
}
int tu_close(const char *name, const float *got, const float *want, int64_t n, double tol) {
  double e = tu_rel_err(got, want, n);
  int ok = e <= tol;
  printf("%-4s %-48s rel_err %.3e (tol %.1e, n=%lld)\n", ok ? "ok" : "FAIL", name, e, tol, (long long)n);
  if (!ok) tu_failures++;
  return ok;
}
int tu_close_d(const char *name, const double *got, const double *want, int64_t n, double tol) {
  double e = tu_rel_err_d(got, want, n);
  int ok = e <= tol;
  printf("%-4s %-48s rel_err %.3e (tol %.1e, n=%lld)\n", ok ? "ok" : "FAIL", name, e, tol, (long long)n);
  if (!ok) tu_failures++;
  return ok;
}
int tu_finish(const char *test_name) {
  if (tu_failures) {
    printf("%s: %d check(s) FAILED\n", test_name, tu_failures);
    return 1;
  }
  printf("%s: all checks passed\n", test_name);
  return 0;
}
void tu_skip(const char *why) {
  printf("SKIP: %s\n", why);
  fflush(stdout);
  exit(TU_SKIP);
}
const char *tu_fixture_dir(void) {
  const char *d = getenv("DP_FIXTURE_DIR");
  return d ? d : "fixtures";
}
int tu_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void *read_ds(const char *file, const char *name, hid_t memtype, size_t elem, int64_t *n) {
  *n = 0;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // we print our own message
  {
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
      fprintf(stderr, "fixture: cannot open %s\n", file);
      return NULL;
    }
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) {
      fprintf(stderr, "fixture: %s has no dataset %s\n", file, name);
      H5Fclose(f);
      return NULL;
    }
    hid_t s = H5Dget_space(d);
    hssize_t cnt = H5Sget_simple_extent_npoints(s);
    void *buf = malloc((size_t)(cnt > 0 ? cnt : 1) * elem);
    if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
      fprintf(stderr, "fixture: reading %s:%s failed\n", file, name);
      free(buf);
      buf = NULL;
    }
    *n = cnt;
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    return buf;
  }
}
float *tu_h5_read_f32(const char *file, const char *name, int64_t *n) {
  return read_ds(file, name, H5T_NATIVE_FLOAT, 4, n);
}
int32_t *tu_h5_read_i32(const char *file, const char *name, int64_t *n) {
  return read_ds(file, name, H5T_NATIVE_INT32, 4, n);
}
double tu_h5_read_scalar(const char *file, const char *name) {
  int64_t n;
  double *v = read_ds(file, name, H5T_NATIVE_DOUBLE, 8, &n);
  double r = (v && n > 0) ? v[0] : NAN;
  free(v);
  return r;
}
void tu_fill_uniform(float *x, int64_t n, uint64_t seed) {
  dp_rng r = dp_rng_stream(seed, 7);
  for (int64_t i = 0; i < n; i++) x[i] = 2.0f * dp_rng_uniformf(&r) - 1.0f;
}
