// Memory budget of this process: sizes with units, and enforcement.
//
// The batch-size finder (train/memfit.h) plans a run under a budget; with
// enforcement on, every large allocation (core/check.h's allocators, at
// least DP_BUDGET_MIN_CHECK bytes) and every training step check the
// process's resident memory against it: growing past the budget is a fatal
// error naming the budget and the planned total, not an out-of-memory kill
// later. The budget counts the growth of the resident set since
// dp_budget_enforce (the process's start-up memory is outside it).
#ifndef DP_CORE_MEMBUDGET_H
#define DP_CORE_MEMBUDGET_H
#include <stddef.h>
#include <stdint.h>

#define DP_BUDGET_MIN_CHECK ((size_t)1 << 20)

// "24GiB", "512MiB", "1.5GB", "300M", "4096" (bytes). Binary units (KiB,
// MiB, GiB, TiB) and decimal ones (kB, MB, GB, TB; K, M, G, T are binary, as
// `free -g`). Returns the bytes, or -1 when s is not a size.
int64_t dp_size_parse(const char *s);
// "2.31 GiB" / "512.0 MiB" into buf (n bytes); returns buf.
char *dp_size_format(int64_t bytes, char *buf, size_t n);

// Starts enforcing: the resident set may grow by at most budget bytes over
// rss0 (the VmRSS of a moment before the planned allocations; <= 0: now).
// planned: the plan's total, source: where the budget came from (both for
// the messages). budget <= 0: off.
void dp_budget_enforce(int64_t budget, int64_t planned, const char *source, int64_t rss0);
void dp_budget_off(void);
int dp_budget_active(void);
int64_t dp_budget_limit(void);
// Growth of the resident set since enforcement began: current (VmRSS) and
// peak (VmHWM), bytes; -1 when /proc is unreadable.
int64_t dp_budget_growth(void);
int64_t dp_budget_peak_growth(void);
// Dies with a message naming the budget and the plan when `more` bytes on
// top of what is resident now would pass the budget, or (more == 0) when the
// peak so far has. `what` names the allocation or the step. No-op when off.
void dp_budget_check(const char *what, int64_t more);
#endif
