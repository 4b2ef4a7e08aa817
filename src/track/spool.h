// The tracking spool, OUT/mlflow-spool/: what a run wants MLflow to know,
// kept on local disk so that a down or slow server never loses or blocks it.
//
//   records.jsonl  one JSON object per line, appended whole rows at a time
//                  (core/afile.h dp_alog); never rewritten:
//                    {"k":"p","key":K,"value":V}                     param
//                    {"k":"m","key":K,"value":X,"ts":MS,"step":S}     metric (X may be "NaN")
//                    {"k":"t","key":K,"value":V}                     tag
//                    {"k":"a","file":F,"dir":D}                      artifact (F relative to OUT)
//                    {"k":"s","status":S,"ts":MS}                    run status
//   cursor.json    {"offset": N}: bytes of records.jsonl the server has
//                  (written atomically after each accepted request)
//   run.json       the run's identity (trk_ident), written atomically
//   rejected.jsonl records the server refused (4xx), with its message
//   lock           flock'ed by the one process that ships this spool
//
// A metric carries the timestamp it was recorded with, so a request that is
// replayed after a lost answer is a duplicate of the same (key, value,
// timestamp, step), which MLflow's store ignores; the cursor makes a replay
// rare in the first place.
#ifndef DP_TRACK_SPOOL_H
#define DP_TRACK_SPOOL_H
#include <stddef.h>
#include <stdint.h>

#include "core/afile.h"
#include "core/check.h"

#define TRK_SPOOL_DIRNAME "mlflow-spool"

// MLflow's limits (mlflow/utils/validation.py, 3.17).
#define TRK_KEY_MAX 250
#define TRK_PARAM_VALUE_MAX 6000
#define TRK_TAG_VALUE_MAX 8000

// Identity of the run a spool belongs to. Persisted in run.json, so a resumed
// training (same OUT, or a checkpoint that carries it: trk_ident_load/save)
// continues the same MLflow run.
typedef struct {
  char spool_id[40];          // made here at first start; tag dptrain.spool_id on the run
  char tracking_uri[1024];
  char experiment[256];
  char run_name[256];
  int64_t start_ms;           // run start time (ms since the epoch)
  // Known once the run exists on the server:
  char experiment_id[64];
  char run_id[64];
  char artifact_uri[1024];
} trk_ident;

// OUT of a spool directory OUT/mlflow-spool (artifact files are relative to it).
void trk_spool_out_dir(const char *spool_dir, char *out, size_t n);

// 0 when loaded, 1 when the spool has no run.json, -1 on a bad file (err).
int trk_ident_load(const char *spool_dir, trk_ident *id, dp_err *err);
int trk_ident_save(const char *spool_dir, const trk_ident *id, dp_err *err);
// 32 random hex digits.
void trk_make_spool_id(char *out, size_t n);
// Milliseconds since the epoch (wall clock, as MLflow timestamps are).
int64_t trk_now_ms(void);

// Bytes of records.jsonl already shipped (0 when there is no cursor), -1 on error.
int64_t trk_cursor_load(const char *spool_dir, dp_err *err);
int trk_cursor_save(const char *spool_dir, int64_t offset, dp_err *err);

// Exclusive, non-blocking lock: 0 locked (*fd set), 1 another process holds it
// (holder says which pid), -1 error.
int trk_spool_lock(const char *spool_dir, int *fd, char *holder, size_t n, dp_err *err);
void trk_spool_unlock(int fd);

// ---- writing --------------------------------------------------------------------
typedef struct {
  dp_alog log;
  char dir[1024];
  char out_dir[1024];   // parent of the spool: artifact files are relative to it
} trk_spool_writer;

int trk_spool_writer_open(trk_spool_writer *w, const char *spool_dir, dp_err *err);
// Keys are made valid for MLflow (characters outside [A-Za-z0-9_-. :/] become
// '_', at most 250 bytes); values are cut to MLflow's limits.
void trk_spool_param(trk_spool_writer *w, const char *key, const char *value);
void trk_spool_metric(trk_spool_writer *w, const char *key, double value, int64_t step, int64_t ts_ms);
void trk_spool_tag(trk_spool_writer *w, const char *key, const char *value);
// file: a path; stored relative to OUT when it lies inside OUT. dir: the
// artifact directory on the run ("" = root).
void trk_spool_artifact(trk_spool_writer *w, const char *file, const char *dir);
void trk_spool_status(trk_spool_writer *w, const char *status, int64_t ts_ms);
// Writes the buffered rows (one write(2), no fsync). 0 or -1 with err.
int trk_spool_flush(trk_spool_writer *w, dp_err *err);
int trk_spool_writer_close(trk_spool_writer *w, dp_err *err);
// Cleans a metric/param/tag key in place (see above).
void trk_clean_key(char *key);

// ---- reading --------------------------------------------------------------------
typedef enum { TRK_REC_PARAM = 'p', TRK_REC_METRIC = 'm', TRK_REC_TAG = 't', TRK_REC_ARTIFACT = 'a',
               TRK_REC_STATUS = 's', TRK_REC_BAD = '?' } trk_rec_kind;

typedef struct {
  trk_rec_kind kind;
  char *key, *value;     // param, tag; key for a metric; status in value
  double num;            // metric value
  int64_t step, ts;
  char *file, *dir;      // artifact
  int64_t off, end_off;  // byte range of the line in records.jsonl
  size_t bytes;          // line length
  uint64_t key_hash;     // params and tags: one key per request
} trk_rec;

// Reads up to max_recs complete lines starting at byte off. A line that does
// not parse becomes TRK_REC_BAD (value = the reason). *file_size (optional)
// gets the current size. Returns the count, -1 on error.
int trk_spool_read(const char *spool_dir, int64_t off, int max_recs, trk_rec **out, int64_t *file_size,
                   dp_err *err);
void trk_recs_free(trk_rec *r, int n);
// Complete lines between off and the end of records.jsonl (for messages).
int64_t trk_spool_count_pending(const char *spool_dir, int64_t off);

// Records the server refused, for a person to look at.
void trk_spool_reject(const char *spool_dir, const trk_rec *r, const char *why);

// ---- batching -------------------------------------------------------------------
typedef struct {
  int metrics, params, tags, entities;
  size_t bytes;
} trk_limits;
// runs/log-batch: 1000 metrics, 100 params, 100 tags, 1000 in all, 1 MB per
// request (planned to 900 KB, leaving room for the JSON around the records).
void trk_limits_mlflow(trk_limits *l);
// Records at the head of r[0..n) that go in the next request (>= 1 when n > 0):
// a run of params/metrics/tags within the limits and with no param or tag key
// twice, or one artifact, status or bad record on its own.
int trk_plan_batch(const trk_rec *r, int n, const trk_limits *l);
#endif
