// The core clock a CPU row's peak should use, measured: a chain of dependent
// integer adds retires at most one add per cycle, so adds per CPU-second
// (CLOCK_PROCESS_CPUTIME_ID: time other jobs took on a shared machine is not
// counted) is a lower bound of the clock the core runs at. A VM's
// /proc/cpuinfo "cpu MHz" is often the nominal clock, not the boost one.
// usage: bench_clock [--seconds S]
#include <stdio.h>
#include <time.h>

#include "core/opts.h"

typedef struct {
  double seconds;
} args_t;
static const dp_opt arg_list[] = {
    DP_OPT_F(args_t, "seconds", DP_OPT_DOUBLE, seconds, 0, 600, DP_OPT_LO_OPEN, "CPU seconds per measurement"),
};
static const dp_opts arg_table = {"bench_clock", arg_list, 1, "usage: bench_clock [--seconds 1]\n", 0};

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  args_t a = {1.0};
  int rc = dp_opts_parse(&arg_table, &a, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  double best = 0;
  for (int r = 0; r < 5; r++) {
    unsigned long x = 0, n = 0;
    double t0 = cpu_now(), el;
    do {
      for (int i = 0; i < 100000000; i++) {
        x++;
        __asm__ volatile("" : "+r"(x));   // keeps the chain: one dependent add per iteration
      }
      n += 100000000UL;
    } while ((el = cpu_now() - t0) < a.seconds);
    double ghz = (double)n / el / 1e9;
    if (ghz > best) best = ghz;
  }
  printf("clock >= %.2f GHz (dependent adds per CPU-second, best of 5)\n", best);
  return 0;
}
