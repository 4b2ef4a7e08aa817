#include "core/membudget.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/check.h"
#include "core/sysinfo.h"

int64_t dp_size_parse(const char *s) {
  if (!s || !*s) return -1;
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || !isfinite(v) || v < 0) return -1;
  while (*end == ' ') end++;
  static const struct {
    const char *u;
    double mult;
  } units[] = {{"", 1},         {"b", 1},          {"k", 1024.0},          {"kib", 1024.0},
               {"kb", 1e3},     {"m", 1048576.0},  {"mib", 1048576.0},     {"mb", 1e6},
               {"g", 1073741824.0}, {"gib", 1073741824.0}, {"gb", 1e9},   {"t", 1099511627776.0},
               {"tib", 1099511627776.0}, {"tb", 1e12}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (!strcasecmp(end, units[i].u)) {
      double b = v * units[i].mult;
      if (b > 9.0e18) return -1;
      return (int64_t)llround(b);
    }
  return -1;
}

char *dp_size_format(int64_t bytes, char *buf, size_t n) {
  double b = (double)bytes;
  if (bytes < 0) snprintf(buf, n, "unknown");
  else if (b >= 1099511627776.0) snprintf(buf, n, "%.2f TiB", b / 1099511627776.0);
  else if (b >= 1073741824.0) snprintf(buf, n, "%.2f GiB", b / 1073741824.0);
  else snprintf(buf, n, "%.1f MiB", b / 1048576.0);
  return buf;
}

static struct {
  int on;
  int64_t budget, planned, rss0;
  char source[128];
} g_budget;

void dp_budget_enforce(int64_t budget, int64_t planned, const char *source, int64_t rss0) {
  g_budget.on = 0;
  if (budget <= 0) return;
  int64_t rss = rss0 > 0 ? rss0 : dp_proc_status_bytes("VmRSS");
  if (rss < 0) return;   // no /proc: nothing to measure against
  g_budget.budget = budget;
  g_budget.planned = planned;
  g_budget.rss0 = rss;
  snprintf(g_budget.source, sizeof g_budget.source, "%s", source ? source : "--memory-budget");
  g_budget.on = 1;
}
void dp_budget_off(void) { g_budget.on = 0; }
int dp_budget_active(void) { return g_budget.on; }
int64_t dp_budget_limit(void) { return g_budget.on ? g_budget.budget : -1; }

int64_t dp_budget_growth(void) {
  int64_t rss = dp_proc_status_bytes("VmRSS");
  return rss < 0 || !g_budget.on ? -1 : rss - g_budget.rss0;
}
int64_t dp_budget_peak_growth(void) {
  int64_t hwm = dp_proc_status_bytes("VmHWM");
  return hwm < 0 || !g_budget.on ? -1 : hwm - g_budget.rss0;
}

void dp_budget_check(const char *what, int64_t more) {
  if (!g_budget.on) return;
  int64_t now = more > 0 ? dp_budget_growth() : dp_budget_peak_growth();
  if (now < 0 || now + more <= g_budget.budget) return;
  char b[32], p[32], u[32], m[32];
  g_budget.on = 0;   // the fatal path allocates too
  DP_FATAL(what, "lower --batch, or let dptrain pick it (--batch auto / dptrain tune-batch)",
           "%s%s would pass the memory budget %s (%s): planned total %s, in use %s since start-up",
           more > 0 ? "allocating " : "the peak memory of ", more > 0 ? dp_size_format(more, m, sizeof m) : "the step",
           dp_size_format(g_budget.budget, b, sizeof b), g_budget.source,
           dp_size_format(g_budget.planned, p, sizeof p), dp_size_format(now, u, sizeof u));
}
