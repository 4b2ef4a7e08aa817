#include "study/runs.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/jsonread.h"

const char *sr_family(const char *model) {
  if (!strncmp(model, "resnet", 6)) return "resnet";
  if (!strncmp(model, "vit", 3)) return "vit";
  if (!strncmp(model, "cnn", 3)) return "cnn";
  return model;
}

static void add_flag(sr_run *r, const char *fmt, ...) {
  size_t len = strlen(r->flags);
  if (len + 3 >= sizeof r->flags) return;
  if (len) {
    strcat(r->flags, "; ");
    len += 2;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->flags + len, sizeof r->flags - len, fmt, ap);
  va_end(ap);
}

static void copy_str(char *dst, size_t n, const jv *v, const char *path, const char *dflt) {
  snprintf(dst, n, "%s", jv_str(v, path, dflt));
}

// Step-time CV from steps.csv next to results.json (files written before
// results.json had step_stats): the timed rows' step_s_max.
static double cv_from_steps_csv(const char *results_path) {
  char p[1100];
  snprintf(p, sizeof p, "%s", results_path);
  char *slash = strrchr(p, '/');
  if (slash) snprintf(slash + 1, sizeof p - (size_t)(slash + 1 - p), "steps.csv");
  else snprintf(p, sizeof p, "steps.csv");
  FILE *f = fopen(p, "r");
  if (!f) return NAN;
  char line[4096];
  int col_timed = -1, col_step = -1;
  double sum = 0, sq = 0;
  int64_t n = 0;
  if (fgets(line, sizeof line, f)) {
    int c = 0;
    for (char *save = NULL, *t = strtok_r(line, ",\n", &save); t; t = strtok_r(NULL, ",\n", &save), c++) {
      if (!strcmp(t, "timed")) col_timed = c;
      if (!strcmp(t, "step_s_max")) col_step = c;
    }
  }
  double *v = NULL;
  int64_t cap = 0;
  while (col_timed >= 0 && col_step >= 0 && fgets(line, sizeof line, f)) {
    int c = 0, timed = 0;
    double x = NAN;
    for (char *save = NULL, *t = strtok_r(line, ",\n", &save); t; t = strtok_r(NULL, ",\n", &save), c++) {
      if (c == col_timed) timed = atoi(t);
      if (c == col_step) x = atof(t);
    }
    if (!timed || !(x > 0)) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      v = dp_realloc(v, (size_t)cap * sizeof(double), "steps.csv values");
    }
    v[n++] = x;
    sum += x;
  }
  fclose(f);
  double cv = NAN;
  if (n >= 2) {
    double mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++) sq += (v[i] - mean) * (v[i] - mean);
    cv = sqrt(sq / (double)(n - 1)) / mean;
  }
  free(v);
  return cv;
}

static int load_one(sr_run *r, const char *path, char *err, int err_sz) {
  memset(r, 0, sizeof *r);
  char e[512];
  jv *v = jv_parse_file(path, e, sizeof e);
  if (!v) {
    snprintf(err, err_sz, "%s", e);
    return -1;
  }
  const char *kind = jv_str(v, "kind", "");
  if (jv_num(v, "schema_version", 0) != 1 || (strcmp(kind, "train") && strcmp(kind, "eval"))) {
    snprintf(err, err_sz, "%s: not a schema-1 results.json (kind train or eval)", path);
    jv_free(v);
    return -1;
  }
  snprintf(r->path, sizeof r->path, "%s", path);
  snprintf(r->kind, sizeof r->kind, "%s", kind);
  copy_str(r->model, sizeof r->model, v, "model.name", "?");
  snprintf(r->family, sizeof r->family, "%s", sr_family(r->model));
  r->image_size = (int64_t)jv_num(v, "model.image_size", jv_num(v, "config.image_size", 0));
  r->batch = (int64_t)jv_num(v, "model.batch_per_rank", jv_num(v, "config.batch", 0));
  r->world = (int)jv_num(v, "world_size", 1);
  r->nodes = (int)jv_num(v, "hardware.nodes", 1);
  r->cores_per_rank = (int)jv_num(v, "hardware.cores_per_rank", 0);
  copy_str(r->hardware, sizeof r->hardware, v, "hardware.name", "?");
  copy_str(r->hw_kind, sizeof r->hw_kind, v, "hardware.kind", "");
  copy_str(r->precision, sizeof r->precision, v, "hardware.precision", "fp32");
  copy_str(r->device, sizeof r->device, v, "build.device", "");
  r->cuda_compiled = (int)jv_num(v, "build.cuda_compiled", 0);
  r->peak_flops_per_rank = jv_num(v, "hardware.peak_flops_per_rank", NAN);
  r->price_per_rank_hour = jv_num(v, "hardware.price_per_rank_hour", NAN);
  r->flops_fwd = jv_num(v, "model.flops_per_image_fwd", NAN);
  r->params = jv_num(v, "model.params", NAN);
  r->grad_bytes = jv_num(v, "comm.grad_bytes", 4 * r->params);
  r->img_s = jv_num(v, "images_per_s", NAN);
  r->mfu = r->peak_flops_per_rank > 0 && r->flops_fwd > 0 && r->img_s > 0
               ? 3 * r->flops_fwd * r->img_s / ((double)r->world * r->peak_flops_per_rank) : NAN;
  r->cpu_share = jv_num(v, "machine.cpu_share_mean", NAN);
  r->mfu_core = r->cpu_share > 0 && !strcmp(r->hw_kind, "cpu") ? r->mfu / r->cpu_share : r->mfu;
  r->eff = jv_num(v, "scaling_efficiency", NAN);
  r->hidden = jv_num(v, "comm_hidden_fraction", NAN);
  r->step_cv = jv_num(v, "step_stats.cv", NAN);
  if (isnan(r->step_cv) && !strcmp(kind, "train")) r->step_cv = cv_from_steps_csv(path);
  r->step_mean_s = jv_num(v, "step_stats.mean_s", jv_num(v, "timings.step_s", NAN));
  r->baseline_cv = jv_num(v, "baseline_step_stats.cv", NAN);
  r->baseline_img_s = jv_num(v, "baseline.images_per_s", NAN);
  copy_str(r->baseline_source, sizeof r->baseline_source, v, "baseline.source", "");
  r->baseline_steps = (int64_t)jv_num(v, "baseline.steps", 0);
  r->timed_steps = (int64_t)jv_num(v, "throughput.timed_steps", 0);
  r->bus_bps = jv_num(v, "comm.bus_bandwidth_Bps", NAN);
  r->data_wait_s = jv_num(v, "timings.data_wait_s", NAN);
  r->step_s = jv_num(v, "timings.step_s", NAN);
  r->evaluated = jv_num(v, "quality.evaluated", 0) != 0;
  r->macro_f1 = jv_num(v, "macro_f1", NAN);
  r->accuracy = jv_num(v, "accuracy", NAN);
  r->eval_samples = (int64_t)jv_num(v, "quality.samples", 0);
  r->epochs_done = (int64_t)jv_num(v, "throughput.epochs_done", 0);
  r->images_seen = (int64_t)jv_num(v, "throughput.images", 0);
  r->steps = (int64_t)jv_num(v, "throughput.steps", 0);
  const jv *cn = jv_path(v, "quality.class_names");
  r->classes = cn && cn->type == JV_ARR ? cn->n : 0;
  copy_str(r->host, sizeof r->host, v, "hardware.hosts", "?");
  copy_str(r->cpu_model, sizeof r->cpu_model, v, "machine.cpu_model", "not recorded");
  copy_str(r->created, sizeof r->created, v, "created_utc", "");
  r->cpus_online = (int)jv_num(v, "machine.cpus_online", 0);
  r->load_start = jv_num(v, "machine.load_1m_start", NAN);
  r->load_end = jv_num(v, "machine.load_1m_end", NAN);
  jv_free(v);
  if (!strcmp(r->kind, "train") && (!(r->image_size > 0) || !(r->flops_fwd > 0))) {
    snprintf(err, err_sz, "%s: no image size or FLOP count (model.image_size / config.image_size, model.flops_per_image_fwd)",
             path);
    return -1;
  }
  return 0;
}

