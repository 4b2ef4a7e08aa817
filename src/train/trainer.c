// `dptrain train`: the run from configuration to results (see trainer.h).
// The loop: per step, train_step (step.c) and the per-step record
// (aggregate.c); at each step boundary the ranks agree, in one small
// all-reduce, on a stop request (SIGUSR1/SIGTERM) and on a time-based
// checkpoint; evaluations at epoch ends or every --eval-every steps keep the
// best model; checkpoints (resume.c) at --checkpoint-every / --checkpoint-
// minutes and on preemption.
#include "train/memfit.h"   // memory:
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/afile.h"
#include "core/log.h"
#include "core/outguard.h"
#include "core/timer.h"
#include "dist/watchdog.h"
#include "train/eval.h"
#include "train/run.h"
#include "train/tracking.h"

static void out_path(const trainer *t, const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s", t->cfg->out, name);
}

// ---- the fatal path: results.json says why ---------------------------------------
static trainer *g_fatal_trainer;
static void fatal_report(const char *msg) {
  trainer *t = g_fatal_trainer;
  if (!t || !t->cfg) return;
  char path[TC_PATH_MAX + 64];
  out_path(t, "results.json", path, sizeof path);
  // Only the failing rank writes (it may not be rank 0: rank 0 is then
  // aborted by MPI before it could say anything).
  run_results_write_failed(path, t->cfg, msg, t->d->rank, t->d->host, t->st.step);
  run_tracking_close(t->trk, "FAILED");   // bounded wait; NULL on ranks without tracking
  t->trk = NULL;
}

// ---- evaluation and early stopping --------------------------------------------------
static void average_bn(trainer *t) {
  if (t->g->nbuf_elems > 0 && t->d->world > 1) {
    dist_allreduce_mean(t->d, nn_bufs_host(t->g), t->g->nbuf_elems);
    nn_bufs_push(t->g);
  }
}

// Returns 1 when this evaluation is the best so far.
static int do_eval(trainer *t) {
  if (!t->val) return 0;
  double t0 = dp_now();
  dist_watchdog_mark(t->d, t->st.step, WD_EVAL);
  average_bn(t);
  class_metrics m;
  double secs = eval_run_device(t->g, t->td, t->val, t->d, t->num_classes, &m);
  t->st.last_eval_step = t->st.step;
  const train_config *c = t->cfg;
  // The metric --early-metric names: f1 (higher is better), loss or objective.
  int higher;
  double metric = early_metric_value(&m, c->early_metric, &higher);
  t->st.last_metric = metric;
  int best = early_stop_update(&t->st.best_metric, &t->st.best_step, &t->st.evals_since_best, &t->st.stop, metric,
                               higher, c->patience, t->st.step);
  const char *mname = higher ? "macro-F1" : !strcmp(c->early_metric, "loss") ? "val loss" : "val objective";
  if (t->d->rank == 0) {
    progress_break(&t->prog);
    printf("eval at step %lld (epoch %lld, %.1f s): ", (long long)t->st.step, (long long)t->st.epoch, secs);
    const char **names = dp_calloc((size_t)t->num_classes, sizeof(char *), "class names");
    for (int k = 0; k < t->num_classes; k++) names[k] = trainer_class_name(t, k);
    class_metrics_print(&m, names, stdout);
    free(names);
    if (best) printf("best %s so far: %.4f (model.safetensors)\n", mname, metric);
    if (t->st.stop)
      printf("early stopping: no %s improvement in %d evaluation(s) (best %.4f at step %lld)\n", mname, c->patience,
             t->st.best_metric, (long long)t->st.best_step);
    fflush(stdout);
  }
  run_tracking_eval(t->trk, t->st.step, &m);
  if (t->res.evaluated) class_metrics_free(&t->res.q);
  t->res.q = m;
  t->res.evaluated = 1;
  // The best model, written from a snapshot on the writer thread.
  if (best) model_file_write(t, "model.safetensors");
  t->agg.eval_s += dp_now() - t0;
  return best;
}

