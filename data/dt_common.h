// Shared helpers for the dataset tools (dptrain data ...): JPEG encoding and
// progress lines. Options are parsed with core/opts.h, directories made with
// core/afile.h's dp_mkdir_p.
#ifndef DP_DATA_DT_COMMON_H
#define DP_DATA_DT_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <turbojpeg.h>

#include "core/check.h"

// TurboJPEG check for calls that must not fail (encoding our own pixels).
#define TJ_CHECK(call, handle, what)                                                   \
  do {                                                                                 \
    if ((call) != 0)                                                                   \
      DP_FATAL(what, "TurboJPEG error", "%s: %s", #call, tjGetErrorStr2(handle));       \
  } while (0)

// Encodes (H, W, C) uint8 pixels (C 1 or 3) as JPEG into *out (tjAlloc'd
// buffer, reused and grown by TurboJPEG; free with tjFree). Returns the size.
unsigned long dt_jpeg_encode(tjhandle tj, const uint8_t *px, int w, int h, int c, int quality,
                             unsigned char **out, unsigned long *cap);

// Progress line on stderr ("\r..."), at most every 0.25 s; final newline on done.
typedef struct {
  const char *what;
  int64_t total;
  double t0, last;
} dt_progress;
void dt_progress_start(dt_progress *p, const char *what, int64_t total);
void dt_progress_update(dt_progress *p, int64_t done, int64_t bytes);
void dt_progress_done(dt_progress *p, int64_t done, int64_t bytes);
double dt_now(void);

// Splits for the tools' outputs.
enum { DT_TRAIN = 0, DT_VAL = 1, DT_TEST = 2, DT_NSPLITS = 3 };
extern const char *const dt_split_names[DT_NSPLITS];
#endif
