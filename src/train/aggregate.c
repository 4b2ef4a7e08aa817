// Per-step timings of every rank, gathered at rank 0: steps.csv rows (whole
// rows, flushed at each log interval), the progress line, and the run's
// results (img/s, time split, scaling efficiency, cost, MFU).
//
// Throughput counts wall-clock time: the timed region is measured from the
// end of one step to the end of the next, so a stall between steps (a rank
// stopped, a slow checkpoint) counts, and only evaluation time is taken out.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/jsonread.h"
#include "core/log.h"
#include "core/sysinfo.h"
#include "core/timer.h"
#include "dist/watchdog.h"
#include "train/progress.h"
#include "train/run.h"
#include "train/tracking.h"

void agg_init(trainer *t) {
  step_agg *a = &t->agg;
  memset(a, 0, sizeof *a);
  a->last_step_end = -1;
  if (t->d->rank == 0) a->rank_sums = dp_calloc((size_t)t->d->world * NV, sizeof(double), "step sums");
  a->warm_steps = t->total_steps >= 10 ? 2 : (t->total_steps >= 3 ? 1 : 0);
}

void agg_free(trainer *t) {
  free(t->agg.rank_sums);
  t->agg.rank_sums = NULL;
}

void agg_record_step(trainer *t, const step_vals *s, int64_t epoch) {
  dist_ctx *d = t->d;
  step_agg *a = &t->agg;
  double now = dp_now();
  double *all = d->rank == 0 ? dp_malloc(sizeof(double) * NV * (size_t)d->world, "step gather") : NULL;
  MPI_Request rq;
  MPI_CHECK(MPI_Igather(s->v, NV, MPI_DOUBLE, all, NV, MPI_DOUBLE, 0, d->comm, &rq), "gathering step timings");
  dist_wait_all(d, 1, &rq, "gathering step timings");
  int timed = t->st.step - a->first_step > a->warm_steps;
  double wall = a->last_step_end >= 0 ? now - a->last_step_end : s->v[V_STEP];
  a->last_step_end = now;
  if (d->rank != 0) return;
  double step_max = 0, loss = 0, imgs = 0, rss_max = 0;
  for (int r = 0; r < d->world; r++) {
    const double *v = all + (size_t)r * NV;
    if (v[V_STEP] > step_max) step_max = v[V_STEP];
    if (v[V_RSS] > rss_max) rss_max = v[V_RSS];
    loss += v[V_LOSS] / d->world;
    imgs += v[V_IMAGES];
  }
  double img_s = step_max > 0 ? imgs / step_max : 0;
  if (timed) {
    for (int r = 0; r < d->world; r++)
      for (int k = 0; k < NV; k++) a->rank_sums[(size_t)r * NV + k] += all[(size_t)r * NV + k];
    a->sum_step_max += step_max;
    step_series_add(&t->res.steps_hist, step_max);   // study: step-time spread
    a->timed_wall_s += wall > step_max ? wall : step_max;
    // Every rank leaves the all-reduce wait together; a rank's wait also holds
    // the time it idled for slower ranks to finish backward (skew), which is
    // not communication. The last rank to finish backward waits least: its
    // wait is the communication not hidden behind backward in this step.
    double wmin = all[V_COMM];
    for (int r = 1; r < d->world; r++) wmin = fmin(wmin, all[(size_t)r * NV + V_COMM]);
    a->sum_comm_exposed += wmin;
    a->timed_images += (int64_t)imgs;
    a->timed_steps++;
  }
  if (t->csv_open) {
    double mean[NV] = {0};
    for (int r = 0; r < d->world; r++)
      for (int k = 0; k < NV; k++) mean[k] += all[(size_t)r * NV + k] / d->world;
    dp_alog_printf(&t->csv, "%lld,%lld,%d,%.6g,%.6f,%.3f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.0f", (long long)t->st.step,
                   (long long)epoch, timed, (double)t->st.last_lr, loss, img_s, step_max, mean[V_DATA], mean[V_FB],
                   mean[V_COMM], mean[V_OPT], mean[V_SPAN], rss_max);
    for (int r = 0; r < d->world; r++) {
      const double *v = all + (size_t)r * NV;
      dp_alog_printf(&t->csv, ",%.3f", v[V_STEP] > 0 ? v[V_IMAGES] / v[V_STEP] : 0.0);
    }
    dp_alog_printf(&t->csv, "\n");
    a->csv_rows++;
  }
  progress_update(&t->prog, epoch, t->st.step, loss, img_s, t->st.last_lr);
  run_tracking_step(t->trk, t->st.step, epoch, loss, img_s, t->st.last_lr);   // MLflow: per log interval
  free(all);
}