int sr_load(sr_set *s, const char *const *paths, int npaths, char *err, int err_sz) {
  s->r = dp_realloc(s->r, (size_t)(s->n + npaths + 1) * sizeof(sr_run), "study runs");
  for (int i = 0; i < npaths; i++) {
    if (load_one(&s->r[s->n], paths[i], err, err_sz)) return -1;
    s->n++;
  }
  return 0;
}

void sr_free(sr_set *s) {
  free(s->r);
  s->r = NULL;
  s->n = 0;
}

int sr_same_series(const sr_run *a, const sr_run *b) {
  return !strcmp(a->model, b->model) && a->image_size == b->image_size && a->batch == b->batch &&
         !strcmp(a->hardware, b->hardware) && !strcmp(a->kind, b->kind);
}

void sr_check(sr_set *s) {
  for (int i = 0; i < s->n; i++) {
    sr_run *r = &s->r[i];
    r->flags[0] = 0;
    r->noisy = r->loaded = r->eff_refused = 0;
    if (strcmp(r->kind, "train")) continue;
    // A baseline taken from another file must be the same model at the same
    // image size and batch; otherwise the efficiency compares two workloads.
    if (r->world > 1 && r->baseline_source[0] && strcmp(r->baseline_source, "in-job")) {
      const sr_run *b = NULL;
      sr_run tmp;
      for (int k = 0; k < s->n && !b; k++)
        if (!strcmp(s->r[k].path, r->baseline_source)) b = &s->r[k];
      char e[256];
      if (!b && load_one(&tmp, r->baseline_source, e, sizeof e) == 0) b = &tmp;
      if (b && (strcmp(b->model, r->model) || b->image_size != r->image_size || b->batch != r->batch)) {
        r->eff_refused = 1;
        add_flag(r, "efficiency refused: its baseline %s is %s at %lld px, batch %lld (this run: %s at %lld px, batch %lld)",
                 r->baseline_source, b->model, (long long)b->image_size, (long long)b->batch, r->model,
                 (long long)r->image_size, (long long)r->batch);
        r->eff = NAN;
      }
      if (b && isnan(r->baseline_cv)) r->baseline_cv = b->step_cv;
    }
    if (r->eff > SR_NOISY_EFF) {
      r->noisy = 1;
      add_flag(r, "noisy: re-measure (scaling efficiency %.0f %% > %.0f %%)", 100 * r->eff, 100 * SR_NOISY_EFF);
    }
    // A 1-rank run is a baseline for others: its own step-time spread counts.
    double bcv = r->world == 1 ? r->step_cv : r->baseline_cv;
    if (bcv > SR_NOISY_CV) {
      r->noisy = 1;
      add_flag(r, "noisy: re-measure (%s step-time CV %.0f %% > %.0f %%)", r->world == 1 ? "its" : "baseline",
               100 * bcv, 100 * SR_NOISY_CV);
    }
    double load = fmax(isnan(r->load_start) ? 0 : r->load_start, isnan(r->load_end) ? 0 : r->load_end);
    if (r->cpus_online > 0 && load > r->cpus_online) {
      r->loaded = 1;
      add_flag(r, "machine loaded (load average %.1f on %d CPUs)", load, r->cpus_online);
    }
  }
}
