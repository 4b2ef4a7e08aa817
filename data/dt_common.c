#include "dt_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const dt_split_names[DT_NSPLITS] = {"train", "val", "test"};

const char *dt_opt(int argc, char **argv, int *i, const char *name) {
  if (strcmp(argv[*i], name) != 0) return NULL;
  if (*i + 1 >= argc) DP_FATAL("parsing options", "see --help", "%s needs a value", name);
  *i += 1;
  return argv[*i];
}

int64_t dt_parse_i64(const char *s, const char *opt) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end) DP_FATAL("parsing options", "expects an integer", "%s '%s'", opt, s);
  return v;
}

double dt_parse_f64(const char *s, const char *opt) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end) DP_FATAL("parsing options", "expects a number", "%s '%s'", opt, s);
  return v;
}

int dt_mkdir_p(const char *dir) {
  char buf[1024];
  if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
  return 0;
}

unsigned long dt_jpeg_encode(tjhandle tj, const uint8_t *px, int w, int h, int c, int quality,
                             unsigned char **out, unsigned long *cap) {
  unsigned long size = *cap;
  int pf = c == 1 ? TJPF_GRAY : TJPF_RGB, samp = c == 1 ? TJSAMP_GRAY : TJSAMP_420;
  TJ_CHECK(tjCompress2(tj, px, w, w * c, h, pf, out, &size, samp, quality, 0), tj, "encoding JPEG");
  if (size > *cap) *cap = size;
  return size;
}

double dt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dt_progress_start(dt_progress *p, const char *what, int64_t total) {
  p->what = what;
  p->total = total;
  p->t0 = p->last = dt_now();
}

static void progress_print(dt_progress *p, int64_t done, int64_t bytes, double now) {
  double el = now - p->t0, rate = el > 0 ? (double)done / el : 0;
  fprintf(stderr, "\r%s: %lld/%lld (%3.0f%%) %.1f MB, %.0f/s   ", p->what, (long long)done,
          (long long)p->total, p->total ? 100.0 * (double)done / (double)p->total : 100.0,
          (double)bytes / 1e6, rate);
}

void dt_progress_update(dt_progress *p, int64_t done, int64_t bytes) {
  double now = dt_now();
  if (now - p->last < 0.25 || !isatty(2)) return;   // no \r lines in logs
  p->last = now;
  progress_print(p, done, bytes, now);
}

void dt_progress_done(dt_progress *p, int64_t done, int64_t bytes) {
  progress_print(p, done, bytes, dt_now());
  fputc('\n', stderr);   // the one line logs keep
}
