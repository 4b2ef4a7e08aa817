#include "train/results.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/check.h"
#include "core/afile.h"
#include "core/json.h"

void step_series_add(step_series *s, double x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->v = dp_realloc(s->v, (size_t)s->cap * sizeof(double), "step series");
  }
  s->v[s->n++] = x;
}

void step_series_free(step_series *s) {
  free(s->v);
  memset(s, 0, sizeof *s);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

step_stats step_series_stats(const step_series *s) {
  step_stats st = {NAN, NAN, NAN, NAN, s->n};
  if (s->n < 2) return st;
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < s->n; i++) sum += s->v[i];
  st.mean = sum / (double)s->n;
  for (int64_t i = 0; i < s->n; i++) sq += (s->v[i] - st.mean) * (s->v[i] - st.mean);
  st.cv = st.mean > 0 ? sqrt(sq / (double)(s->n - 1)) / st.mean : NAN;
  double *c = dp_malloc((size_t)s->n * sizeof(double), "step series sort");
  memcpy(c, s->v, (size_t)s->n * sizeof(double));
  qsort(c, (size_t)s->n, sizeof(double), cmp_double);
  // Linear interpolation between order statistics (numpy's default).
  double pos[2] = {0.5 * (double)(s->n - 1), 0.95 * (double)(s->n - 1)};
  double out[2];
  for (int k = 0; k < 2; k++) {
    int64_t lo = (int64_t)floor(pos[k]);
    int64_t hi = lo + 1 < s->n ? lo + 1 : lo;
    out[k] = c[lo] + (pos[k] - (double)lo) * (c[hi] - c[lo]);
  }
  st.median = out[0];
  st.p95 = out[1];
  free(c);
  return st;
}

double run_load_average_1m(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (!f) return NAN;
  double a = NAN;
  if (fscanf(f, "%lf", &a) != 1) a = NAN;
  fclose(f);
  return a;
}

double run_process_cpu_s(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return NAN;
  return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
         1e-6 * (double)ru.ru_stime.tv_usec;
}

double run_cpu_share(double cpu_s, double wall_s, int cores) {
  if (!(cpu_s >= 0) || !(wall_s > 0) || cores < 1) return NAN;
  double s = cpu_s / (wall_s * (double)cores);
  return s > 1 ? 1 : s;
}

void run_results_init(run_results *r) {
  memset(r, 0, sizeof *r);
  r->kind = "train";
  r->status = "completed";
  r->best_step = -1;
  r->best_metric = NAN;
  r->step_images_per_s = NAN;
  r->segments = 1;
  r->comm_hidden_fraction = NAN;
  r->baseline_images_per_s = NAN;
  r->baseline_macro_f1 = NAN;
  r->scaling_efficiency = NAN;
  r->f1_delta = NAN;
  r->mfu = NAN;
  r->cost_usd = NAN;
  r->projected_cost_usd = NAN;
  r->projected_time_s = NAN;
  r->peak_flops_per_rank = NAN;
  r->price_per_rank_hour = NAN;
  r->load_start = NAN;
  r->cpu_share_mean = r->cpu_share_min = NAN;
  snprintf(r->device, sizeof r->device, "cpu");
  snprintf(r->precision, sizeof r->precision, "fp32");
}

void run_results_free(run_results *r) {
  free(r->per_rank);
  step_series_free(&r->steps_hist);
  step_series_free(&r->baseline_hist);
  if (r->evaluated) class_metrics_free(&r->q);
  if (r->adjusted) class_metrics_free(&r->q_adj);
  free(r->logit_bias);
  memset(r, 0, sizeof *r);
}

static void timing_obj(dp_json *j, const rank_timing *t) {
  dp_json_kv_double(j, "step_s", t->step_s);
  dp_json_kv_double(j, "data_wait_s", t->data_wait_s);
  dp_json_kv_double(j, "forward_backward_s", t->forward_backward_s);
  dp_json_kv_double(j, "comm_wait_s", t->comm_wait_s);
  dp_json_kv_double(j, "optimizer_s", t->optimizer_s);
  dp_json_kv_double(j, "comm_span_s", t->comm_span_s);
  dp_json_kv_double(j, "images_per_s", t->images_per_s);
  dp_json_kv_int(j, "peak_rss_bytes", t->peak_rss_bytes);
}

