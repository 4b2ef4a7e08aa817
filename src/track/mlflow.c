#include "track/mlflow.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "track/jbuf.h"

struct trk_client {
  trk_http *http;
  char base[1024];          // without a trailing '/'
  char last_code[64];
};

int trk_uri_check(const char *uri, char *why, size_t n) {
  const char *rest = NULL;
  if (!strncmp(uri, "http://", 7)) rest = uri + 7;
  else if (!strncmp(uri, "https://", 8)) rest = uri + 8;
  if (!rest) {
    snprintf(why, n, "'%s' is not an http:// or https:// URL (dptrain talks to an MLflow tracking server's REST API)",
             uri);
    return -1;
  }
  if (!*rest || *rest == '/' || *rest == ':') {
    snprintf(why, n, "'%s' has no host", uri);
    return -1;
  }
  for (const char *p = uri; *p; p++)
    if (!isgraph((unsigned char)*p)) {
      snprintf(why, n, "'%s' contains a space or control character", uri);
      return -1;
    }
  if (strlen(uri) >= 900) {
    snprintf(why, n, "URL longer than 900 characters");
    return -1;
  }
  return 0;
}

trk_client *trk_client_create(const char *uri, const trk_http_opts *o, dp_err *err) {
  char why[512];
  if (trk_uri_check(uri, why, sizeof why)) {
    dp_err_set(err, TRK_E_CLIENT, "tracking URI: %s", why);
    return NULL;
  }
  trk_client *c = dp_calloc(1, sizeof *c, "mlflow client");
  snprintf(c->base, sizeof c->base, "%s", uri);
  size_t L = strlen(c->base);
  while (L > 0 && c->base[L - 1] == '/') c->base[--L] = 0;
  trk_http_opts oo = *o;
  trk_http_opts_from_env(&oo);   // credentials never come from the URI or the logged config
  c->http = trk_http_create(&oo, err);
  if (!c->http) {
    free(c);
    return NULL;
  }
  return c;
}

void trk_client_destroy(trk_client *c) {
  if (!c) return;
  trk_http_destroy(c->http);
  free(c);
}

const char *trk_client_uri(const trk_client *c) { return c->base; }
const char *trk_client_last_error_code(const trk_client *c) { return c->last_code; }

static void note_error_code(trk_client *c, const trk_resp *r) {
  c->last_code[0] = 0;
  if (!r->body || !r->len) return;
  char e[64];
  jv *v = jv_parse(r->body, r->len, e, sizeof e);
  const char *code = v ? jv_str(v, "error_code", NULL) : NULL;
  if (code) snprintf(c->last_code, sizeof c->last_code, "%s", code);
  jv_free(v);
}

jv *trk_call(trk_client *c, const char *endpoint, const char *body, dp_err *err) {
  char url[4096];
  snprintf(url, sizeof url, "%s/api/2.0/mlflow/%s", c->base, endpoint);
  trk_resp r = {0};
  c->last_code[0] = 0;
  if (trk_http_json(c->http, body ? "POST" : "GET", url, body, &r, err) != 0) {
    note_error_code(c, &r);
    trk_resp_free(&r);
    return NULL;
  }
  char perr[128];
  jv *v = jv_parse(r.body, r.len, perr, sizeof perr);
  if (!v) dp_err_set(err, TRK_E_RETRYABLE, "%s: the response is not JSON (%s): %.120s", url, perr, r.body);
  trk_resp_free(&r);
  return v;
}

// POST with a body that needs no answer beyond success.
static int call_ok(trk_client *c, const char *endpoint, char *body, dp_err *err) {
  jv *v = trk_call(c, endpoint, body, err);
  free(body);
  if (!v) return -1;
  jv_free(v);
  return 0;
}

static int copy_str(const jv *v, const char *path, char *out, size_t n) {
  const char *s = jv_str(v, path, NULL);
  if (!s) return -1;
  snprintf(out, n, "%s", s);
  return 0;
}

