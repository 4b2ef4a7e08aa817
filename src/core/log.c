#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/timer.h"

static dp_log_level g_level = DP_LOG_INFO;
static int g_level_from_env = 0;

void dp_log_set_level(dp_log_level lvl) { g_level = lvl; }

void dp_log(dp_log_level lvl, const char *fmt, ...) {
  if (!g_level_from_env) {
    const char *e = getenv("DPTRAIN_LOG");
    if (e && !strcmp(e, "debug")) g_level = DP_LOG_DEBUG;
    g_level_from_env = 1;
  }
  if (lvl < g_level) return;
  int rank = dp_identity_rank();
  const char *all = getenv("DPTRAIN_LOG_ALL");
  if (lvl <= DP_LOG_INFO && rank > 0 && !(all && *all == '1')) return;
  static const char *names[] = {"debug", "info", "WARN", "ERROR"};
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (rank >= 0)
    fprintf(stderr, "[%8.2fs r%d %s] %s\n", dp_time_since_start(), rank, names[lvl], buf);
  else
    fprintf(stderr, "[%8.2fs %s] %s\n", dp_time_since_start(), names[lvl], buf);
}