static void quality_obj(dp_json *j, const run_results *r) {
  const class_metrics *q = &r->q;
  dp_json_kv_bool(j, "evaluated", r->evaluated);
  if (!r->evaluated) return;
  dp_json_kv_int(j, "samples", q->total);
  dp_json_kv_double(j, "accuracy", q->accuracy);
  dp_json_kv_double(j, "macro_f1", q->macro_f1);
  dp_json_kv_double(j, "val_loss", q->loss);            // plain cross-entropy
  dp_json_kv_double(j, "val_objective", q->objective);  // the training loss (smoothing, class weights)
  dp_json_kv_int(j, "excluded_corrupt", q->excluded);
  dp_json_key(j, "class_names");
  dp_json_begin_array(j);
  for (int c = 0; c < q->num_classes; c++) {
    char nm[32];
    snprintf(nm, sizeof nm, "%d", c);
    dp_json_string(j, r->class_names && r->class_names[c] ? r->class_names[c] : nm);
  }
  dp_json_end_array(j);
  if (r->augment_policy[0]) dp_json_kv_string(j, "augment_policy", r->augment_policy);
  if (r->adjusted) {   // argmax(logits + logit_bias): reported beside, never instead of, the raw argmax
    const class_metrics *a = &r->q_adj;
    int C = a->num_classes;
    double *bias = dp_malloc(sizeof(double) * (size_t)C, "logit bias");
    for (int c = 0; c < C; c++) bias[c] = r->logit_bias[c];
    dp_json_key(j, "logit_adjusted");
    dp_json_begin_object(j);
    dp_json_kv_string(j, "split", r->adjust_split);
    dp_json_kv_double_array(j, "logit_bias", bias, C);
    free(bias);
    dp_json_kv_double(j, "accuracy", a->accuracy);
    dp_json_kv_double(j, "macro_f1", a->macro_f1);
    dp_json_kv_double_array(j, "f1", a->f1, a->num_classes);
    dp_json_kv_double_array(j, "precision", a->precision, a->num_classes);
    dp_json_kv_double_array(j, "recall", a->recall, a->num_classes);
    dp_json_key(j, "confusion");
    dp_json_begin_array(j);
    for (int c = 0; c < a->num_classes; c++) {
      dp_json_begin_array(j);
      for (int k = 0; k < a->num_classes; k++) dp_json_int(j, a->confusion[(int64_t)c * a->num_classes + k]);
      dp_json_end_array(j);
    }
    dp_json_end_array(j);
    dp_json_end_object(j);
  }
  dp_json_kv_double_array(j, "precision", q->precision, q->num_classes);
  dp_json_kv_double_array(j, "recall", q->recall, q->num_classes);
  dp_json_kv_double_array(j, "f1", q->f1, q->num_classes);
  dp_json_kv_int_array(j, "support", q->support, q->num_classes);
  dp_json_key(j, "confusion");   // rows = true class, columns = predicted
  dp_json_begin_array(j);
  for (int c = 0; c < q->num_classes; c++) {
    dp_json_begin_array(j);
    for (int k = 0; k < q->num_classes; k++) dp_json_int(j, q->confusion[(int64_t)c * q->num_classes + k]);
    dp_json_end_array(j);
  }
  dp_json_end_array(j);
}

void run_results_quality_json(void *json, const run_results *r) { quality_obj(json, r); }

static void cpu_model_name(char *out, size_t n) {
  snprintf(out, n, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10)) continue;
    const char *c = strchr(line, ':');
    if (!c) break;
    c++;
    while (*c == ' ' || *c == '\t') c++;
    snprintf(out, n, "%s", c);
    out[strcspn(out, "\n")] = 0;
    break;
  }
  fclose(f);
}