// ---- tracking ------------------------------------------------------------------
int trk_experiment_ensure(trk_client *c, const char *name, char *id, size_t n, dp_err *err) {
  char *q = trk_url_escape(name, 0);
  char ep[1200];
  snprintf(ep, sizeof ep, "experiments/get-by-name?experiment_name=%s", q);
  for (int round = 0; round < 2; round++) {
    jv *v = trk_call(c, ep, NULL, err);
    if (v) {
      int rc = copy_str(v, "experiment.experiment_id", id, n);
      const char *stage = jv_str(v, "experiment.lifecycle_stage", "active");
      if (rc == 0 && strcmp(stage, "active"))
        dp_err_set(err, TRK_E_CLIENT, "MLflow experiment '%s' (id %s) is %s: restore it or pick another name", name,
                   id, stage), rc = -1;
      else if (rc) dp_err_set(err, TRK_E_RETRYABLE, "experiments/get-by-name: no experiment_id in the answer");
      jv_free(v);
      free(q);
      return rc;
    }
    if (strcmp(c->last_code, "RESOURCE_DOES_NOT_EXIST")) {
      free(q);
      return -1;
    }
    char *body = trk_json_strings((const char *[]){"name", name}, 1);
    v = trk_call(c, "experiments/create", body, err);
    free(body);
    if (v) {
      int rc = copy_str(v, "experiment_id", id, n);
      jv_free(v);
      free(q);
      if (rc) dp_err_set(err, TRK_E_RETRYABLE, "experiments/create: no experiment_id in the answer");
      return rc;
    }
    // Another client created it between our two calls: look it up again.
    if (strcmp(c->last_code, "RESOURCE_ALREADY_EXISTS")) break;
  }
  free(q);
  return -1;
}

static void run_info_from(const jv *info, trk_run_info *out) {
  memset(out, 0, sizeof *out);
  copy_str(info, "run_id", out->run_id, sizeof out->run_id);
  copy_str(info, "experiment_id", out->experiment_id, sizeof out->experiment_id);
  copy_str(info, "artifact_uri", out->artifact_uri, sizeof out->artifact_uri);
  copy_str(info, "status", out->status, sizeof out->status);
}

int trk_run_find_by_tag(trk_client *c, const char *experiment_id, const char *key, const char *value,
                        trk_run_info *out, dp_err *err) {
  char filter[600];
  snprintf(filter, sizeof filter, "tags.`%s` = '%s'", key, value);
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  dp_json_key(&b.j, "experiment_ids");
  dp_json_begin_array(&b.j);
  dp_json_string(&b.j, experiment_id);
  dp_json_end_array(&b.j);
  dp_json_kv_string(&b.j, "filter", filter);
  dp_json_kv_int(&b.j, "max_results", 1);
  dp_json_end_object(&b.j);
  char *body = trk_jbuf_end(&b);
  jv *v = trk_call(c, "runs/search", body, err);
  free(body);
  if (!v) return -1;
  const jv *runs = jv_get(v, "runs");
  int found = runs && runs->type == JV_ARR && runs->n > 0;
  if (found) run_info_from(jv_get(&runs->items[0], "info"), out);
  jv_free(v);
  return found;
}

static void write_tags(dp_json *j, const trk_kv *tags, int n) {
  dp_json_key(j, "tags");
  dp_json_begin_array(j);
  for (int i = 0; i < n; i++) {
    dp_json_begin_object(j);
    dp_json_kv_string(j, "key", tags[i].key);
    dp_json_kv_string(j, "value", tags[i].value);
    dp_json_end_object(j);
  }
  dp_json_end_array(j);
}

int trk_run_create(trk_client *c, const char *experiment_id, const char *run_name, int64_t start_ms,
                   const trk_kv *tags, int ntags, trk_run_info *out, dp_err *err) {
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  dp_json_kv_string(&b.j, "experiment_id", experiment_id);
  if (run_name && run_name[0]) dp_json_kv_string(&b.j, "run_name", run_name);
  dp_json_kv_int(&b.j, "start_time", start_ms);
  write_tags(&b.j, tags, ntags);
  dp_json_end_object(&b.j);
  char *body = trk_jbuf_end(&b);
  jv *v = trk_call(c, "runs/create", body, err);
  free(body);
  if (!v) return -1;
  const jv *info = jv_path(v, "run.info");
  int rc = info ? 0 : -1;
  if (info) run_info_from(info, out);
  else dp_err_set(err, TRK_E_RETRYABLE, "runs/create: no run.info in the answer");
  jv_free(v);
  return rc;
}

