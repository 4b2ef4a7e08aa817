#include "train/results.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/check.h"
#include "core/json.h"

void run_results_init(run_results *r) {
  memset(r, 0, sizeof *r);
  r->kind = "train";
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
  snprintf(r->precision, sizeof r->precision, "fp32");
}

void run_results_free(run_results *r) {
  free(r->per_rank);
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

int run_results_write_json(const run_results *r, const train_config *cfg, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "dptrain: cannot write '%s': %s\n", path, strerror(errno));
    return -1;
  }
  dp_json j;
  dp_json_init(&j, f, 1);
  dp_json_begin_object(&j);
  dp_json_kv_int(&j, "schema_version", RESULTS_SCHEMA_VERSION);
  dp_json_kv_string(&j, "kind", r->kind);
  char ts[64];
  time_t now = time(NULL);
  struct tm tmv;
  gmtime_r(&now, &tmv);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tmv);
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

  dp_json_end_object(&j);
  fputc('\n', f);
  if (fclose(f) != 0) {
    fprintf(stderr, "dptrain: writing '%s' failed: %s\n", path, strerror(errno));
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
