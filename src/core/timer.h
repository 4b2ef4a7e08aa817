// Monotonic wall-clock timers.
#ifndef DP_CORE_TIMER_H
#define DP_CORE_TIMER_H
double dp_now(void);                 // seconds, CLOCK_MONOTONIC
double dp_time_since_start(void);    // seconds since first call in the process
typedef struct { double start, total; long count; } dp_timer;
static inline void dp_timer_start(dp_timer *t) { t->start = dp_now(); }
static inline double dp_timer_stop(dp_timer *t) {
  double d = dp_now() - t->start; t->total += d; t->count++; return d;
}
#endif