int trk_run_get(trk_client *c, const char *run_id, trk_run_info *info, jv **full, dp_err *err) {
  char ep[256];
  snprintf(ep, sizeof ep, "runs/get?run_id=%s", run_id);
  jv *v = trk_call(c, ep, NULL, err);
  if (!v) return -1;
  const jv *ri = jv_path(v, "run.info");
  if (!ri) {
    dp_err_set(err, TRK_E_RETRYABLE, "runs/get %s: no run.info in the answer", run_id);
    jv_free(v);
    return -1;
  }
  if (info) run_info_from(ri, info);
  if (full) *full = v;
  else jv_free(v);
  return 0;
}

int trk_run_update(trk_client *c, const char *run_id, const char *status, int64_t end_ms, dp_err *err) {
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  dp_json_kv_string(&b.j, "run_id", run_id);
  dp_json_kv_string(&b.j, "status", status);
  if (end_ms > 0) dp_json_kv_int(&b.j, "end_time", end_ms);
  dp_json_end_object(&b.j);
  return call_ok(c, "runs/update", trk_jbuf_end(&b), err);
}

static char *kv_body(const char *id_key, const char *id, const char *key, const char *value) {
  return trk_json_strings((const char *[]){id_key, id, "key", key, "value", value}, 3);
}

int trk_log_param(trk_client *c, const char *run_id, const char *key, const char *value, dp_err *err) {
  return call_ok(c, "runs/log-parameter", kv_body("run_id", run_id, key, value), err);
}

int trk_set_tag(trk_client *c, const char *run_id, const char *key, const char *value, dp_err *err) {
  return call_ok(c, "runs/set-tag", kv_body("run_id", run_id, key, value), err);
}

int trk_log_metric(trk_client *c, const char *run_id, const char *key, double value, int64_t ts_ms, int64_t step,
                   dp_err *err) {
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  dp_json_kv_string(&b.j, "run_id", run_id);
  dp_json_kv_string(&b.j, "key", key);
  dp_json_key(&b.j, "value");
  trk_json_metric_value(&b.j, value);
  dp_json_kv_int(&b.j, "timestamp", ts_ms);
  dp_json_kv_int(&b.j, "step", step);
  dp_json_end_object(&b.j);
  return call_ok(c, "runs/log-metric", trk_jbuf_end(&b), err);
}

int trk_log_batch(trk_client *c, const char *body, dp_err *err) {
  jv *v = trk_call(c, "runs/log-batch", body, err);
  if (!v) return -1;
  jv_free(v);
  return 0;
}

// ---- artifacts -------------------------------------------------------------------
#define PROXY_ANCHOR "/api/2.0/mlflow-artifacts/artifacts/"

int trk_artifact_proxy_path(const char *uri, char *out, size_t n, char *why, size_t wn) {
  const char *p = NULL;
  if (!strncmp(uri, "mlflow-artifacts://", 19)) {
    p = strchr(uri + 19, '/');   // after host[:port]
    if (!p) p = uri + strlen(uri);
  } else if (!strncmp(uri, "mlflow-artifacts:", 17)) {
    p = uri + 17;
  } else if (!strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8)) {
    const char *a = strstr(uri, PROXY_ANCHOR);
    if (a) p = a + strlen(PROXY_ANCHOR);
  }
  if (!p) {
    snprintf(why, wn,
             "artifact location '%s' is not served by the tracking server's artifact proxy "
             "(run `mlflow server` with --serve-artifacts, the default, and an mlflow-artifacts:/ root)",
             uri);
    return -1;
  }
  while (*p == '/') p++;
  snprintf(out, n, "%s", p);
  size_t L = strlen(out);
  while (L > 0 && out[L - 1] == '/') out[--L] = 0;
  for (const char *s = out; *s; s++)
    if ((s == out || s[-1] == '/') && s[0] == '.' && s[1] == '.' && (s[2] == '/' || !s[2])) {
      snprintf(why, wn, "artifact location '%s' contains '..'", uri);
      return -1;
    }
  return 0;
}

