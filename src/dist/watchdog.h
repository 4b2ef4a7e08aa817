// The collective watchdog: every wait on another rank has a deadline, and
// when it passes the job stops with a message that names the rank that did
// not arrive and where the run was, instead of hanging forever (a rank under
// `kill -STOP`, a wedged node, a lost network link).
//
// Heartbeats: at marked points (step start, gradient wait, step end, eval)
// every rank sends its position (step, phase) to rank 0, and rank 0 sends its
// own to every rank: small non-blocking messages on a private communicator,
// polled inside every timed wait. So when a wait expires, rank 0 knows which
// ranks are behind it, and the others know whether rank 0 is.
//
// Timeout rule: a wait fails after `timeout_s` seconds in which the requests
// did not complete AND no new heartbeat arrived (a rank that is busy alone,
// like rank 0 during the single-rank baseline, keeps the others waiting
// without tripping the watchdog as long as it beats).
// On expiry: rank 0 names the ranks behind it; another rank names rank 0 if
// rank 0 is behind, else waits a grace period for rank 0's verdict; then the
// job is aborted (MPI_Abort through the fatal hook), so every survivor exits
// non-zero within timeout + grace.
#ifndef DP_DIST_WATCHDOG_H
#define DP_DIST_WATCHDOG_H
#include <stdint.h>

#include "dist/dist.h"

typedef enum {
  WD_STEP_START = 0,   // before the step's first micro-batch
  WD_GRAD_WAIT = 1,    // backward done, waiting for the gradient all-reduce
  WD_STEP_END = 2,     // step-boundary agreement (signals, stop)
  WD_EVAL = 3,         // evaluation collectives
  WD_OTHER = 4,        // setup, checkpoints, final results
  WD_PHASES = 5
} wd_phase;

// Collective: arms the watchdog on d (timeout_s > 0; d->wd set). The
// default when never called: plain blocking waits.
void dist_watchdog_init(dist_ctx *d, double timeout_s);
// Collective at the end (cancels the heartbeat receives).
void dist_watchdog_free(dist_ctx *d);
// Records this rank's position and sends it (non-blocking).
void dist_watchdog_mark(dist_ctx *d, int64_t step, wd_phase phase);
// MPI_Waitall with the deadline (what: named in the message).
void dist_wait_all(dist_ctx *d, int n, MPI_Request *reqs, const char *what);
// MPI_Waitany with the deadline; returns the index or MPI_UNDEFINED.
int dist_wait_any(dist_ctx *d, int n, MPI_Request *reqs, const char *what);
// The deadline in seconds (600 when the watchdog is not armed).
double dist_watchdog_timeout(const dist_ctx *d);
// A rank's last known position, for messages and tests ("step 12 (gradient wait)").
void dist_watchdog_describe(const dist_ctx *d, int rank, char *buf, int n);
#endif