static void stats_obj(dp_json *j, const char *key, const step_series *series) {
  step_stats st = step_series_stats(series);
  dp_json_key(j, key);
  dp_json_begin_object(j);
  dp_json_kv_int(j, "n", st.n);
  dp_json_kv_double(j, "mean_s", st.mean);
  dp_json_kv_double(j, "cv", st.cv);
  dp_json_kv_double(j, "median_s", st.median);
  dp_json_kv_double(j, "p95_s", st.p95);
  dp_json_end_object(j);
}

// What the study needs to judge a measurement: the step-time spread, the
// link the gradients crossed, which binary ran on which device, and the
// machine and its load (a shared machine gives noisy figures).
static void study_fields(dp_json *j, const run_results *r) {
  stats_obj(j, "step_stats", &r->steps_hist);            // slowest-rank step time over the timed steps
  stats_obj(j, "baseline_step_stats", &r->baseline_hist); // the in-job baseline's timed steps (n = 0 without one)

  dp_json_key(j, "comm");
  dp_json_begin_object(j);
  double bytes = 4.0 * (double)r->params;   // fp32 gradients
  dp_json_kv_double(j, "grad_bytes", bytes);
  dp_json_kv_double(j, "allreduce_ref_s", r->comm_ref_s > 0 ? r->comm_ref_s : NAN);
  double n = (double)r->world_size;
  dp_json_kv_double(j, "bus_bandwidth_Bps", r->comm_ref_s > 0 && n > 1 ? 2 * (n - 1) / n * bytes / r->comm_ref_s : NAN);
  dp_json_kv_string(j, "formula", "bus bandwidth = 2 (N-1)/N x grad_bytes / allreduce_ref_s (blocking all-reduce timed at start-up)");
  dp_json_end_object(j);

  dp_json_key(j, "build");
  dp_json_begin_object(j);
  dp_json_kv_string(j, "version", DP_VERSION);
  dp_json_kv_string(j, "git", DP_GIT_DESCRIBE);
#ifdef DP_HAVE_CUDA
  dp_json_kv_bool(j, "cuda_compiled", 1);
#else
  dp_json_kv_bool(j, "cuda_compiled", 0);
#endif
  dp_json_kv_string(j, "device", r->device);   // what this run's ranks computed on
  dp_json_end_object(j);

  dp_json_key(j, "machine");
  dp_json_begin_object(j);
  char cpu[256];
  cpu_model_name(cpu, sizeof cpu);
  dp_json_kv_string(j, "cpu_model", cpu);
  dp_json_kv_int(j, "cpus_online", sysconf(_SC_NPROCESSORS_ONLN));
  double la[3] = {NAN, NAN, NAN};
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = la[1] = la[2] = NAN;
    fclose(f);
  }
  // CPU seconds the ranks got in the training loop / (loop wall x cores):
  // below 1 on a shared machine (other jobs took the rest).
  dp_json_kv_double(j, "cpu_share_mean", r->cpu_share_mean);
  dp_json_kv_double(j, "cpu_share_min", r->cpu_share_min);
  dp_json_kv_double(j, "load_1m_start", r->load_start);
  dp_json_kv_double(j, "load_1m_end", la[0]);
  dp_json_kv_double(j, "load_5m_end", la[1]);
  dp_json_kv_double(j, "load_15m_end", la[2]);
  dp_json_end_object(j);
}