static int artifact_url(const trk_client *c, const char *uri, const char *rel, int listing, char *url, size_t n,
                        dp_err *err) {
  char path[2048], why[1200];
  if (trk_artifact_proxy_path(uri, path, sizeof path, why, sizeof why)) {
    dp_err_set(err, TRK_E_CLIENT, "%s", why);
    return -1;
  }
  char full[3072];
  snprintf(full, sizeof full, "%s%s%s", path, rel && rel[0] ? "/" : "", rel ? rel : "");
  char *e = trk_url_escape(full, !listing);
  if (listing) snprintf(url, n, "%s/api/2.0/mlflow-artifacts/artifacts?path=%s", c->base, e);
  else snprintf(url, n, "%s" PROXY_ANCHOR "%s", c->base, e);
  free(e);
  return 0;
}

int trk_artifact_upload(trk_client *c, const char *artifact_uri, const char *rel, const char *local, dp_err *err) {
  char url[8192];
  if (artifact_url(c, artifact_uri, rel, 0, url, sizeof url, err)) return -1;
  return trk_http_put_file(c->http, url, local, err);
}

int trk_artifact_download(trk_client *c, const char *artifact_uri, const char *rel, const char *local,
                          dp_err *err) {
  char url[8192];
  if (artifact_url(c, artifact_uri, rel, 0, url, sizeof url, err)) return -1;
  return trk_http_get_file(c->http, url, local, err);
}

jv *trk_artifact_list(trk_client *c, const char *artifact_uri, const char *rel, dp_err *err) {
  char url[8192];
  if (artifact_url(c, artifact_uri, rel, 1, url, sizeof url, err)) return NULL;
  trk_resp r = {0};
  if (trk_http_json(c->http, "GET", url, NULL, &r, err) != 0) {
    trk_resp_free(&r);
    return NULL;
  }
  char perr[128];
  jv *v = jv_parse(r.body, r.len, perr, sizeof perr);
  if (!v) dp_err_set(err, TRK_E_RETRYABLE, "%s: the response is not JSON (%s)", url, perr);
  trk_resp_free(&r);
  return v;
}

// ---- registry --------------------------------------------------------------------
int trk_model_ensure(trk_client *c, const char *name, dp_err *err) {
  char *body = trk_json_strings((const char *[]){"name", name}, 1);
  jv *v = trk_call(c, "registered-models/create", body, err);
  free(body);
  if (v) {
    jv_free(v);
    return 0;
  }
  if (!strcmp(c->last_code, "RESOURCE_ALREADY_EXISTS")) {
    dp_err_clear(err);
    return 0;
  }
  return -1;
}

int trk_model_version_create(trk_client *c, const char *name, const char *source, const char *run_id,
                             const trk_kv *tags, int ntags, const char *description, char *version, size_t vn,
                             dp_err *err) {
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  dp_json_kv_string(&b.j, "name", name);
  dp_json_kv_string(&b.j, "source", source);
  if (run_id && run_id[0]) dp_json_kv_string(&b.j, "run_id", run_id);
  if (description && description[0]) dp_json_kv_string(&b.j, "description", description);
  write_tags(&b.j, tags, ntags);
  dp_json_end_object(&b.j);
  char *body = trk_jbuf_end(&b);
  jv *v = trk_call(c, "model-versions/create", body, err);
  free(body);
  if (!v) return -1;
  int rc = copy_str(v, "model_version.version", version, vn);
  if (rc) dp_err_set(err, TRK_E_RETRYABLE, "model-versions/create: no model_version.version in the answer");
  jv_free(v);
  return rc;
}

int trk_model_version_set_tag(trk_client *c, const char *name, const char *version, const char *key,
                              const char *value, dp_err *err) {
  const char *kv[] = {"name", name, "version", version, "key", key, "value", value};
  return call_ok(c, "model-versions/set-tag", trk_json_strings(kv, 4), err);
}

int trk_model_alias_set(trk_client *c, const char *name, const char *alias, const char *version, dp_err *err) {
  const char *kv[] = {"name", name, "alias", alias, "version", version};
  return call_ok(c, "registered-models/alias", trk_json_strings(kv, 3), err);
}

