#include "train/tracking.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "track/mlflow.h"
#include "track/tracker.h"
#include "train/lineage.h"

struct run_tracking {
  trk_tracker *trk;
  char out[TC_PATH_MAX];
  double drain_s;
  int64_t interval, total_steps;
  // Sums over the current log interval.
  double loss_sum, img_s_sum;
  int64_t n;
  int num_classes;
  char **class_keys;   // (num_classes) "val_f1/<name>"
};

void run_tracking_spool_dir(const train_config *c, char *out, size_t n) {
  snprintf(out, n, "%s/%s", c->out, TRK_SPOOL_DIRNAME);
}

// A URI's user:password@ never goes into MLflow (use MLFLOW_TRACKING_USERNAME
// and _PASSWORD instead).
static void redact_userinfo(const char *uri, char *out, size_t n) {
  const char *p = strstr(uri, "://");
  const char *host = p ? p + 3 : uri;
  const char *at = strchr(host, '@'), *slash = strchr(host, '/');
  if (p && at && (!slash || at < slash)) snprintf(out, n, "%.*s***%s", (int)(host - uri), uri, at);
  else snprintf(out, n, "%s", uri);
}

static void param_one(const char *name, const char *value, void *ctx) {
  if (!strcmp(name, "mlflow-uri")) {
    char r[TC_PATH_MAX + 8];
    redact_userinfo(value, r, sizeof r);
    trk_param(ctx, name, r);
    return;
  }
  trk_param(ctx, name, value);
}

static void tag_int(trk_tracker *t, const char *k, int64_t v) {
  char b[32];
  snprintf(b, sizeof b, "%lld", (long long)v);
  trk_tag(t, k, b);
}

static const char *tracking_uri(const train_config *c) {
  if (c->mlflow_uri[0]) return c->mlflow_uri;   // checked by train_config_check
  const char *e = getenv("MLFLOW_TRACKING_URI");
  if (!e || !e[0]) return NULL;
  char why[512];
  if (trk_uri_check(e, why, sizeof why)) {
    // Other tools use file: or databricks URIs here; that is not an error of this run.
    LOG_WARN("MLFLOW_TRACKING_URI: %s; no tracking (pass --mlflow-uri to track)", why);
    return NULL;
  }
  return e;
}

