// MLflow REST calls (tracking, proxied artifacts, model registry) over
// track/http.h. Checked against mlflow server 3.17 (tests/track): endpoints
// under /api/2.0/mlflow/ take and return JSON; artifacts go through the
// server's proxy, /api/2.0/mlflow-artifacts/artifacts/<path>, where <path>
// is the run's artifact_uri ("mlflow-artifacts:/<exp>/<run>/artifacts")
// without its scheme.
//
// A client is used by one thread at a time (it owns one curl handle).
// Functions return 0 (or a documented positive value) on success and -1 with
// err set; err->code is TRK_E_RETRYABLE for a down or slow server.
#ifndef DP_TRACK_MLFLOW_H
#define DP_TRACK_MLFLOW_H
#include <stddef.h>
#include <stdint.h>

#include "core/jsonread.h"
#include "track/http.h"

typedef struct trk_client trk_client;

typedef struct {
  const char *key, *value;
} trk_kv;

typedef struct {
  char run_id[64];
  char experiment_id[64];
  char artifact_uri[1024];
  char status[16];
} trk_run_info;

// http:// or https:// with a host, printable, no spaces. 0, or -1 with why.
int trk_uri_check(const char *uri, char *why, size_t n);

trk_client *trk_client_create(const char *uri, const trk_http_opts *o, dp_err *err);
void trk_client_destroy(trk_client *c);
const char *trk_client_uri(const trk_client *c);
// MLflow error_code of the last failed call ("" if none / not MLflow's JSON).
const char *trk_client_last_error_code(const trk_client *c);

// /api/2.0/mlflow/<endpoint>: GET when body is NULL (endpoint may carry a
// query string), else POST. Returns the parsed response or NULL with err.
jv *trk_call(trk_client *c, const char *endpoint, const char *body, dp_err *err);

// ---- tracking --------------------------------------------------------------
// Experiment id by name, created when missing.
int trk_experiment_ensure(trk_client *c, const char *name, char *id, size_t n, dp_err *err);
// 1 when a run of the experiment carries tag key=value (out filled), 0 when none.
int trk_run_find_by_tag(trk_client *c, const char *experiment_id, const char *key, const char *value,
                        trk_run_info *out, dp_err *err);
int trk_run_create(trk_client *c, const char *experiment_id, const char *run_name, int64_t start_ms,
                   const trk_kv *tags, int ntags, trk_run_info *out, dp_err *err);
// Fills info; *full (optional) receives the whole "run" object (caller frees).
int trk_run_get(trk_client *c, const char *run_id, trk_run_info *info, jv **full, dp_err *err);
// end_ms <= 0: no end time (e.g. back to RUNNING on resume).
int trk_run_update(trk_client *c, const char *run_id, const char *status, int64_t end_ms, dp_err *err);
int trk_log_param(trk_client *c, const char *run_id, const char *key, const char *value, dp_err *err);
int trk_set_tag(trk_client *c, const char *run_id, const char *key, const char *value, dp_err *err);
int trk_log_metric(trk_client *c, const char *run_id, const char *key, double value, int64_t ts_ms, int64_t step,
                   dp_err *err);
// body: a complete runs/log-batch request.
int trk_log_batch(trk_client *c, const char *body, dp_err *err);

// ---- artifacts (through the server's proxy) -------------------------------
// The proxy path of an artifact URI: "mlflow-artifacts:/1/r/artifacts" and
// "mlflow-artifacts://host:port/1/r/artifacts" give "1/r/artifacts",
// "http(s)://h/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts" gives the
// same. -1 with why for stores the server does not proxy (s3://, file:, ...).
int trk_artifact_proxy_path(const char *artifact_uri, char *out, size_t n, char *why, size_t wn);
// rel: path under the artifact root ("model/model.safetensors").
int trk_artifact_upload(trk_client *c, const char *artifact_uri, const char *rel, const char *local, dp_err *err);
int trk_artifact_download(trk_client *c, const char *artifact_uri, const char *rel, const char *local,
                          dp_err *err);
// The "files" listing of a directory under the artifact root (caller frees).
jv *trk_artifact_list(trk_client *c, const char *artifact_uri, const char *rel, dp_err *err);

// ---- model registry --------------------------------------------------------
int trk_model_ensure(trk_client *c, const char *name, dp_err *err);   // created unless it exists
int trk_model_version_create(trk_client *c, const char *name, const char *source, const char *run_id,
                             const trk_kv *tags, int ntags, const char *description, char *version, size_t vn,
                             dp_err *err);
int trk_model_version_set_tag(trk_client *c, const char *name, const char *version, const char *key,
                              const char *value, dp_err *err);
int trk_model_alias_set(trk_client *c, const char *name, const char *alias, const char *version, dp_err *err);
// "registered_model" object (latest_versions, aliases); NULL with err.
jv *trk_model_get(trk_client *c, const char *name, dp_err *err);
// "model_version" object; NULL with err.
jv *trk_model_version_get(trk_client *c, const char *name, const char *version, dp_err *err);
// Version of alias in a registered_model object, or NULL.
const char *trk_model_alias_version(const jv *registered_model, const char *alias);
// Every version of name (all pages), newest first as the server orders them;
// fn is called per "model_version" object. Returns the count or -1.
int trk_model_versions_each(trk_client *c, const char *name, void (*fn)(const jv *mv, void *ctx), void *ctx,
                            dp_err *err);
// Every registered model; fn per "registered_model" object. Count or -1.
int trk_models_each(trk_client *c, void (*fn)(const jv *rm, void *ctx), void *ctx, dp_err *err);
// Value of key in a [{"key":..,"value":..}] array (tags), or NULL.
const char *trk_kv_find(const jv *array, const char *key);
#endif
