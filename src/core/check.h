// Error reporting and check macros. Every library call goes through one of
// these: the message says where (file:line), what was being done, and a hint.
#ifndef DP_CORE_CHECK_H
#define DP_CORE_CHECK_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

// Fatal error: prints "[rank R host H] file:line: what: detail (hint)" and ends
// the job. Under MPI the registered hook calls MPI_Abort so no rank hangs.
_Noreturn void dp_fatal_at(const char *file, int line, const char *what,
                           const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

// Hook run by dp_fatal_at before exiting (dist/ installs one that MPI_Aborts).
typedef void (*dp_fatal_hook_fn)(int code);
void dp_set_fatal_hook(dp_fatal_hook_fn fn);
// Runs first, with the whole message, so a run can record why it failed
// (results.json "status": "failed") before the job is torn down. Runs at
// most once: a fatal error inside it goes straight to the abort.
typedef void (*dp_fatal_report_fn)(const char *message);
void dp_set_fatal_report(dp_fatal_report_fn fn);

// Rank/host used in every message; set by dist/ after MPI_Init.
void dp_set_identity(int rank, const char *host);
int dp_identity_rank(void);
const char *dp_identity_host(void);

#define DP_FATAL(what, hint, ...) dp_fatal_at(__FILE__, __LINE__, what, hint, __VA_ARGS__)

// Generic condition check; `what` is what we were doing, `hint` what to try.
#define DP_CHECK(cond, what, hint)                                              \
  do {                                                                          \
    if (!(cond)) dp_fatal_at(__FILE__, __LINE__, what, hint, "check failed: %s", #cond); \
  } while (0)

// stdio/POSIX: call returns <0 or NULL on failure, errno says why.
const char *dp_errno_str(void);
#define SYS_CHECK(call, what)                                                   \
  do {                                                                          \
    if ((long)(call) < 0)                                                       \
      dp_fatal_at(__FILE__, __LINE__, what, "see errno", "%s: %s", #call, dp_errno_str()); \
  } while (0)
#define PTR_CHECK(ptr, what)                                                    \
  do {                                                                          \
    if ((ptr) == NULL)                                                          \
      dp_fatal_at(__FILE__, __LINE__, what, "out of memory or missing file?", "%s returned NULL: %s", #ptr, dp_errno_str()); \
  } while (0)

// Memory helpers that never return NULL (they die with a message instead).
void *dp_malloc(size_t n, const char *what);
void *dp_calloc(size_t count, size_t size, const char *what);
void *dp_realloc(void *p, size_t n, const char *what);
void *dp_aligned_alloc(size_t align, size_t n, const char *what);
char *dp_strdup(const char *s);

// Recoverable errors: a small buffer the caller can print, used where a bad
// record must be skipped and counted instead of ending the run.
typedef struct {
  int code;          // 0 = ok
  char msg[512];
} dp_err;
void dp_err_set(dp_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void dp_err_clear(dp_err *e) { if (e) { e->code = 0; e->msg[0] = 0; } }

#endif