run_tracking *run_tracking_open(const train_config *c, int rank, const run_tracking_info *info) {
  if (rank != 0) return NULL;
  lineage lin;
  dp_err err;
  dp_err_clear(&err);
  char path[TC_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/lineage.json", c->out);
  int lc = lineage_collect(&lin, c, info->train_paths, info->ntrain, info->val_paths, info->nval, &err);
  // The real parent (not the --resume setting, which may read "auto").
  if (!lc) snprintf(lin.parent_checkpoint, sizeof lin.parent_checkpoint, "%s",
                    info->parent_checkpoint ? info->parent_checkpoint : "");
  if (lc || lineage_write(path, &lin, &err))
    DP_FATAL("writing lineage.json", "check --out and the shards", "%s", err.msg);
  const char *uri = tracking_uri(c);
  if (!uri) return NULL;

  char spool[TC_PATH_MAX + 64], run_name[256];
  run_tracking_spool_dir(c, spool, sizeof spool);
  const char *exp = c->mlflow_experiment[0] ? c->mlflow_experiment : getenv("MLFLOW_EXPERIMENT_NAME");
  if (c->run_name[0]) {
    snprintf(run_name, sizeof run_name, "%s", c->run_name);
  } else {
    size_t L = strlen(c->out);
    while (L > 1 && c->out[L - 1] == '/') L--;
    const char *s = c->out + L;
    while (s > c->out && s[-1] != '/') s--;
    snprintf(run_name, sizeof run_name, "%.*s", (int)(c->out + L - s), s);
  }
  trk_open_opts o = {uri, exp && exp[0] ? exp : "dptrain", run_name, spool, c->mlflow_timeout, info->resuming};
  int resumed = 0;
  trk_tracker *trk = trk_open(&o, &resumed, &err);
  if (!trk) {
    LOG_WARN("MLflow: %s; this run is not tracked", err.msg);
    return NULL;
  }
  run_tracking *t = dp_calloc(1, sizeof *t, "run tracking");
  t->trk = trk;
  snprintf(t->out, sizeof t->out, "%s", c->out);
  t->drain_s = c->mlflow_timeout < 10 ? c->mlflow_timeout : 10;
  t->interval = c->log_every > 0 ? c->log_every : 10;
  t->total_steps = info->total_steps;
  t->num_classes = info->num_classes;
  t->class_keys = dp_calloc((size_t)(info->num_classes > 0 ? info->num_classes : 1), sizeof(char *), "f1 keys");
  for (int k = 0; k < info->num_classes; k++) {
    char key[300];
    snprintf(key, sizeof key, "val_f1/%s", info->class_names && info->class_names[k] ? info->class_names[k] : "");
    if (!info->class_names || !info->class_names[k]) snprintf(key, sizeof key, "val_f1/class%d", k);
    t->class_keys[k] = dp_strdup(key);
  }
  if (resumed) {
    trk_status(trk, "RUNNING");
    trk_tag(trk, "dptrain.resumed", "true");
  }
  train_config_foreach(c, param_one, trk);
  trk_tag(trk, "mlflow.source.git.commit", lin.git_commit);
  trk_tag(trk, "dptrain.git_commit", lin.git_describe);
  trk_tag(trk, "dptrain.version", lin.version);
  trk_tag(trk, "dptrain.data_fingerprint", lin.data_fingerprint);
  if (lin.val_fingerprint[0]) trk_tag(trk, "dptrain.val_fingerprint", lin.val_fingerprint);
  trk_tag(trk, "dptrain.config_hash", lin.config_hash);
  trk_tag(trk, "dptrain.hardware", info->hardware ? info->hardware : "");
  trk_tag(trk, "dptrain.device", info->device ? info->device : "");
  trk_tag(trk, "dptrain.precision", info->precision ? info->precision : "");
  tag_int(trk, "dptrain.world_size", info->world);
  tag_int(trk, "dptrain.nodes", info->nodes);
  tag_int(trk, "dptrain.train_records", lin.train_records);
  char abs[TC_PATH_MAX + 8];
  if (realpath(c->out, abs)) trk_tag(trk, "dptrain.out", abs);
  const char *job = getenv("SLURM_JOB_ID");
  if (job) trk_tag(trk, "dptrain.slurm_job_id", job);
  if (lin.init_weights[0]) trk_tag(trk, "dptrain.init_weights", lin.init_weights);
  trk_flush(trk);
  LOG_INFO("MLflow: tracking to %s (experiment '%s', run '%s'); spool %s", uri, o.experiment, run_name, spool);
  return t;
}

void run_tracking_step(run_tracking *t, int64_t step, int64_t epoch, double loss, double img_s, double lr) {
  if (!t) return;
  t->loss_sum += loss;
  t->img_s_sum += img_s;
  t->n++;
  if (step % t->interval != 0 && step != t->total_steps) return;
  trk_metric(t->trk, "train_loss", t->loss_sum / (double)t->n, step);
  trk_metric(t->trk, "img_per_s", t->img_s_sum / (double)t->n, step);
  trk_metric(t->trk, "lr", lr, step);
  trk_metric(t->trk, "epoch", (double)epoch, step);
  trk_flush(t->trk);
  t->loss_sum = t->img_s_sum = 0;
  t->n = 0;
}

void run_tracking_eval(run_tracking *t, int64_t step, const class_metrics *m) {
  if (!t) return;
  trk_metric(t->trk, "val_macro_f1", m->macro_f1, step);
  trk_metric(t->trk, "val_accuracy", m->accuracy, step);
  trk_metric(t->trk, "val_loss", m->loss, step);
  for (int k = 0; k < m->num_classes && k < t->num_classes; k++) trk_metric(t->trk, t->class_keys[k], m->f1[k], step);
  trk_flush(t->trk);
}

static void metric_if(trk_tracker *t, const char *k, double v, int64_t step) {
  if (isfinite(v)) trk_metric(t, k, v, step);   // null in results.json: nothing to plot
}

void run_tracking_results(run_tracking *t, const run_results *r) {
  if (!t) return;
  int64_t s = r->steps;
  metric_if(t->trk, "images_per_s", r->images_per_s, s);
  metric_if(t->trk, "scaling_efficiency", r->scaling_efficiency, s);
  metric_if(t->trk, "comm_hidden_fraction", r->comm_hidden_fraction, s);
  metric_if(t->trk, "mfu", r->mfu, s);
  metric_if(t->trk, "cost_usd", r->cost_usd, s);
  metric_if(t->trk, "projected_cost_usd", r->projected_cost_usd, s);
  metric_if(t->trk, "peak_rss_bytes", (double)r->peak_rss_bytes, s);
  metric_if(t->trk, "train_wall_s", r->train_wall_s, s);
  metric_if(t->trk, "total_wall_s", r->total_wall_s, s);
  if (r->evaluated) {
    metric_if(t->trk, "macro_f1", r->q.macro_f1, s);
    metric_if(t->trk, "accuracy", r->q.accuracy, s);
  }
  trk_flush(t->trk);
}

void run_tracking_close(run_tracking *t, const char *status) {
  if (!t) return;
  static const char *const always[] = {"results.json", "steps.csv", "config.ini", "lineage.json",
                                       "model.safetensors"};
  static const char *const optional[] = {"model-last.safetensors", "model.onnx", "report.md", "eval_results.json"};
  char path[TC_PATH_MAX + 64];
  for (size_t i = 0; i < sizeof always / sizeof always[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", t->out, always[i]);
    trk_artifact(t->trk, path, "");
  }
  for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", t->out, optional[i]);
    if (access(path, R_OK) == 0) trk_artifact(t->trk, path, "");
  }
  if (status) trk_status(t->trk, status);   // NULL (preempted): stays RUNNING for the resumed job
  trk_close(t->trk, t->drain_s);
  for (int k = 0; k < t->num_classes; k++) free(t->class_keys[k]);
  free(t->class_keys);
  free(t);
}
