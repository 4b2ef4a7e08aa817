// A thin HTTP client over libcurl for the MLflow REST API.
//
// Every call is bounded: a connect timeout and a total timeout per attempt
// (file transfers instead abort when they stall below 1 KB/s for the total
// timeout, so a large model can take longer than one JSON call). Failed
// attempts that may succeed later (no connection, timeout, HTTP 429 / 5xx) are
// retried with exponential backoff up to a cap; a client error (HTTP 4xx) is
// not retried. Every failure is reported in the caller's dp_err with the
// method, the URL and the server's message ("error_code: message" from
// MLflow's JSON error body, else the start of the body or curl's error).
//
// One trk_http owns one curl easy handle (its connection is reused), so it
// must be used by one thread at a time. Call trk_http_global_init() once
// from the main thread before any thread creates a client.
#ifndef DP_TRACK_HTTP_H
#define DP_TRACK_HTTP_H
#include <stddef.h>

#include "core/check.h"

// dp_err codes set by this layer.
enum {
  TRK_E_RETRYABLE = 1,   // transport error, timeout, 429, 5xx: may work later
  TRK_E_CLIENT = 2,      // HTTP 4xx: the request itself is refused
  TRK_E_ABORTED = 3,     // the abort callback asked to stop
  TRK_E_LOCAL = 4        // a local file could not be read or written
};

typedef struct {
  double connect_timeout_s;   // per attempt
  double timeout_s;           // per attempt (JSON calls); stall limit for file transfers
  int max_attempts;           // >= 1
  double backoff_s;           // first retry delay; doubles per attempt
  double backoff_cap_s;       // upper bound of one delay
  // Polled during transfers and backoff sleeps; non-zero aborts the call
  // (TRK_E_ABORTED). NULL: never.
  int (*should_abort)(void *ctx);
  void *abort_ctx;
  // Called (with abort_ctx) after each request the server accepted. NULL: none.
  void (*on_success)(void *ctx);
  // Credentials and TLS (MLflow's client environment variables, read by
  // trk_http_opts_from_env): HTTP basic auth, or a bearer token; a CA bundle;
  // no certificate check (insecure, for test servers only).
  char user[128], password[256], token[1024], ca_file[1024];
  int insecure_tls;
} trk_http_opts;

void trk_http_opts_default(trk_http_opts *o);   // 5 s connect, 10 s total, 3 attempts, 0.5 s .. 8 s
// MLFLOW_TRACKING_USERNAME / _PASSWORD (basic auth), MLFLOW_TRACKING_TOKEN
// (bearer), MLFLOW_TRACKING_SERVER_CERT_PATH (CA bundle),
// MLFLOW_TRACKING_INSECURE_TLS=true.
void trk_http_opts_from_env(trk_http_opts *o);

typedef struct trk_http trk_http;

typedef struct {
  long status;   // HTTP status of the last attempt (0: no response)
  char *body;    // NUL-terminated response body (may be empty), caller frees with trk_resp_free
  size_t len;
} trk_resp;
void trk_resp_free(trk_resp *r);

int trk_http_global_init(dp_err *err);
trk_http *trk_http_create(const trk_http_opts *o, dp_err *err);
void trk_http_destroy(trk_http *h);
const trk_http_opts *trk_http_get_opts(const trk_http *h);

// method "GET" or "POST"/"PATCH"/"DELETE" with a JSON body (NULL: none).
// Returns 0 on HTTP 2xx (resp filled), else -1 with err set; on an HTTP
// error resp still holds the last status and body for the caller to inspect.
int trk_http_json(trk_http *h, const char *method, const char *url, const char *json_body, trk_resp *resp,
                  dp_err *err);
// PUT the bytes of a local file to url.
int trk_http_put_file(trk_http *h, const char *url, const char *path, dp_err *err);
// GET url into path (atomically, through core/afile). HTTP 404 sets
// err->code = TRK_E_CLIENT like any 4xx.
int trk_http_get_file(trk_http *h, const char *url, const char *path, dp_err *err);

// Percent-encodes s for a query value or a path segment list ('/' kept when
// keep_slash). Returns a malloc'd string.
char *trk_url_escape(const char *s, int keep_slash);
#endif