// [inputs] Collective. Every skip since the last call goes to OUT/skipped.csv;
// the rate is judged at every log interval once 1000 records were read (a few
// corrupt records in the first batches must not stop a run) and always at an
// epoch end. Too many skips is bad input data: exit code 2.
#define SKIP_RATE_MIN_RECORDS 1000
static void check_skips(trainer *t, int64_t *decoded, int64_t *skipped, int epoch_end) {
  dp_err e;
  dp_err_clear(&e);
  if (skiplog_collect(&t->skips, t->train, t->d, t->st.step, t->st.decoded_before, t->st.skipped_before, decoded,
                      skipped, &e))
    DP_FATAL("writing skipped.csv", "check --out (disk full?)", "%s", e.msg);
  loader_stats ls = loader_get_stats(t->train);
  int64_t tot = *decoded + *skipped;
  double rate = tot ? (double)*skipped / (double)tot : 0;
  if (epoch_end && *skipped > 0 && t->d->rank == 0)
    LOG_WARN("skipped %lld of %lld records so far (%.3f %%; every one is listed in %s/skipped.csv)",
             (long long)*skipped, (long long)tot, 100 * rate, t->cfg->out);
  if ((epoch_end || tot >= SKIP_RATE_MIN_RECORDS) && rate > t->cfg->max_skip_rate)
    DP_BAD_INPUT("reading training data", "inspect the shards with `dptrain data verify`, or raise --max-skip-rate",
                 "%lld of %lld records (%.2f %%) were skipped as corrupt by step %lld, above --max-skip-rate %.2f %% "
                 "(listed in %s/skipped.csv; this rank's last: %s)",
                 (long long)*skipped, (long long)tot, 100 * rate, (long long)t->st.step, 100 * t->cfg->max_skip_rate,
                 t->cfg->out, ls.last_error[0] ? ls.last_error : "none here");
}

// ---- outputs ---------------------------------------------------------------------------
static void write_config_ini(trainer *t) {
  char path[TC_PATH_MAX + 64];
  out_path(t, "config.ini", path, sizeof path);
  dp_err e;
  dp_err_clear(&e);
  dp_afile *af = dp_afile_open(path, &e);
  if (!af) DP_FATAL("writing config.ini", "check --out", "%s", e.msg);
  train_config_write(t->cfg, dp_afile_stream(af));
  if (dp_afile_commit(af, &e)) DP_FATAL("writing config.ini", "check --out and free space", "%s", e.msg);
}

static void open_steps_csv(trainer *t, int resuming) {
  char path[TC_PATH_MAX + 64];
  out_path(t, "steps.csv", path, sizeof path);
  dp_err e;
  dp_err_clear(&e);
  int64_t keep = resuming ? t->ck.csv_bytes : -1;
  if (resuming && keep < 0) keep = -1;
  if (dp_alog_open(&t->csv, path, keep, &e)) {
    // A missing or short steps.csv on resume: start a new one (the rows of
    // the earlier segments are lost, not the run).
    if (resuming) {
      LOG_WARN("%s; starting a new steps.csv", e.msg);
      dp_err_clear(&e);
      if (dp_alog_open(&t->csv, path, -1, &e)) DP_FATAL("writing steps.csv", "check --out", "%s", e.msg);
      keep = -1;
    } else {
      DP_FATAL("writing steps.csv", "check --out", "%s", e.msg);
    }
  }
  t->csv_open = 1;
  if (keep <= 0) {
    dp_alog_printf(&t->csv, "step,epoch,timed,lr,loss,global_img_s,step_s_max,data_wait_s,fwd_bwd_s,comm_wait_s,"
                            "optimizer_s,comm_span_s,peak_rss_max_bytes");
    for (int r = 0; r < t->d->world; r++) dp_alog_printf(&t->csv, ",rank%d_img_s", r);
    dp_alog_printf(&t->csv, "\n");
    if (dp_alog_flush(&t->csv, 0, &e)) DP_FATAL("writing steps.csv", "check --out", "%s", e.msg);
  }
}