// ---- results ------------------------------------------------------------------
void agg_finish_results(trainer *t, int64_t decoded, int64_t skipped) {
  dist_ctx *d = t->d;
  const train_config *c = t->cfg;
  run_results *r = &t->res;
  step_agg *a = &t->agg;
  // Host names (unique, in rank order) for the record.
  char myhost[64] = {0};
  snprintf(myhost, sizeof myhost, "%.63s", d->host);
  char *hosts = d->rank == 0 ? dp_malloc((size_t)64 * (size_t)d->world, "host names") : NULL;
  MPI_Request rq;
  MPI_CHECK(MPI_Igather(myhost, 64, MPI_CHAR, hosts, 64, MPI_CHAR, 0, d->comm, &rq), "gathering host names");
  dist_wait_all(d, 1, &rq, "gathering host names");
  if (d->rank == 0) {
    size_t len = 0;
    r->hosts[0] = 0;
    for (int k = 0; k < d->world; k++) {
      const char *h = hosts + (size_t)64 * k;
      int seen = 0;
      for (int q = 0; q < k && !seen; q++) seen = !strcmp(h, hosts + (size_t)64 * q);
      if (seen) continue;
      int w = snprintf(r->hosts + len, sizeof r->hosts - len, "%s%s", len ? "," : "", h);
      if (w < 0 || (size_t)w >= sizeof r->hosts - len) break;
      len += (size_t)w;
    }
    free(hosts);
  }
  // study: the share of its cores each rank got in this segment's loop (a
  // shared machine gives less than 1).
  double share = run_cpu_share(run_process_cpu_s() - t->loop_cpu0, dp_now() - t->loop_start, d->cores), share_sum = 0;
  MPI_Request srq[2];
  MPI_CHECK(MPI_Ireduce(&share, &share_sum, 1, MPI_DOUBLE, MPI_SUM, 0, d->comm, &srq[0]), "study: summing CPU shares");
  MPI_CHECK(MPI_Ireduce(&share, &r->cpu_share_min, 1, MPI_DOUBLE, MPI_MIN, 0, d->comm, &srq[1]), "study: least CPU share");
  dist_wait_all(d, 2, srq, "study: CPU shares");
  r->cpu_share_mean = share_sum / d->world;
  // Per-rank hidden fraction and peak RSS to rank 0.
  double mine[2] = {t->td->reduce_hidden_fraction(t->td), (double)dp_peak_rss_bytes()};
  double *all = d->rank == 0 ? dp_malloc(sizeof(double) * 2 * (size_t)d->world, "gather") : NULL;
  MPI_CHECK(MPI_Igather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, 0, d->comm, &rq), "gathering memory figures");
  dist_wait_all(d, 1, &rq, "gathering memory figures");
  if (d->rank != 0) return;
  r->kind = "train";
  snprintf(r->precision, sizeof r->precision, "%s", t->td->precision);
  snprintf(r->device, sizeof r->device, "%s", t->td->name);   // study: device and link figures
  r->comm_ref_s = t->td->comm_ref_s;
  r->world_size = d->world;
  r->nodes = d->node_count;
  snprintf(r->model, sizeof r->model, "%s", c->model);
  r->params = nn_param_count(t->g);
  r->flops_per_image_fwd = nn_flops_per_image(t->g);
  r->cores_per_rank = d->cores;
  r->threads_per_rank = d->threads;
  r->loader_threads = d->loader_threads;
  snprintf(r->hardware, sizeof r->hardware, "%s", t->hw_name);
  snprintf(r->hardware_table, sizeof r->hardware_table, "%s", c->hardware_table[0] ? c->hardware_table : hw_table_default_path());
  if (t->hwe) {
    snprintf(r->hw_kind, sizeof r->hw_kind, "%s", t->hwe->kind);
    snprintf(r->hw_unit, sizeof r->hw_unit, "%s", t->hwe->unit);
    r->peak_flops_per_rank = hw_rank_peak(t->hwe, r->precision, d->cores);
  }
  if (c->price_per_hour >= 0) {
    r->price_per_rank_hour = c->price_per_hour;
    r->price_is_estimate = 0;
  } else if (t->hwe) {
    r->price_per_rank_hour = hw_rank_price(t->hwe, d->cores);
    r->price_is_estimate = 1;
  }
  r->global_batch = c->batch * c->accum * d->world;
  r->steps = t->st.step;
  r->timed_steps = a->timed_steps;
  r->images = t->st.step * r->global_batch;
  r->epochs_done = t->st.epoch;
  r->total_wall_s = t->st.wall_before + (dp_now() - t->t_start);
  // Wall-clock throughput over the timed steps (stalls between steps count).
  r->images_per_s = a->timed_wall_s > 0 ? (double)a->timed_images / a->timed_wall_s : NAN;
  r->step_images_per_s = a->sum_step_max > 0 ? (double)a->timed_images / a->sum_step_max : NAN;
  r->per_rank = dp_calloc((size_t)d->world, sizeof(rank_timing), "per-rank timings");
  double hid = 0;
  int nhid = 0;
  for (int k = 0; k < d->world; k++) {
    const double *s = a->rank_sums + (size_t)k * NV;
    double n = a->timed_steps > 0 ? (double)a->timed_steps : 1;
    rank_timing *p = &r->per_rank[k];
    p->step_s = s[V_STEP] / n;
    p->data_wait_s = s[V_DATA] / n;
    p->forward_backward_s = s[V_FB] / n;
    p->comm_wait_s = s[V_COMM] / n;
    p->optimizer_s = s[V_OPT] / n;
    p->comm_span_s = s[V_SPAN] / n;
    p->images_per_s = s[V_STEP] > 0 ? s[V_IMAGES] / s[V_STEP] : NAN;
    p->peak_rss_bytes = (int64_t)all[2 * k + 1];
    if (p->peak_rss_bytes > r->peak_rss_bytes) r->peak_rss_bytes = p->peak_rss_bytes;
    r->mean.step_s += p->step_s / d->world;
    r->mean.data_wait_s += p->data_wait_s / d->world;
    r->mean.forward_backward_s += p->forward_backward_s / d->world;
    r->mean.comm_wait_s += p->comm_wait_s / d->world;
    r->mean.optimizer_s += p->optimizer_s / d->world;
    r->mean.comm_span_s += p->comm_span_s / d->world;
    r->mean.images_per_s += p->images_per_s / d->world;
    if (all[2 * k] >= 0) hid += all[2 * k], nhid++;
  }
  r->mean.peak_rss_bytes = r->peak_rss_bytes;
  free(all);
  // Exposed communication per step (see agg_record_step) against a blocking
  // all-reduce of the same bytes, calibrated at start-up.
  r->comm_hidden_fraction = d->world > 1 && nhid ? hid / nhid : NAN;
  if (d->world > 1 && t->td->comm_ref_s > 0 && a->timed_steps > 0)
    r->comm_hidden_fraction = comm_hidden_fraction(a->sum_comm_exposed / (double)a->timed_steps, t->td->comm_ref_s);
  r->mfu = mfu(r->flops_per_image_fwd, r->images_per_s, d->world, r->peak_flops_per_rank);
  snprintf(r->baseline_source, sizeof r->baseline_source, "%s", t->base.source);
  r->baseline_steps = c->baseline_steps;
  r->baseline_images_per_s = t->base.source[0] ? t->base.rate : NAN;
  r->baseline_macro_f1 = t->base.f1;
  r->scaling_efficiency = scaling_efficiency(r->images_per_s, d->world, r->baseline_images_per_s);
  r->f1_delta = r->evaluated ? r->q.macro_f1 - r->baseline_macro_f1 : NAN;
  r->rank_hours = d->world * r->total_wall_s / 3600.0;
  r->cost_usd = run_cost_usd(d->world, r->total_wall_s, r->price_per_rank_hour);
  r->project_images = c->project_images;
  r->project_epochs = c->project_epochs;
  r->projected_time_s = projected_time_s(c->project_images, c->project_epochs, r->images_per_s);
  r->projected_cost_usd = projected_cost_usd(d->world, c->project_images, c->project_epochs, r->images_per_s,
                                             r->price_per_rank_hour);
  r->decoded = decoded;
  r->skipped = skipped;
  r->stopped_early = t->st.stop;
  if (t->st.stop) snprintf(r->stop_reason, sizeof r->stop_reason, "early stopping (patience %d)", c->patience);
  r->eval_wall_s = a->eval_s;
  r->checkpoint_stall_s = a->ckpt_stall_s;
}