// Detaches the object at key from its parent so the caller can own it.
static jv *take(jv *root, const char *key) {
  if (!root || root->type != JV_OBJ) return NULL;
  for (int i = 0; i < root->n; i++)
    if (!strcmp(root->keys[i], key)) {
      jv *out = dp_malloc(sizeof *out, "json value");
      *out = root->items[i];
      root->items[i].type = JV_NULL;   // the parent no longer owns it
      root->items[i].n = 0;
      root->items[i].items = NULL;
      root->items[i].keys = NULL;
      root->items[i].str = NULL;
      return out;
    }
  return NULL;
}

static jv *get_object(trk_client *c, const char *ep, const char *key, dp_err *err) {
  jv *v = trk_call(c, ep, NULL, err);
  if (!v) return NULL;
  jv *o = take(v, key);
  if (!o) dp_err_set(err, TRK_E_RETRYABLE, "%s: no '%s' in the answer", ep, key);
  jv_free(v);
  return o;
}

jv *trk_model_get(trk_client *c, const char *name, dp_err *err) {
  char *q = trk_url_escape(name, 0);
  char ep[1024];
  snprintf(ep, sizeof ep, "registered-models/get?name=%s", q);
  free(q);
  return get_object(c, ep, "registered_model", err);
}

jv *trk_model_version_get(trk_client *c, const char *name, const char *version, dp_err *err) {
  char *q = trk_url_escape(name, 0), *qv = trk_url_escape(version, 0);
  char ep[1200];
  snprintf(ep, sizeof ep, "model-versions/get?name=%s&version=%s", q, qv);
  free(q);
  free(qv);
  return get_object(c, ep, "model_version", err);
}

const char *trk_model_alias_version(const jv *rm, const char *alias) {
  const jv *a = rm ? jv_get(rm, "aliases") : NULL;
  if (!a || a->type != JV_ARR) return NULL;
  for (int i = 0; i < a->n; i++) {
    const char *n = jv_str(&a->items[i], "alias", NULL);
    if (n && !strcmp(n, alias)) return jv_str(&a->items[i], "version", NULL);
  }
  return NULL;
}

const char *trk_kv_find(const jv *array, const char *key) {
  if (!array || array->type != JV_ARR) return NULL;
  for (int i = 0; i < array->n; i++) {
    const char *k = jv_str(&array->items[i], "key", NULL);
    if (k && !strcmp(k, key)) return jv_str(&array->items[i], "value", "");
  }
  return NULL;
}

// Pages through a search endpoint: GET ep&max_results=..&page_token=...
static int each_page(trk_client *c, const char *ep0, const char *list_key, void (*fn)(const jv *, void *),
                     void *ctx, dp_err *err) {
  char token[512] = "";
  int count = 0;
  for (int page = 0; page < 10000; page++) {
    char ep[2048];
    char *t = trk_url_escape(token, 0);
    snprintf(ep, sizeof ep, "%s%smax_results=200%s%s", ep0, strchr(ep0, '?') ? "&" : "?", token[0] ? "&page_token=" : "",
             token[0] ? t : "");
    free(t);
    jv *v = trk_call(c, ep, NULL, err);
    if (!v) return -1;
    const jv *list = jv_get(v, list_key);
    if (list && list->type == JV_ARR)
      for (int i = 0; i < list->n; i++, count++) fn(&list->items[i], ctx);
    const char *next = jv_str(v, "next_page_token", "");
    snprintf(token, sizeof token, "%s", next);
    jv_free(v);
    if (!token[0]) break;
  }
  return count;
}

int trk_model_versions_each(trk_client *c, const char *name, void (*fn)(const jv *mv, void *ctx), void *ctx,
                            dp_err *err) {
  char filter[600];
  snprintf(filter, sizeof filter, "name='%s'", name);
  char *q = trk_url_escape(filter, 0);
  char ep[2048];
  snprintf(ep, sizeof ep, "model-versions/search?filter=%s", q);
  free(q);
  return each_page(c, ep, "model_versions", fn, ctx, err);
}

int trk_models_each(trk_client *c, void (*fn)(const jv *rm, void *ctx), void *ctx, dp_err *err) {
  return each_page(c, "registered-models/search", "registered_models", fn, ctx, err);
}
