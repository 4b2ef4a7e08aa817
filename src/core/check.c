#include "core/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/membudget.h"

static dp_fatal_hook_fn g_hook;
static dp_fatal_report_fn g_report;
static int g_reporting;
static int g_rank = -1;
static char g_host[128] = "?";

void dp_set_fatal_hook(dp_fatal_hook_fn fn) { g_hook = fn; }
void dp_set_fatal_report(dp_fatal_report_fn fn) { g_report = fn; }
void dp_set_identity(int rank, const char *host) {
  g_rank = rank;
  snprintf(g_host, sizeof g_host, "%s", host ? host : "?");
}
int dp_identity_rank(void) { return g_rank; }
const char *dp_identity_host(void) { return g_host; }
const char *dp_errno_str(void) { return errno ? strerror(errno) : "no errno"; }

static _Noreturn void fatal_v(int code, const char *file, int line, const char *what, const char *hint,
                              const char *fmt, va_list ap) {
  char detail[1024];
  vsnprintf(detail, sizeof detail, fmt, ap);
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  if (g_rank >= 0)
    fprintf(stderr, "dptrain: FATAL [rank %d host %s] %s:%d: %s: %s", g_rank, g_host,
            base, line, what ? what : "error", detail);
  else
    fprintf(stderr, "dptrain: FATAL %s:%d: %s: %s", base, line, what ? what : "error", detail);
  if (hint && *hint) fprintf(stderr, " (hint: %s)", hint);
  fputc('\n', stderr);
  fflush(stderr);
  fflush(stdout);
  if (g_report && !g_reporting) {
    g_reporting = 1;
    char msg[1400];
    snprintf(msg, sizeof msg, "%s:%d: %s: %s%s%s%s", base, line, what ? what : "error", detail,
             hint && *hint ? " (hint: " : "", hint && *hint ? hint : "", hint && *hint ? ")" : "");
    g_report(msg);
  }
  if (g_hook) g_hook(code);
  exit(code);
}

void dp_fatal_at(const char *file, int line, const char *what, const char *hint, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fatal_v(DP_EXIT_RUNTIME, file, line, what, hint, fmt, ap);
}

void dp_fatal_code_at(int code, const char *file, int line, const char *what, const char *hint, const char *fmt,
                      ...) {
  va_list ap;
  va_start(ap, fmt);
  fatal_v(code, file, line, what, hint, fmt, ap);
}

// Under an enforced memory budget (core/membudget.h), a large allocation
// that would pass it is an error naming the budget before it happens.
#define BUDGET_CHECK(bytes, what) \
  do {                            \
    if ((bytes) >= DP_BUDGET_MIN_CHECK && dp_budget_active()) dp_budget_check(what, (int64_t)(bytes)); \
  } while (0)

void *dp_malloc(size_t n, const char *what) {
  BUDGET_CHECK(n, what);
  void *p = malloc(n ? n : 1);
  if (!p) DP_FATAL(what, "reduce batch size or model size", "malloc(%zu) failed", n);
  return p;
}
void *dp_calloc(size_t count, size_t size, const char *what) {
  BUDGET_CHECK(count * size, what);
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) DP_FATAL(what, "reduce batch size or model size", "calloc(%zu, %zu) failed", count, size);
  return p;
}
void *dp_realloc(void *old, size_t n, const char *what) {
  BUDGET_CHECK(n, what);
  void *p = realloc(old, n ? n : 1);
  if (!p) DP_FATAL(what, "reduce batch size or model size", "realloc(%zu) failed", n);
  return p;
}
void *dp_aligned_alloc(size_t align, size_t n, const char *what) {
  void *p = NULL;
  size_t sz = (n + align - 1) / align * align;
  BUDGET_CHECK(sz, what);
  if (posix_memalign(&p, align, sz ? sz : align) != 0 || !p)
    DP_FATAL(what, "reduce batch size or model size", "aligned alloc of %zu bytes failed", n);
  return p;
}
char *dp_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = dp_malloc(n, "strdup");
  memcpy(p, s, n);
  return p;
}
void dp_err_set(dp_err *e, int code, const char *fmt, ...) {
  if (!e) return;
  e->code = code ? code : 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
}