// ---- checkpoints ------------------------------------------------------------------
void agg_to_json(const trainer *t, void *jw) {
  dp_json *j = jw;
  const step_agg *a = &t->agg;
  dp_json_key(j, "timing");
  dp_json_begin_object(j);
  dp_json_kv_double(j, "sum_step_max", a->sum_step_max);
  dp_json_kv_double(j, "sum_comm_exposed", a->sum_comm_exposed);
  dp_json_kv_int(j, "timed_steps", a->timed_steps);
  dp_json_kv_int(j, "timed_images", a->timed_images);
  dp_json_kv_double(j, "timed_wall_s", a->timed_wall_s);
  dp_json_kv_double(j, "eval_s", a->eval_s);
  dp_json_kv_double(j, "ckpt_stall_s", a->ckpt_stall_s);
  dp_json_kv_int(j, "csv_rows", a->csv_rows);
  if (a->rank_sums) dp_json_kv_double_array(j, "rank_sums", a->rank_sums, (int64_t)t->d->world * NV);
  dp_json_end_object(j);
}

void agg_from_json(trainer *t, const void *obj) {
  const jv *v = obj;
  step_agg *a = &t->agg;
  a->sum_step_max = jv_num(v, "timing.sum_step_max", 0);
  a->sum_comm_exposed = jv_num(v, "timing.sum_comm_exposed", 0);
  a->timed_steps = (int64_t)jv_num(v, "timing.timed_steps", 0);
  a->timed_images = (int64_t)jv_num(v, "timing.timed_images", 0);
  a->timed_wall_s = jv_num(v, "timing.timed_wall_s", 0);
  a->eval_s = jv_num(v, "timing.eval_s", 0);
  a->ckpt_stall_s = jv_num(v, "timing.ckpt_stall_s", 0);
  a->csv_rows = (int64_t)jv_num(v, "timing.csv_rows", 0);
  const jv *rs = jv_path(v, "timing.rank_sums");
  // Per-rank sums only carry over on the same world size (else they restart).
  if (a->rank_sums && rs && rs->type == JV_ARR && rs->n == t->d->world * NV)
    for (int i = 0; i < rs->n; i++) a->rank_sums[i] = rs->items[i].num;
  else if (a->rank_sums && rs) {
    a->sum_step_max = a->sum_comm_exposed = a->timed_wall_s = 0;
    a->timed_steps = a->timed_images = 0;
  }
}
