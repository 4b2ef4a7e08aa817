#include "dt_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const dt_split_names[DT_NSPLITS] = {"train", "val", "test"};

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
