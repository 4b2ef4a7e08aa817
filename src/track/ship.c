#include "track/ship.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "track/jbuf.h"

int trk_ensure_run(trk_client *c, const char *spool_dir, trk_ident *id, dp_err *err) {
  if (id->run_id[0]) {
    if (id->artifact_uri[0] && id->experiment_id[0]) return 0;
    trk_run_info ri;
    if (trk_run_get(c, id->run_id, &ri, NULL, err)) return -1;
    snprintf(id->artifact_uri, sizeof id->artifact_uri, "%s", ri.artifact_uri);
    snprintf(id->experiment_id, sizeof id->experiment_id, "%s", ri.experiment_id);
    return trk_ident_save(spool_dir, id, err);
  }
  const char *exp = id->experiment[0] ? id->experiment : "dptrain";
  if (trk_experiment_ensure(c, exp, id->experiment_id, sizeof id->experiment_id, err)) return -1;
  trk_run_info ri;
  int found = trk_run_find_by_tag(c, id->experiment_id, "dptrain.spool_id", id->spool_id, &ri, err);
  if (found < 0) return -1;
  if (!found) {
    const char *user = getenv("USER");
    trk_kv tags[] = {{"dptrain.spool_id", id->spool_id},
                     {"mlflow.source.name", "dptrain"},
                     {"mlflow.source.type", "JOB"},
                     {"mlflow.user", user ? user : ""}};
    if (trk_run_create(c, id->experiment_id, id->run_name, id->start_ms > 0 ? id->start_ms : trk_now_ms(), tags,
                       user ? 4 : 3, &ri, err))
      return -1;
    LOG_INFO("MLflow: created run %s in experiment '%s' (id %s) at %s", ri.run_id, exp, id->experiment_id,
             trk_client_uri(c));
  } else {
    LOG_INFO("MLflow: continuing run %s (found by its spool id)", ri.run_id);
  }
  snprintf(id->run_id, sizeof id->run_id, "%s", ri.run_id);
  snprintf(id->artifact_uri, sizeof id->artifact_uri, "%s", ri.artifact_uri);
  return trk_ident_save(spool_dir, id, err);
}

static int is_kv(const trk_rec *r) {
  return r->kind == TRK_REC_PARAM || r->kind == TRK_REC_METRIC || r->kind == TRK_REC_TAG;
}

// runs/log-batch for r[0..k); params only when with_params. Returns the
// number of entities put in the request (0: nothing to send).
static char *batch_body(const char *run_id, const trk_rec *r, int k, int with_params, int *count) {
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json *j = &b.j;
  dp_json_begin_object(j);
  dp_json_kv_string(j, "run_id", run_id);
  *count = 0;
  static const trk_rec_kind kinds[3] = {TRK_REC_METRIC, TRK_REC_PARAM, TRK_REC_TAG};
  static const char *const names[3] = {"metrics", "params", "tags"};
  for (int q = 0; q < 3; q++) {
    if (kinds[q] == TRK_REC_PARAM && !with_params) continue;
    dp_json_key(j, names[q]);
    dp_json_begin_array(j);
    for (int i = 0; i < k; i++) {
      if (r[i].kind != kinds[q]) continue;
      (*count)++;
      dp_json_begin_object(j);
      dp_json_kv_string(j, "key", r[i].key);
      if (kinds[q] == TRK_REC_METRIC) {
        dp_json_key(j, "value");
        trk_json_metric_value(j, r[i].num);
        dp_json_kv_int(j, "timestamp", r[i].ts);
        dp_json_kv_int(j, "step", r[i].step);
      } else {
        dp_json_kv_string(j, "value", r[i].value);
      }
      dp_json_end_object(j);
    }
    dp_json_end_array(j);
  }
  dp_json_end_object(j);
  return trk_jbuf_end(&b);
}

static void count_kinds(const trk_rec *r, int k, trk_ship_stats *st, int with_params) {
  for (int i = 0; i < k; i++) {
    if (r[i].kind == TRK_REC_METRIC) st->metrics++;
    else if (r[i].kind == TRK_REC_TAG) st->tags++;
    else if (r[i].kind == TRK_REC_PARAM && with_params) st->params++;
  }
}

static void reject(const char *spool_dir, const trk_rec *r, const char *why, trk_ship_stats *st) {
  trk_spool_reject(spool_dir, r, why);
  st->rejected++;
}

