#include "core/timer.h"

#include <time.h>

double dp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
double dp_time_since_start(void) {
  static double t0 = -1;
  double t = dp_now();
  if (t0 < 0) t0 = t;
  return t - t0;
}
