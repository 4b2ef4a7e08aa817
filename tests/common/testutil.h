// Shared test helpers: failing checks, error metrics, HDF5 fixture reading,
// and the skip convention (exit 77) for tests whose prerequisites are absent.
#ifndef DP_TESTUTIL_H
#define DP_TESTUTIL_H
#include <stdint.h>
#include <stdio.h>

#define TU_SKIP 77
extern int tu_failures;

#define TU_CHECK(cond, ...)                                              \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
      fprintf(stderr, __VA_ARGS__);                                      \
      fputc('\n', stderr);                                               \
      tu_failures++;                                                     \
    }                                                                    \
  } while (0)

// Max |a-b| / (max|b| + tiny): relative to the reference's scale, so tiny
// elements of a large tensor do not dominate.
double tu_rel_err(const float *a, const float *b, int64_t n);
double tu_rel_err_d(const double *a, const double *b, int64_t n);
// Compare and report; returns 1 if ok. Prints name, error and tolerance.
int tu_close(const char *name, const float *got, const float *want, int64_t n, double tol);
int tu_close_d(const char *name, const double *got, const double *want, int64_t n, double tol);
// Exit code for main: prints a summary line.
int tu_finish(const char *test_name);
void tu_skip(const char *why);   // prints and exits 77

// Fixtures written by tests/oracle/*.py into $DP_FIXTURE_DIR (HDF5 files).
const char *tu_fixture_dir(void);
// Reads dataset `name` of `file` as float32; returns malloc'd data, sets *n.
// Returns NULL (and prints) if missing.
float *tu_h5_read_f32(const char *file, const char *name, int64_t *n);
int32_t *tu_h5_read_i32(const char *file, const char *name, int64_t *n);
double tu_h5_read_scalar(const char *file, const char *name);
int tu_file_exists(const char *path);
// Fill with U(-1, 1) from a seeded stream.
void tu_fill_uniform(float *x, int64_t n, uint64_t seed);
#endif