// Rank 0: fills the state part of results and writes results.json.
static void write_results(trainer *t, const char *status, int64_t decoded, int64_t skipped) {
  agg_finish_results(t, decoded, skipped);
  memfit_report(t->d);   // memory: the enforced budget's peak (collective; nothing without a budget)
  if (t->d->rank != 0) return;
  run_results *r = &t->res;
  r->status = status;
  r->train_wall_s = t->st.train_wall_before + (dp_now() - t->loop_start);
  r->segments = t->st.segments;
  snprintf(r->resumed_from, sizeof r->resumed_from, "%s", t->ck.resumed_from);
  snprintf(r->config_hash, sizeof r->config_hash, "%s", t->config_hash);
  snprintf(r->data_fingerprint, sizeof r->data_fingerprint, "%s", t->data_fingerprint);
  snprintf(r->init_weights, sizeof r->init_weights, "%s", t->cfg->init_weights);
  ckpt_writer_flush(t->ck.w);
  ckpt_stats cs = ckpt_writer_get_stats(t->ck.w);
  r->checkpoints_written = t->ck.taken;
  r->checkpoint_failures = cs.failures;
  r->checkpoint_last_bytes = cs.last_bytes;
  r->checkpoint_last_write_s = cs.last_seconds;
  r->checkpoint_max_write_s = cs.max_seconds;
  r->checkpoint_max_snapshot_s = t->ck.max_snapshot_s;
  snprintf(r->checkpoint_last_path, sizeof r->checkpoint_last_path, "%s", t->ck.taken ? cs.last_path : "");
  r->best_step = t->val ? t->st.best_step : -1;
  r->best_metric = t->st.best_metric;
  snprintf(r->early_metric, sizeof r->early_metric, "%s", t->cfg->early_metric);
  r->last_step = t->st.step;
  char **names = dp_calloc((size_t)t->num_classes, sizeof(char *), "class names");
  for (int k = 0; k < t->num_classes; k++) names[k] = (char *)trainer_class_name(t, k);
  r->class_names = names;
  char path[TC_PATH_MAX + 64];
  out_path(t, "results.json", path, sizeof path);
  int rc = run_results_write_json(r, t->cfg, path);
  if (!strcmp(status, "completed")) {
    run_results_print_summary(r, stdout);
    printf("outputs: %s/{results.json, steps.csv, config.ini, skipped.csv, %s}\n", t->cfg->out,
           t->val && t->st.best_step >= 0 ? "model.safetensors (best), model-last.safetensors" : "model.safetensors");
  } else {
    printf("%s at step %lld: checkpoint %s, results.json says \"status\": \"%s\"\n", status, (long long)t->st.step,
           r->checkpoint_last_path, status);
  }
  fflush(stdout);
  free(names);
  r->class_names = NULL;
  if (rc) DP_FATAL("writing results.json", "check --out and free space", "see above");
  run_tracking_results(t->trk, r);
}

// ---- the step boundary ------------------------------------------------------------------
// All ranks agree on {stop requested, time for a checkpoint (rank 0's clock)}.
static void boundary_agree(trainer *t, int *stop_sig, int *ckpt_time) {
  int v[2] = {signals_pending(), 0};
  if (t->d->rank == 0 && t->cfg->checkpoint_minutes > 0 &&
      dp_now() - t->ck.last_time >= t->cfg->checkpoint_minutes * 60.0)
    v[1] = 1;
  dist_watchdog_mark(t->d, t->st.step, WD_STEP_END);
  if (t->d->world > 1) {
    MPI_Request rq;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_MAX, t->d->comm, &rq), "agreeing at the step boundary");
    dist_wait_all(t->d, 1, &rq, "the step-boundary agreement");
  }
  *stop_sig = v[0];
  *ckpt_time = v[1];
}

// ---- the run ------------------------------------------------------------------------------
// Collective: every rank checks the configuration; the first problem is
// printed once (rank 0's, else the rank that has one). Returns 1 when all ok.
static int agree_config(trainer *t, int mine) {
  dist_ctx *d = t->d;
  int ok = mine, root_ok = mine;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, d->comm), "agreeing on the configuration");
  MPI_CHECK(MPI_Bcast(&root_ok, 1, MPI_INT, 0, d->comm), "agreeing on the configuration");
  if (!mine && t->cfg_msg[0] && (d->rank == 0 || root_ok)) {
    if (d->rank == 0) fprintf(stderr, "dptrain: %s\n", t->cfg_msg);
    else fprintf(stderr, "dptrain: [rank %d host %s] %s\n", d->rank, d->host, t->cfg_msg);
  }
  return ok;
}