static void utc_now(char *ts, size_t n) {
  time_t now = time(NULL);
  struct tm tmv;
  gmtime_r(&now, &tmv);
  strftime(ts, n, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

int run_results_write_failed(const char *path, const train_config *cfg, const char *reason, int rank,
                             const char *host, int64_t step) {
  dp_err e;
  dp_err_clear(&e);
  dp_afile *af = dp_afile_open(path, &e);
  if (!af) {
    fprintf(stderr, "dptrain: %s\n", e.msg);
    return -1;
  }
  dp_json j;
  dp_json_init(&j, dp_afile_stream(af), 1);
  dp_json_begin_object(&j);
  dp_json_kv_int(&j, "schema_version", RESULTS_SCHEMA_VERSION);
  dp_json_kv_string(&j, "kind", "train");
  dp_json_kv_string(&j, "status", "failed");
  dp_json_kv_string(&j, "reason", reason);
  dp_json_kv_int(&j, "failed_rank", rank);
  dp_json_kv_string(&j, "failed_host", host ? host : "");
  dp_json_kv_int(&j, "step", step);
  char ts[64];
  utc_now(ts, sizeof ts);
  dp_json_kv_string(&j, "created_utc", ts);
  if (cfg) {
    dp_json_key(&j, "config");
    dp_json_begin_object(&j);
    train_config_write_json(cfg, &j);
    dp_json_end_object(&j);
  }
  dp_json_end_object(&j);
  fputc('\n', dp_afile_stream(af));
  if (dp_afile_commit(af, &e)) {
    fprintf(stderr, "dptrain: %s\n", e.msg);
    return -1;
  }
  return 0;
}

static void state_obj(dp_json *j, const run_results *r) {
  dp_json_kv_string(j, "status", r->status ? r->status : "completed");
  dp_json_kv_int(j, "segments", r->segments);
  dp_json_kv_string(j, "resumed_from", r->resumed_from);
  dp_json_kv_string(j, "config_hash", r->config_hash);
  dp_json_kv_string(j, "data_fingerprint", r->data_fingerprint);
  dp_json_kv_string(j, "init_weights", r->init_weights);
  dp_json_key(j, "checkpoints");
  dp_json_begin_object(j);
  dp_json_kv_int(j, "written", r->checkpoints_written);
  dp_json_kv_int(j, "failures", r->checkpoint_failures);
  dp_json_kv_string(j, "last_path", r->checkpoint_last_path);
  dp_json_kv_int(j, "last_bytes", r->checkpoint_last_bytes);
  dp_json_kv_double(j, "last_write_s", r->checkpoint_last_write_s);
  dp_json_kv_double(j, "max_write_s", r->checkpoint_max_write_s);
  dp_json_kv_double(j, "max_step_stall_s", r->checkpoint_max_snapshot_s);
  dp_json_kv_double(j, "total_stall_s", r->checkpoint_stall_s);
  dp_json_kv_string(j, "note", "written on a helper thread from a snapshot; the stall is the snapshot time");
  dp_json_end_object(j);
  dp_json_key(j, "models");
  dp_json_begin_object(j);
  dp_json_key(j, "best");
  dp_json_begin_object(j);
  dp_json_kv_string(j, "file", r->best_step >= 0 ? "model.safetensors" : "");
  dp_json_kv_int(j, "step", r->best_step);
  dp_json_kv_string(j, "metric", r->early_metric);
  dp_json_kv_double(j, "value", r->best_metric);
  dp_json_end_object(j);
  dp_json_key(j, "last");
  dp_json_begin_object(j);
  dp_json_kv_string(j, "file", r->best_step >= 0 ? "model-last.safetensors" : "model.safetensors");
  dp_json_kv_int(j, "step", r->last_step);
  dp_json_end_object(j);
  dp_json_end_object(j);
}

int run_results_write_json(const run_results *r, const train_config *cfg, const char *path) {
  dp_err e;
  dp_err_clear(&e);
  dp_afile *af = dp_afile_open(path, &e);
  if (!af) {
    fprintf(stderr, "dptrain: %s\n", e.msg);
    return -1;
  }
  FILE *f = dp_afile_stream(af);
  dp_json j;
  dp_json_init(&j, f, 1);
  dp_json_begin_object(&j);
  dp_json_kv_int(&j, "schema_version", RESULTS_SCHEMA_VERSION);
  dp_json_kv_string(&j, "kind", r->kind);
  if (!strcmp(r->kind, "train")) dp_json_kv_string(&j, "status", r->status ? r->status : "completed");
  char ts[64];
  utc_now(ts, sizeof ts);
  dp_json_kv_string(&j, "created_utc", ts);
  // Headline fields (flat, for scripts); details below.
  dp_json_kv_int(&j, "world_size", r->world_size);
  dp_json_kv_double(&j, "images_per_s", r->images_per_s);
  dp_json_kv_double(&j, "scaling_efficiency", r->scaling_efficiency);
  dp_json_kv_double(&j, "comm_hidden_fraction", r->comm_hidden_fraction);
  dp_json_kv_double(&j, "cost_usd", r->cost_usd);
  dp_json_kv_double(&j, "projected_cost_usd", r->projected_cost_usd);
  dp_json_kv_double(&j, "macro_f1", r->evaluated ? r->q.macro_f1 : NAN);
  dp_json_kv_double(&j, "accuracy", r->evaluated ? r->q.accuracy : NAN);
  if (r->evaluated) dp_json_kv_double_array(&j, "per_class_f1", r->q.f1, r->q.num_classes);
  else {
    dp_json_key(&j, "per_class_f1");
    dp_json_begin_array(&j);
    dp_json_end_array(&j);
  }
  dp_json_kv_int(&j, "peak_rss_bytes", r->peak_rss_bytes);
  dp_json_kv_double(&j, "mfu", r->mfu);

  if (cfg) {
    dp_json_key(&j, "config");
    dp_json_begin_object(&j);
    train_config_write_json(cfg, &j);
    dp_json_end_object(&j);
  }
  dp_json_key(&j, "hardware");
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "name", r->hardware);
  dp_json_kv_string(&j, "kind", r->hw_kind);
  dp_json_kv_string(&j, "unit", r->hw_unit);
  dp_json_kv_string(&j, "precision", r->precision);
  dp_json_kv_double(&j, "peak_flops_per_rank", r->peak_flops_per_rank);
  dp_json_kv_double(&j, "price_per_rank_hour", r->price_per_rank_hour);
  dp_json_kv_bool(&j, "price_is_estimate", r->price_is_estimate);
  dp_json_kv_int(&j, "cores_per_rank", r->cores_per_rank);
  dp_json_kv_int(&j, "threads_per_rank", r->threads_per_rank);
  dp_json_kv_int(&j, "loader_threads_per_rank", r->loader_threads);
  dp_json_kv_int(&j, "nodes", r->nodes);
  dp_json_kv_string(&j, "hosts", r->hosts);
  dp_json_kv_string(&j, "table", r->hardware_table);
  dp_json_end_object(&j);

  dp_json_key(&j, "model");
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "name", r->model);
  dp_json_kv_int(&j, "params", r->params);
  dp_json_kv_int(&j, "flops_per_image_fwd", r->flops_per_image_fwd);
  if (cfg) dp_json_kv_int(&j, "image_size", cfg->image_size);
  if (cfg) dp_json_kv_int(&j, "batch_per_rank", cfg->batch);
  dp_json_end_object(&j);

  dp_json_key(&j, "throughput");
  dp_json_begin_object(&j);
  dp_json_kv_double(&j, "images_per_s", r->images_per_s);
  dp_json_kv_double(&j, "images_per_s_per_rank", r->world_size ? r->images_per_s / r->world_size : NAN);
  dp_json_kv_int(&j, "global_batch", r->global_batch);
  dp_json_kv_int(&j, "steps", r->steps);
  dp_json_kv_int(&j, "timed_steps", r->timed_steps);
  dp_json_kv_int(&j, "images", r->images);
  dp_json_kv_int(&j, "epochs_done", r->epochs_done);
  dp_json_kv_double(&j, "train_wall_s", r->train_wall_s);
  dp_json_kv_double(&j, "total_wall_s", r->total_wall_s);
  dp_json_kv_double(&j, "step_images_per_s", r->step_images_per_s);
  dp_json_kv_double(&j, "eval_wall_s", r->eval_wall_s);
  dp_json_kv_string(&j, "images_per_s_basis",
                    "wall clock over the timed steps, stalls between steps included, evaluations excluded; "
                    "step_images_per_s sums the step spans only");
  dp_json_kv_double(&j, "mfu", r->mfu);
  dp_json_kv_bool(&j, "stopped_early", r->stopped_early);
  dp_json_kv_string(&j, "stop_reason", r->stop_reason);
  dp_json_end_object(&j);

  dp_json_key(&j, "timings");   // seconds per optimizer step
  dp_json_begin_object(&j);
  timing_obj(&j, &r->mean);
  dp_json_kv_double(&j, "comm_hidden_fraction", r->comm_hidden_fraction);
  dp_json_key(&j, "per_rank");
  dp_json_begin_array(&j);
  for (int i = 0; r->per_rank && i < r->world_size; i++) {
    dp_json_begin_object(&j);
    dp_json_kv_int(&j, "rank", i);
    timing_obj(&j, &r->per_rank[i]);
    dp_json_end_object(&j);
  }
  dp_json_end_array(&j);
  dp_json_end_object(&j);

  if (!strcmp(r->kind, "train")) study_fields(&j, r);

  dp_json_key(&j, "baseline");
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "source", r->baseline_source);
  dp_json_kv_int(&j, "steps", r->baseline_steps);
  dp_json_kv_double(&j, "images_per_s", r->baseline_images_per_s);
  dp_json_kv_double(&j, "macro_f1", r->baseline_macro_f1);
  dp_json_kv_double(&j, "scaling_efficiency", r->scaling_efficiency);
  dp_json_kv_double(&j, "macro_f1_delta", r->f1_delta);
  dp_json_kv_string(&j, "formula", "scaling_efficiency = images_per_s / (world_size * baseline.images_per_s)");
  dp_json_end_object(&j);

  dp_json_key(&j, "cost");
  dp_json_begin_object(&j);
  dp_json_kv_double(&j, "price_per_rank_hour", r->price_per_rank_hour);
  dp_json_kv_bool(&j, "price_is_estimate", r->price_is_estimate);
  dp_json_kv_double(&j, "rank_hours", r->rank_hours);
  dp_json_kv_double(&j, "cost_usd", r->cost_usd);
  dp_json_kv_int(&j, "project_images", r->project_images);
  dp_json_kv_int(&j, "project_epochs", r->project_epochs);
  dp_json_kv_double(&j, "projected_time_s", r->projected_time_s);
  dp_json_kv_double(&j, "projected_cost_usd", r->projected_cost_usd);
  dp_json_kv_string(&j, "formula", "cost = world_size x wall hours x price_per_rank_hour; projected time = images x epochs / images_per_s");
  dp_json_end_object(&j);

  dp_json_key(&j, "quality");
  dp_json_begin_object(&j);
  quality_obj(&j, r);
  dp_json_end_object(&j);

  dp_json_key(&j, "memory");
  dp_json_begin_object(&j);
  dp_json_kv_int(&j, "peak_rss_bytes", r->peak_rss_bytes);
  dp_json_key(&j, "per_rank_peak_rss_bytes");
  dp_json_begin_array(&j);
  for (int i = 0; r->per_rank && i < r->world_size; i++) dp_json_int(&j, r->per_rank[i].peak_rss_bytes);
  dp_json_end_array(&j);
  dp_json_end_object(&j);

  dp_json_key(&j, "data");
  dp_json_begin_object(&j);
  dp_json_kv_int(&j, "decoded", r->decoded);
  dp_json_kv_int(&j, "skipped", r->skipped);
  int64_t tot = r->decoded + r->skipped;
  dp_json_kv_double(&j, "skip_rate", tot ? (double)r->skipped / (double)tot : 0.0);
  dp_json_end_object(&j);

  if (!strcmp(r->kind, "train")) {
    dp_json_key(&j, "state");
    dp_json_begin_object(&j);
    state_obj(&j, r);
    dp_json_end_object(&j);
  }

  dp_json_end_object(&j);
  fputc('\n', f);
  if (dp_afile_commit(af, &e)) {
    fprintf(stderr, "dptrain: %s\n", e.msg);
    return -1;
  }
  return 0;
}