// 0: sent or rejected; -1: stop shipping (err set).
static int send_kv(trk_client *c, const char *spool_dir, const trk_ident *id, const trk_rec *r, int k,
                   trk_ship_stats *st, dp_err *err) {
  int cnt;
  char *body = batch_body(id->run_id, r, k, 1, &cnt);
  int rc = trk_log_batch(c, body, err);
  free(body);
  st->requests++;
  if (rc == 0) {
    count_kinds(r, k, st, 1);
    return 0;
  }
  if (err->code != TRK_E_CLIENT) return -1;
  char first[512];
  snprintf(first, sizeof first, "%s", err->msg);
  int has_params = 0, has_other = 0;
  for (int i = 0; i < k; i++) has_params |= r[i].kind == TRK_REC_PARAM, has_other |= r[i].kind != TRK_REC_PARAM;
  if (!has_params) {
    LOG_WARN("MLflow refused %d record(s) (kept in rejected.jsonl): %s", k, first);
    for (int i = 0; i < k; i++) reject(spool_dir, &r[i], first, st);
    dp_err_clear(err);
    return 0;
  }
  // Usually a param whose value differs from the one logged before (a
  // resumed run with a changed setting): the rest still goes in.
  if (has_other) {
    body = batch_body(id->run_id, r, k, 0, &cnt);
    dp_err_clear(err);
    rc = trk_log_batch(c, body, err);
    free(body);
    st->requests++;
    if (rc && err->code != TRK_E_CLIENT) return -1;
    if (rc) {
      LOG_WARN("MLflow refused %d record(s) (kept in rejected.jsonl): %s", k, err->msg);
      for (int i = 0; i < k; i++)
        if (r[i].kind != TRK_REC_PARAM) reject(spool_dir, &r[i], err->msg, st);
    } else {
      count_kinds(r, k, st, 0);
    }
  }
  for (int i = 0; i < k; i++) {
    if (r[i].kind != TRK_REC_PARAM) continue;
    dp_err_clear(err);
    rc = trk_log_param(c, id->run_id, r[i].key, r[i].value, err);
    st->requests++;
    if (rc && err->code != TRK_E_CLIENT) return -1;
    if (rc) {
      LOG_WARN("MLflow refused param '%s' (kept in rejected.jsonl): %s", r[i].key, err->msg);
      reject(spool_dir, &r[i], err->msg, st);
    } else {
      st->params++;
    }
  }
  dp_err_clear(err);
  return 0;
}

static int send_artifact(trk_client *c, const char *spool_dir, const trk_ident *id, const trk_rec *r,
                         trk_ship_stats *st, dp_err *err) {
  char local[2400];
  if (r->file[0] == '/') {
    snprintf(local, sizeof local, "%s", r->file);
  } else {
    char out_dir[1100];
    trk_spool_out_dir(spool_dir, out_dir, sizeof out_dir);
    snprintf(local, sizeof local, "%s/%s", out_dir, r->file);
  }
  if (access(local, R_OK) != 0) {
    char why[2600];
    snprintf(why, sizeof why, "artifact %s is missing or unreadable", local);
    LOG_WARN("MLflow: %s; skipped (kept in rejected.jsonl)", why);
    reject(spool_dir, r, why, st);
    return 0;
  }
  const char *base = strrchr(r->file, '/');
  base = base ? base + 1 : r->file;
  char rel[1400];
  snprintf(rel, sizeof rel, "%s%s%s", r->dir, r->dir[0] ? "/" : "", base);
  st->requests++;
  if (trk_artifact_upload(c, id->artifact_uri, rel, local, err) == 0) {
    st->artifacts++;
    return 0;
  }
  if (err->code != TRK_E_CLIENT) return -1;
  LOG_WARN("MLflow refused artifact %s (kept in rejected.jsonl): %s", local, err->msg);
  reject(spool_dir, r, err->msg, st);
  dp_err_clear(err);
  return 0;
}

static int send_status(trk_client *c, const char *spool_dir, const trk_ident *id, const trk_rec *r,
                       trk_ship_stats *st, dp_err *err) {
  int terminal = strcmp(r->value, "RUNNING") && strcmp(r->value, "SCHEDULED");
  st->requests++;
  if (trk_run_update(c, id->run_id, r->value, terminal ? r->ts : 0, err) == 0) {
    st->statuses++;
    return 0;
  }
  if (err->code != TRK_E_CLIENT) return -1;
  LOG_WARN("MLflow refused run status %s (kept in rejected.jsonl): %s", r->value, err->msg);
  reject(spool_dir, r, err->msg, st);
  dp_err_clear(err);
  return 0;
}

int trk_ship(trk_client *c, const char *spool_dir, trk_ident *id, trk_ship_stats *st, dp_err *err) {
  int64_t off = trk_cursor_load(spool_dir, err);
  if (off < 0) {
    err->code = TRK_E_LOCAL;
    return -1;
  }
  int64_t size = 0;
  trk_rec *r = NULL;
  int n = trk_spool_read(spool_dir, off, 1, &r, &size, err);
  if (n < 0) {
    err->code = TRK_E_LOCAL;
    return -1;
  }
  trk_recs_free(r, n);
  if (n == 0) return 0;   // nothing new: no need to reach the server
  if (trk_ensure_run(c, spool_dir, id, err)) return -1;
  trk_limits lim;
  trk_limits_mlflow(&lim);
  for (;;) {
    n = trk_spool_read(spool_dir, off, 5000, &r, NULL, err);
    if (n < 0) {
      err->code = TRK_E_LOCAL;
      return -1;
    }
    if (n == 0) return 0;
    int i = 0;
    while (i < n) {
      int k = trk_plan_batch(r + i, n - i, &lim);
      int rc;
      if (is_kv(&r[i])) rc = send_kv(c, spool_dir, id, r + i, k, st, err);
      else if (r[i].kind == TRK_REC_ARTIFACT) rc = send_artifact(c, spool_dir, id, &r[i], st, err);
      else if (r[i].kind == TRK_REC_STATUS) rc = send_status(c, spool_dir, id, &r[i], st, err);
      else {
        LOG_WARN("MLflow spool: unreadable record at byte %lld of %s/records.jsonl: %s", (long long)r[i].off,
                 spool_dir, r[i].value);
        reject(spool_dir, &r[i], r[i].value, st);
        rc = 0;
      }
      if (rc) {
        trk_recs_free(r, n);
        return -1;
      }
      off = r[i + k - 1].end_off;
      if (trk_cursor_save(spool_dir, off, err)) {
        err->code = TRK_E_LOCAL;
        trk_recs_free(r, n);
        return -1;
      }
      i += k;
    }
    trk_recs_free(r, n);
  }
}
