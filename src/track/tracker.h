// Tracking off the critical path. The training thread appends records to the
// spool (track/spool.h: a buffered append, written with one write(2) per
// trk_flush, never a network call) and a background thread ships them
// (track/ship.h). A down server costs the thread retries with exponential
// backoff (1 s doubling to 60 s); a slow one costs it at most the per-call
// timeout per attempt; training never waits for either. trk_close waits a
// bounded time for the last records, and whatever is left stays in the spool
// for `dptrain track sync OUT`.
//
// Every function accepts NULL (tracking off) and does nothing then.
#ifndef DP_TRACK_TRACKER_H
#define DP_TRACK_TRACKER_H
#include <stdint.h>

#include "core/check.h"
#include "track/spool.h"

typedef struct {
  const char *uri;           // http(s)://host:port
  const char *experiment;    // "" = "dptrain"
  const char *run_name;      // "" = the server picks one
  const char *spool_dir;     // OUT/mlflow-spool
  double timeout_s;          // per HTTP call (connect: min(5, timeout))
  int continue_run;          // 1: a resumed training (continue the spool's run)
} trk_open_opts;

typedef struct trk_tracker trk_tracker;

// Creates or reopens the spool and starts the shipper. With continue_run, a
// spool with a run.json continues that run (*resumed = 1), unless it was
// tracked to another server, whose run id means nothing here: then the whole
// spool is replayed into a new run. Without continue_run (a fresh start into
// an OUT that holds an earlier run's spool) the old spool is moved aside to
// OUT/mlflow-spool.prev-<spool id> (with a warning when it still held unsent
// records) and a new run begins. NULL with err when the spool cannot be
// written (the caller warns and trains untracked).
trk_tracker *trk_open(const trk_open_opts *o, int *resumed, dp_err *err);
void trk_param(trk_tracker *t, const char *key, const char *value);
void trk_metric(trk_tracker *t, const char *key, double value, int64_t step);
void trk_tag(trk_tracker *t, const char *key, const char *value);
void trk_artifact(trk_tracker *t, const char *file, const char *dir);
void trk_status(trk_tracker *t, const char *status);   // RUNNING | FINISHED | FAILED | KILLED
// Writes the buffered records to the spool and wakes the shipper.
void trk_flush(trk_tracker *t);
// Flushes and lets the shipper send what is left while the server keeps
// accepting requests: it stops at the first failure (no retries), when
// drain_s pass without an accepted request (a hung call is aborted then),
// or after max(drain_s, 60 s) in all. Frees t. Returns the records left in
// the spool (0: all sent), and prints how to send them.
int64_t trk_close(trk_tracker *t, double drain_s);
// The run's identity as known now (run_id may still be empty while the
// server has not been reached).
void trk_identity(trk_tracker *t, trk_ident *out);
#endif