static void start_epoch(trainer *t) {
  if (t->st.epoch_start > 0) loader_start_epoch_at(t->train, t->st.epoch, t->st.epoch_start);
  else loader_start_epoch(t->train, t->st.epoch);
  if (t->st.batch_in_epoch > 0) loader_seek(t->train, t->st.batch_in_epoch);
  t->td->optim_freezing(t->td, t->st.opt, t->g, t->st.epoch);
}

int trainer_run(const train_config *cfg, dist_ctx *d) {
  trainer tt, *t = &tt;
  memset(t, 0, sizeof *t);
  t->cfg = cfg;
  t->d = d;
  t->t_start = dp_now();
  t->base.rate = NAN;
  t->base.f1 = NAN;
  t->ck.last_step = -1;
  t->ck.best_ckpt_step = -1;
  t->ck.csv_bytes = -1;
  t->ck.skips_bytes = -1;   // [inputs]
  run_results_init(&t->res);
  t->res.load_start = run_load_average_1m();   // study: machine load
  fault_parse(t);
  signals_install();
  // A launcher that stops reading our output (mpirun after SIGTERM) must not
  // keep a rank from its preemption checkpoint.
  if (dp_outguard_stdio(signals_flag()) != 0) LOG_WARN("output guard unavailable: a stalled stdout reader can delay a stop");
  dist_watchdog_init(d, cfg->collective_timeout);
  dist_watchdog_set_stop(d, signals_flag(), 10);
  // The device comes first: it decides the loaders' pixel format, and on a
  // GPU sets the device and binding before any graph or loader thread exists.
  // Collective; `--device cuda` without a usable GPU stops here with the reason.
  {
    loader_cfg dc;
    loader_cfg_defaults(&dc);
    t->td = train_device_open(cfg->device, cfg->precision, d, dc.mean, dc.std);
  }
  // memory: the plan-based batch check and --batch auto (train/memfit.h), before
  // any loader or graph allocates; from here on the run uses the fitted config.
  train_config *fitted = memfit_config_copy(cfg);
  if (memfit_prepare(fitted, d, t->td) != 0) {
    setup_teardown(t);
    dist_watchdog_free(d);
    return 2;
  }
  cfg = t->cfg = fitted;
  int mine = setup_checks(t) == 0;
  // The output directory must take files before any work is done.
  if (mine && d->rank == 0) {
    dp_err e;
    dp_err_clear(&e);
    if (dp_dir_check_writable(cfg->out, &e)) {
      snprintf(t->cfg_msg, sizeof t->cfg_msg, "bad configuration: setting 'out': %s", e.msg);
      mine = 0;
    }
  }
  if (!agree_config(t, mine)) {
    setup_teardown(t);
    dist_watchdog_free(d);
    return 2;
  }
  setup_state_init(t);
  int resuming = ckpt_resume_prepare(t);
  if (!agree_config(t, resuming >= 0)) {
    setup_teardown(t);
    dist_watchdog_free(d);
    return 2;
  }
  if (d->rank == 0) {
    write_config_ini(t);
    open_steps_csv(t, resuming == 1);
    dp_err e;
    dp_err_clear(&e);
    snprintf(t->ck.dir, sizeof t->ck.dir, "%s/checkpoints", cfg->out);
    // The checkpoint directory exists once checkpoints are asked for; a
    // preemption creates it when it must write one.
    int want_dir = cfg->checkpoint_every > 0 || cfg->checkpoint_minutes > 0 || cfg->resume[0];
    t->ck.w = ckpt_writer_create(t->ck.dir, want_dir, cfg->keep_checkpoints, &e);
    if (!t->ck.w) DP_FATAL("starting the checkpoint writer", "check --out", "%s", e.msg);
  }
  {   // [inputs] OUT/skipped.csv: a resume cuts it to the checkpoint's length
    dp_err e;
    dp_err_clear(&e);
    char path[TC_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/skipped.csv", cfg->out);
    if (skiplog_open_at(&t->skips, path, d->rank, resuming == 1 ? t->ck.skips_bytes : -1, &e))
      DP_FATAL("creating skipped.csv", "check --out", "%s", e.msg);
  }
  if (cfg->dump_ids[0]) {
    char path[TC_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s.rank%d", cfg->dump_ids, d->rank);
    t->dump = fopen(path, resuming == 1 ? "a" : "w");
    PTR_CHECK(t->dump, "opening the --dump-ids file");
  }
  g_fatal_trainer = t;
  dp_set_fatal_report(fatal_report);
  setup_model(t);
  // After the graph exists: the GPU context may have lowered the precision.
  if (d->rank == 0)
    LOG_INFO("device %s: %s ranks, precision %s", cfg->device, t->td->name, t->td->precision);
  agg_init(t);
  if (resuming == 1) ckpt_resume_apply(t);
  else init_weights_apply(t);
  // The weights every rank starts from, e.g. for a PyTorch twin (bench/parity).
  if (cfg->save_init && resuming != 1) model_file_write(t, "init.safetensors");
  if (d->rank == 0) {
    LOG_INFO("train: model %s (%lld params, %.3f GFLOP/img fwd), %d classes, %lld samples, %lld steps/epoch, %lld steps",
             cfg->model, (long long)nn_param_count(t->g), (double)nn_flops_per_image(t->g) / 1e9, t->num_classes,
             (long long)loader_total_samples(t->train), (long long)t->steps_per_epoch, (long long)t->total_steps);
    LOG_INFO("train: per-rank batch %lld x accum %d x %d ranks = global batch %lld", (long long)cfg->batch, cfg->accum,
             d->world, (long long)(cfg->batch * cfg->accum * d->world));
  }
  {   // lineage.json on rank 0; MLflow params and tags when a tracking URI is set
    const char **names = dp_calloc((size_t)t->num_classes, sizeof(char *), "class names");
    for (int k = 0; k < t->num_classes; k++) names[k] = trainer_class_name(t, k);
    run_tracking_info ti = {t->train_paths, t->ntrain, t->val_paths, t->nval, t->hw_name, t->td->name,
                            t->td->precision, d->world, d->node_count, t->num_classes, names, t->total_steps,
                            resuming == 1, t->ck.resumed_from};
    t->trk = run_tracking_open(cfg, d->rank, &ti);
    free(names);
  }
  if (cfg->baseline_steps > 0 && resuming != 1) run_baseline(t);

  progress_init(&t->prog, stdout, t->total_steps, cfg->log_every);
  start_epoch(t);
  int64_t decoded = 0, skipped = 0;
  t->loop_start = dp_now();
  t->loop_cpu0 = run_process_cpu_s();   // study: CPU share of the loop
  t->ck.last_time = t->loop_start;
  t->agg.first_step = t->st.step;   // warm-up steps are counted from each (re)start
  int stop_sig = 0;
  const char *status = "completed";
  while (t->st.step < t->total_steps && !t->st.stop) {
    step_vals s = train_step(t, t->train, t->st.opt, &t->ns, 1, 1);
    t->st.step++;
    t->st.images_seen += (int64_t)s.v[V_IMAGES];
    t->st.batch_in_epoch += cfg->accum;
    agg_record_step(t, &s, t->st.epoch);
    // Once a stop was requested, a wait gives up after 3 steps' time of silence.
    dist_watchdog_set_stop(d, signals_flag(), 3 * s.v[V_STEP]);
    int epoch_end = t->st.batch_in_epoch + cfg->accum > loader_batches_this_epoch(t->train);
    if (!epoch_end && t->st.step % t->prog.every == 0) check_skips(t, &decoded, &skipped, 0);   // [inputs]
    int best = 0;
    if ((epoch_end && cfg->eval_every == 0) || (cfg->eval_every > 0 && t->st.step % cfg->eval_every == 0))
      best = do_eval(t);
    if (epoch_end) {
      check_skips(t, &decoded, &skipped, 1);   // [inputs]
      t->st.epoch++;
      t->st.batch_in_epoch = 0;
      t->st.epoch_start = 0;
    }
    int ckpt_time;
    boundary_agree(t, &stop_sig, &ckpt_time);
    int last = t->st.step >= t->total_steps || t->st.stop;
    if (stop_sig && !last) {
      status = "preempted";
      break;
    }
    // The checkpoint of the best evaluation is kept through pruning.
    int want = ckpt_due(t) || ckpt_time || (best && (cfg->checkpoint_every > 0 || cfg->checkpoint_minutes > 0));
    if (want && !last) {
      if (best) t->ck.best_ckpt_step = t->st.step;
      check_skips(t, &decoded, &skipped, 0);   // [inputs] skipped.csv complete up to the checkpoint
      ckpt_take(t, 0);
    }
    if (t->csv_open && (cfg->log_every <= 0 || t->st.step % cfg->log_every == 0)) {
      dp_err e;
      if (dp_alog_flush(&t->csv, 0, &e)) DP_FATAL("writing steps.csv", "check --out and free space", "%s", e.msg);
    }
    if (epoch_end && !last) start_epoch(t);
  }
  progress_break(&t->prog);
  if (!strcmp(status, "preempted")) {
    if (d->rank == 0)
      LOG_WARN("signal %d: stopping at step %lld with a checkpoint (rerun with --resume auto to continue)", stop_sig,
               (long long)t->st.step);
    check_skips(t, &decoded, &skipped, 0);   // [inputs] before the checkpoint records skipped.csv's length
    ckpt_take(t, 1);
    write_results(t, status, decoded, skipped);
    if (d->rank == 0 && t->csv_open) {
      dp_err e;
      if (dp_alog_close(&t->csv, &e)) LOG_WARN("%s", e.msg);
      t->csv_open = 0;
    }
    if (d->rank == 0) ckpt_writer_destroy(t->ck.w);
    t->ck.w = NULL;
    dp_set_fatal_report(NULL);
    g_fatal_trainer = NULL;
    optim_snapshot_free(&t->ck.opt_snap);
    setup_teardown(t);
    run_tracking_close(t->trk, NULL);   // the MLflow run stays RUNNING: the resumed job continues it
    dist_watchdog_free(d);
    if (dp_outguard_dropped())
      LOG_WARN("%llu bytes of output dropped: the launcher stopped reading while the stop was pending",
               (unsigned long long)dp_outguard_dropped());
    return TRAIN_EXIT_PREEMPTED;
  }
  if (t->st.batch_in_epoch != 0) check_skips(t, &decoded, &skipped, 1);   // else done at the epoch end [inputs]
  if (t->val && t->st.last_eval_step != t->st.step) do_eval(t);
  average_bn(t);
  // The last state; with validation model.safetensors holds the best one
  // (when no evaluation gave a metric, e.g. an empty val split, the last is
  // model.safetensors, as results.json's "models" says).
  int have_best = t->val && t->st.best_step >= 0;
  model_file_write(t, have_best ? "model-last.safetensors" : "model.safetensors");
  if (cfg->checkpoint_every > 0 || cfg->checkpoint_minutes > 0) ckpt_take(t, 1);
  // Post-hoc per-class offsets, tuned on val for the model that ships
  // (model.safetensors, the best): restores it into the graph, so it comes
  // after the last state was saved.
  if (t->val && cfg->logit_adjust) quality_logit_adjust(t);
  write_results(t, status, decoded, skipped);
  if (d->rank == 0) {
    dp_err e;
    if (t->csv_open && dp_alog_close(&t->csv, &e)) DP_FATAL("writing steps.csv", "check --out", "%s", e.msg);
    t->csv_open = 0;
    ckpt_writer_destroy(t->ck.w);
    t->ck.w = NULL;
  }
  dp_set_fatal_report(NULL);
  g_fatal_trainer = NULL;
  optim_snapshot_free(&t->ck.opt_snap);
  setup_teardown(t);
  run_tracking_close(t->trk, "FINISHED");   // files and status; bounded wait for the shipper
  dist_watchdog_free(d);
  return 0;
}
