// Sends a spool's records to the MLflow server: the background thread of a
// training run (track/tracker.h) and `dptrain track sync OUT` both call this.
//
// The run is found or created first: by run id when run.json has one, else
// by the tag dptrain.spool_id (so a run created by a request whose answer was
// lost is found, not created twice), else runs/create. Then every complete
// record after the cursor goes out in order: params/metrics/tags in
// runs/log-batch requests within MLflow's limits, artifacts through the
// artifact proxy, status changes with runs/update. The cursor advances after
// each accepted request. A refused request (HTTP 4xx) is retried without its
// params (a param whose value changed on a resumed run is refused), then the
// records still refused go to rejected.jsonl with the server's message, and
// shipping goes on. A down or slow server stops shipping (retryable error);
// the caller tries again later from the cursor.
#ifndef DP_TRACK_SHIP_H
#define DP_TRACK_SHIP_H
#include <stdint.h>

#include "track/mlflow.h"
#include "track/spool.h"

typedef struct {
  int64_t metrics, params, tags, artifacts, statuses, rejected, requests;
} trk_ship_stats;

// Makes sure id names a run on the server (saving run.json when it changes).
int trk_ensure_run(trk_client *c, const char *spool_dir, trk_ident *id, dp_err *err);
// Ships from the cursor to the last complete record. 0 when all were sent
// (or rejected), -1 with err when the server could not be reached or did not
// answer (err->code TRK_E_RETRYABLE / TRK_E_ABORTED) or a local file failed.
int trk_ship(trk_client *c, const char *spool_dir, trk_ident *id, trk_ship_stats *st, dp_err *err);
#endif