static void fmt_num(char *b, size_t n, double v, const char *fmt) {
  if (isfinite(v)) snprintf(b, n, fmt, v);
  else snprintf(b, n, "n/a");
}

void run_results_print_summary(const run_results *r, FILE *f) {
  char a[64], b[64];
  fprintf(f, "\n==== dptrain summary (%s) ====\n", r->kind);
  fprintf(f, "  %-26s %s, %d rank(s) on %d node(s), %d core(s)/rank\n", "model / ranks", r->model,
          r->world_size, r->nodes, r->cores_per_rank);
  if (!strcmp(r->kind, "train")) {
    fmt_num(a, sizeof a, r->images_per_s, "%.1f");
    fmt_num(b, sizeof b, r->world_size ? r->images_per_s / r->world_size : NAN, "%.1f");
    fprintf(f, "  %-26s %s (%s per rank), global batch %lld\n", "throughput img/s", a, b,
            (long long)r->global_batch);
    fmt_num(a, sizeof a, r->baseline_images_per_s, "%.1f");
    fprintf(f, "  %-26s %s img/s (%s)\n", "single-rank baseline", a,
            r->baseline_source[0] ? r->baseline_source : "none");
    fmt_num(a, sizeof a, 100 * r->scaling_efficiency, "%.1f %%");
    fmt_num(b, sizeof b, 100 * r->comm_hidden_fraction, "%.1f %%");
    fprintf(f, "  %-26s %s (communication hidden: %s)\n", "scaling efficiency", a, b);
    fprintf(f, "  %-26s step %.4f s = data %.4f + fwd/bwd %.4f + comm wait %.4f + optim %.4f\n",
            "time per step (mean)", r->mean.step_s, r->mean.data_wait_s, r->mean.forward_backward_s,
            r->mean.comm_wait_s, r->mean.optimizer_s);
    fmt_num(a, sizeof a, 100 * r->mfu, "%.2f %%");
    fprintf(f, "  %-26s %s of %s (%s)\n", "MFU", a, r->hardware, r->precision);
    fmt_num(a, sizeof a, r->cost_usd, "$%.4f");
    fprintf(f, "  %-26s %s (%.4f rank-hours x $%.3f/rank-hour%s)\n", "cost of this run", a,
            r->rank_hours, r->price_per_rank_hour, r->price_is_estimate ? ", price is an estimate" : "");
    fmt_num(a, sizeof a, r->projected_cost_usd, "$%.2f");
    fmt_num(b, sizeof b, r->projected_time_s / 3600.0, "%.2f h");
    fprintf(f, "  %-26s %s, %s for %lld images x %lld epochs\n", "projected full run", a, b,
            (long long)r->project_images, (long long)r->project_epochs);
    fprintf(f, "  %-26s %.1f MiB (max over ranks)\n", "peak RSS", (double)r->peak_rss_bytes / 1048576.0);
    if (r->skipped) fprintf(f, "  %-26s %lld of %lld records\n", "skipped records", (long long)r->skipped,
                            (long long)(r->skipped + r->decoded));
  }
  if (r->evaluated) {
    fprintf(f, "  %-26s %.4f\n", "accuracy", r->q.accuracy);
    fmt_num(a, sizeof a, r->f1_delta, "%+.4f vs baseline");
    fprintf(f, "  %-26s %.4f (%s)\n", "macro-F1", r->q.macro_f1, isfinite(r->f1_delta) ? a : "no baseline F1");
    if (r->adjusted)
      fprintf(f, "  %-26s %.4f (logit-adjusted, %s)\n", "macro-F1 adjusted", r->q_adj.macro_f1, r->adjust_split);
    fprintf(f, "  %-26s", "per-class F1");
    for (int c = 0; c < r->q.num_classes; c++)
      fprintf(f, "%s %s %.3f", c ? "," : "", r->class_names && r->class_names[c] ? r->class_names[c] : "?", r->q.f1[c]);
    fputc('\n', f);
  } else {
    fprintf(f, "  %-26s not evaluated (no --val)\n", "quality");
  }
  fprintf(f, "==============================\n");
}
