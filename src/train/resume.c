// Checkpoints of a training run, exact resume, the best and last model
// files, and pretrained initialisation: the trainer's side of the state
// layer (the file format and the writer thread are train/checkpoint.c).
//
// Exact resume: a checkpoint holds everything the rest of the run depends
// on (see train/state.h): rank 0's parameters and optimizer state (the same
// on every rank), every rank's BN buffers and RNG stream, the position in
// the epoch, the early-stopping state, the loss scaler, the steps.csv length,
// and the aggregates results.json reports. The loader's randomness is a pure
// function of (seed, epoch, sample index), so restoring the position restores
// the batches. On the same world size the resumed run is bitwise the same.
// On another world size the rest of the epoch is dealt out again
// (sampler_set_epoch_at) and the run continues with a warning.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/timer.h"
#include "dist/watchdog.h"
#include "train/run.h"

// ---- weights metadata of this run ---------------------------------------------
static void fill_meta(const trainer *t, weights_meta *wm) {
  memset(wm, 0, sizeof *wm);
  wm->model = t->mc;
  memcpy(wm->mean, t->train_lc.mean, sizeof wm->mean);
  memcpy(wm->std, t->train_lc.std, sizeof wm->std);
  wm->eval_resize_ratio = t->train_lc.eval_resize_ratio;   // what the val loader used
  wm->num_classes = t->num_classes;
  wm->steps = t->st.step;
  wm->class_names = dp_calloc((size_t)t->num_classes, sizeof(char *), "class names");
  for (int k = 0; k < t->num_classes; k++) wm->class_names[k] = (char *)trainer_class_name(t, k);
}

void model_file_write(trainer *t, const char *name) {
  if (t->d->rank != 0) return;
  char path[TC_PATH_MAX + 64], err[600];
  snprintf(path, sizeof path, "%s/%s", t->cfg->out, name);
  weights_meta wm;
  fill_meta(t, &wm);
  st_pack pk;
  st_pack_init(&pk);
  // A snapshot: the loop goes on changing the weights while the thread writes.
  if (weights_pack_add(&pk, t->g, nn_params_host(t->g), nn_bufs_host(t->g), &wm, 1, err, sizeof err))
    DP_FATAL("writing the weights", "check the class names", "%s: %s", path, err);
  free(wm.class_names);
  t->agg.ckpt_stall_s += ckpt_writer_submit_file(t->ck.w, &pk, path);
}

// ---- the run state as JSON ---------------------------------------------------------
static void u64_hex(char *b, size_t n, uint64_t v) { snprintf(b, n, "%016" PRIx64, v); }

static uint64_t hex_u64(const char *s) { return s ? (uint64_t)strtoull(s, NULL, 16) : 0; }

// rngs: (world, 4) every rank's stream; counts: (world, 2) decoded, skipped.
static char *state_json(const trainer *t, const uint64_t *rngs, const int64_t *counts) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  PTR_CHECK(f, "building the checkpoint state");
  dp_json j;
  dp_json_init(&j, f, 0);
  dp_json_begin_object(&j);
  const train_state *st = &t->st;
  dp_json_kv_int(&j, "format", CKPT_FORMAT_VERSION);
  dp_json_kv_int(&j, "step", st->step);
  dp_json_kv_int(&j, "epoch", st->epoch);
  dp_json_kv_int(&j, "batch_in_epoch", st->batch_in_epoch);
  dp_json_kv_int(&j, "epoch_start", st->epoch_start);
  dp_json_kv_int(&j, "world_size", t->d->world);
  dp_json_kv_int(&j, "batch", t->cfg->batch);
  dp_json_kv_int(&j, "accum", t->cfg->accum);
  dp_json_kv_int(&j, "total_steps", t->total_steps);
  dp_json_kv_string(&j, "config_hash", t->config_hash);
  dp_json_kv_string(&j, "data_fingerprint", t->data_fingerprint);
  dp_json_kv_string(&j, "seed", "");   // (the seed is in the config hash)
  dp_json_kv_double(&j, "last_lr", st->last_lr);
  dp_json_key(&j, "early");
  dp_json_begin_object(&j);
  dp_json_kv_double(&j, "best_metric", st->best_metric);
  dp_json_kv_int(&j, "best_step", st->best_step);
  dp_json_kv_int(&j, "evals_since_best", st->evals_since_best);
  dp_json_kv_int(&j, "stop", st->stop);
  dp_json_kv_int(&j, "last_eval_step", st->last_eval_step);
  dp_json_kv_double(&j, "last_metric", st->last_metric);
  dp_json_kv_int(&j, "best_checkpoint_step", t->ck.best_ckpt_step);
  dp_json_end_object(&j);
  dp_json_key(&j, "scaler");
  dp_json_begin_object(&j);
  dp_json_kv_int(&j, "enabled", st->scaler.enabled);
  dp_json_kv_double(&j, "scale", st->scaler.scale);
  dp_json_kv_double(&j, "growth_factor", st->scaler.growth_factor);
  dp_json_kv_double(&j, "backoff_factor", st->scaler.backoff_factor);
  dp_json_kv_int(&j, "growth_interval", st->scaler.growth_interval);
  dp_json_kv_int(&j, "growth_tracker", st->scaler.growth_tracker);
  dp_json_kv_int(&j, "steps_skipped", st->scaler.steps_skipped);
  dp_json_kv_int(&j, "steps_total", st->scaler.steps_total);
  dp_json_end_object(&j);
  dp_json_key(&j, "optimizer");
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "kind", t->oc.kind == OPTIM_ADAMW ? "adamw" : "sgd");
  dp_json_kv_int(&j, "step", t->ck.opt_snap.step);
  dp_json_kv_int(&j, "applied", t->ck.opt_snap.applied);
  dp_json_end_object(&j);
  dp_json_key(&j, "ranks");
  dp_json_begin_array(&j);
  char hx[4][24];
  for (int r = 0; r < t->d->world; r++) {
    dp_json_begin_object(&j);
    dp_json_key(&j, "rng");
    dp_json_begin_array(&j);
    for (int k = 0; k < 4; k++) {
      u64_hex(hx[k], sizeof hx[k], rngs[(size_t)r * 4 + (size_t)k]);
      dp_json_string(&j, hx[k]);
    }
    dp_json_end_array(&j);
    dp_json_kv_int(&j, "decoded", counts[(size_t)r * 2]);
    dp_json_kv_int(&j, "skipped", counts[(size_t)r * 2 + 1]);
    dp_json_end_object(&j);
  }
  dp_json_end_array(&j);
  dp_json_kv_int(&j, "steps_csv_bytes", t->csv_open ? dp_alog_size(&t->csv) : -1);
  dp_json_kv_double(&j, "wall_s", st->wall_before + (dp_now() - t->t_start));
  dp_json_kv_double(&j, "train_wall_s", st->train_wall_before + (dp_now() - t->loop_start));
  dp_json_kv_int(&j, "segments", st->segments);
  dp_json_kv_string(&j, "resumed_from", t->ck.resumed_from);
  dp_json_key(&j, "baseline");
  dp_json_begin_object(&j);
  dp_json_kv_double(&j, "rate", t->base.rate);
  dp_json_kv_double(&j, "f1", t->base.f1);
  dp_json_kv_string(&j, "source", t->base.source);
  dp_json_end_object(&j);
  agg_to_json(t, &j);
  dp_json_end_object(&j);
  fclose(f);
  return buf;
}

// ---- taking a checkpoint ------------------------------------------------------------
// The host copy of the optimizer state, allocated on first use (it costs one
// or two parameter copies: runs without checkpoints never pay for it).
static void ensure_snap(trainer *t) {
  if (!t->ck.opt_snap.state1) optim_snapshot_alloc(&t->ck.opt_snap, t->oc.kind, t->g);
}

void ckpt_take(trainer *t, int sync) {
  dist_ctx *d = t->d;
  nn_graph *g = t->g;
  dist_watchdog_mark(d, t->st.step, WD_OTHER);
  double t0 = dp_now();
  // Per-rank state to rank 0: BN buffers, RNG stream, record counters.
  int64_t nb = g->nbuf_elems;
  float *mybufs = nn_bufs_host(g);
  float *all_bufs = d->rank == 0 ? dp_malloc((size_t)(nb > 0 ? nb : 1) * (size_t)d->world * 4, "checkpoint buffers")
                                 : NULL;
  uint64_t myrng[4];
  memcpy(myrng, t->st.rng.s, sizeof myrng);
  loader_stats ls = loader_get_stats(t->train);
  int64_t mycnt[2] = {t->st.decoded_before + ls.decoded, t->st.skipped_before + ls.skipped};
  uint64_t *rngs = d->rank == 0 ? dp_malloc((size_t)d->world * sizeof myrng, "checkpoint rngs") : NULL;
  int64_t *cnts = d->rank == 0 ? dp_malloc((size_t)d->world * sizeof mycnt, "checkpoint counters") : NULL;
  MPI_Request rq[3];
  int nrq = 0;
  if (nb > 0 && nb <= INT32_MAX)
    MPI_CHECK(MPI_Igather(mybufs, (int)nb, MPI_FLOAT, all_bufs, (int)nb, MPI_FLOAT, 0, d->comm, &rq[nrq++]),
              "gathering BN buffers for the checkpoint");
  MPI_CHECK(MPI_Igather(myrng, 4, MPI_UINT64_T, rngs, 4, MPI_UINT64_T, 0, d->comm, &rq[nrq++]),
            "gathering RNG streams for the checkpoint");
  MPI_CHECK(MPI_Igather(mycnt, 2, MPI_INT64_T, cnts, 2, MPI_INT64_T, 0, d->comm, &rq[nrq++]),
            "gathering record counters for the checkpoint");
  dist_wait_all(d, nrq, rq, "gathering the checkpoint state");
  if (d->rank == 0) {
    // Ensures steps.csv on disk holds exactly the rows up to this step.
    dp_err e;
    if (t->csv_open && dp_alog_flush(&t->csv, 1, &e)) LOG_WARN("%s", e.msg);
    ensure_snap(t);
    t->td->optim_save(t->td, t->st.opt, &t->ck.opt_snap);
    char *sj = state_json(t, rngs, cnts);
    weights_meta wm;
    fill_meta(t, &wm);
    ckpt_content c = {g, nn_params_host(g), mybufs, nb > 0 ? all_bufs : NULL, d->world, &wm, &t->ck.opt_snap, sj};
    st_pack pk;
    st_pack_init(&pk);
    char err[600];
    if (ckpt_pack(&pk, &c, err, sizeof err)) DP_FATAL("building a checkpoint", "internal error", "%s", err);
    free(wm.class_names);
    free(sj);
    fault_maybe(t, 1);
    double waited = ckpt_writer_submit(t->ck.w, &pk, t->st.step, t->ck.best_ckpt_step);
    if (sync) waited += ckpt_writer_flush(t->ck.w);
    (void)waited;
  }
  free(all_bufs);
  free(rngs);
  free(cnts);
  double dt = dp_now() - t0;
  t->ck.snapshot_s = dt;
  // The stall a periodic checkpoint causes (a synchronous one, at the end or
  // on preemption, waits for the write by design).
  if (!sync && dt > t->ck.max_snapshot_s) t->ck.max_snapshot_s = dt;
  t->agg.ckpt_stall_s += dt;
  t->ck.last_step = t->st.step;
  t->ck.last_time = dp_now();
  t->ck.taken++;
}

int ckpt_due(trainer *t) {
  const train_config *c = t->cfg;
  if (t->st.step == t->ck.last_step) return 0;
  if (c->checkpoint_every > 0 && t->st.step % c->checkpoint_every == 0) return 1;
  return 0;
}

// ---- resuming -----------------------------------------------------------------------------
// Rank 0 picks the checkpoint (and explains fallbacks); every rank opens it.
int ckpt_resume_prepare(trainer *t) {
  const train_config *c = t->cfg;
  dist_ctx *d = t->d;
  if (!c->resume[0]) return 0;
  char path[1200] = "";
  int found = 0;   // 1 found, 0 none (fresh start), -1 error
  char msg[2048] = "";
  if (d->rank == 0) {
    int is_auto = !strcmp(c->resume, "auto");
    char dir[TC_PATH_MAX + 32];
    if (is_auto) snprintf(dir, sizeof dir, "%s/checkpoints", c->out);
    else snprintf(dir, sizeof dir, "%s", c->resume);
    ckpt_file cf;
    char notes[1600] = "";
    int rc;
    // A path that names a checkpoint file is used as is; a directory (or
    // auto) means its newest valid checkpoint.
    if (!is_auto && strstr(c->resume, ".safetensors")) {
      dp_err e;
      dp_err_clear(&e);
      rc = ckpt_open(c->resume, &cf, &e) == 0 ? 0 : -1;
      if (rc) snprintf(notes, sizeof notes, "%s", e.msg);
    } else {
      rc = ckpt_find_latest(dir, &cf, notes, sizeof notes);
    }
    if (rc == 0) {
      snprintf(path, sizeof path, "%s", cf.path);
      ckpt_close(&cf);
      found = 1;
      if (notes[0]) LOG_WARN("resume: %s", notes);
    } else if (rc == 1 && is_auto) {
      LOG_INFO("resume auto: no checkpoint in %s; starting fresh", dir);
    } else {
      found = -1;
      snprintf(msg, sizeof msg, "%s", rc == 1 ? "no checkpoint there" : notes);
    }
  }
  MPI_CHECK(MPI_Bcast(&found, 1, MPI_INT, 0, d->comm), "agreeing on the checkpoint");
  if (found == -1) {
    if (d->rank == 0) fprintf(stderr, "dptrain: bad configuration: setting 'resume': %s: %s\n", c->resume, msg);
    return -1;
  }
  if (found == 0) return 0;
  MPI_CHECK(MPI_Bcast(path, sizeof path, MPI_CHAR, 0, d->comm), "agreeing on the checkpoint");
  dp_err e;
  dp_err_clear(&e);
  if (ckpt_open(path, &t->ck.file, &e))
    DP_FATAL("opening the checkpoint", "is OUT on a file system every rank sees?", "%s", e.msg);
  const jv *s = t->ck.file.state;
  const char *hash = jv_str(s, "config_hash", ""), *fp = jv_str(s, "data_fingerprint", "");
  int bad = 0;
  if (strcmp(hash, t->config_hash)) {
    if (d->rank == 0)
      fprintf(stderr, "dptrain: %s setting 'resume': %s was written by a run with another configuration (config "
              "hash %s, this run %s); compare its OUT/config.ini, or pass --resume-force\n",
              c->resume_force ? "warning:" : "bad configuration:", path, hash, t->config_hash);
    bad |= !c->resume_force;
  }
  if (strcmp(fp, t->data_fingerprint)) {
    if (d->rank == 0)
      fprintf(stderr, "dptrain: %s setting 'resume': %s was written for other data (fingerprint %s, these "
              "shards %s); pass --resume-force to continue anyway\n",
              c->resume_force ? "warning:" : "bad configuration:", path, fp, t->data_fingerprint);
    bad |= !c->resume_force;
  }
  if (bad) {
    ckpt_close(&t->ck.file);
    return -1;
  }
  snprintf(t->ck.resumed_from, sizeof t->ck.resumed_from, "%s", path);
  t->ck.csv_bytes = (int64_t)jv_num(s, "steps_csv_bytes", -1);
  // Position; a different world size deals the rest of the epoch out again.
  train_state *st = &t->st;
  st->step = (int64_t)jv_num(s, "step", 0);
  st->epoch = (int64_t)jv_num(s, "epoch", 0);
  st->batch_in_epoch = (int64_t)jv_num(s, "batch_in_epoch", 0);
  st->epoch_start = (int64_t)jv_num(s, "epoch_start", 0);
  int saved_world = (int)jv_num(s, "world_size", d->world);
  t->ck.saved_world = saved_world;
  if (saved_world != d->world) {
    int64_t consumed = st->epoch_start + st->batch_in_epoch * c->batch * (int64_t)saved_world;
    if (d->rank == 0)
      LOG_WARN("resume: the checkpoint was written by %d rank(s), this run has %d: the rest of epoch %lld "
               "(samples after the first %lld) is dealt out again over %d rank(s); the result is not bitwise "
               "equal to an uninterrupted run", saved_world, d->world, (long long)st->epoch, (long long)consumed,
               d->world);
    st->epoch_start = consumed;
    st->batch_in_epoch = 0;
    if (c->steps <= 0) {
      // Steps left: what remains of this epoch plus the remaining full epochs.
      int64_t left_this = (loader_total_samples(t->train) - consumed) / (c->batch * d->world) / c->accum;
      t->total_steps = st->step + left_this + (c->epochs - st->epoch - 1) * t->steps_per_epoch;
      if (t->total_steps < st->step) t->total_steps = st->step;
    }
  } else {
    t->total_steps = (int64_t)jv_num(s, "total_steps", (double)t->total_steps);
  }
  return 1;
}

void ckpt_resume_apply(trainer *t) {
  dist_ctx *d = t->d;
  nn_graph *g = t->g;
  ckpt_file *cf = &t->ck.file;
  const jv *s = cf->state;
  dp_err e;
  dp_err_clear(&e);
  float *p = nn_params_host(g), *b = nn_bufs_host(g);
  int same_world = t->ck.saved_world == d->world;
  if (ckpt_read_model(cf, g, same_world ? d->rank : 0, p, b, &e))
    DP_FATAL("restoring the model from the checkpoint", "was it written for this model?", "%s", e.msg);
  nn_params_push(g);
  if (!same_world && g->nbuf_elems > 0) {
    // Other world size: every rank starts from the mean of the saved ranks' buffers.
    float *acc = dp_calloc((size_t)g->nbuf_elems, sizeof(float), "buffer mean");
    float *tmp = dp_malloc((size_t)g->nbuf_elems * sizeof(float), "buffer mean");
    for (int r = 0; r < t->ck.saved_world; r++) {
      if (ckpt_read_model(cf, g, r, p, tmp, &e)) DP_FATAL("restoring BN buffers", "corrupt checkpoint?", "%s", e.msg);
      for (int64_t i = 0; i < g->nbuf_elems; i++) acc[i] += tmp[i] / (float)t->ck.saved_world;
    }
    memcpy(b, acc, (size_t)g->nbuf_elems * sizeof(float));
    free(acc);
    free(tmp);
  }
  nn_bufs_push(g);
  ensure_snap(t);
  if (ckpt_read_optim(cf, g, &t->ck.opt_snap, &e))
    DP_FATAL("restoring the optimizer from the checkpoint", "resume with the optimizer the run used", "%s", e.msg);
  char err[600];
  if (t->td->optim_load(t->td, t->st.opt, &t->ck.opt_snap, err, sizeof err))
    DP_FATAL("restoring the optimizer from the checkpoint", "resume with the optimizer the run used", "%s", err);
  train_state *st = &t->st;
  st->last_lr = (float)jv_num(s, "last_lr", 0);
  st->best_metric = jv_num(s, "early.best_metric", NAN);
  st->best_step = (int64_t)jv_num(s, "early.best_step", -1);
  st->evals_since_best = (int)jv_num(s, "early.evals_since_best", 0);
  st->stop = (int)jv_num(s, "early.stop", 0);
  st->last_eval_step = (int64_t)jv_num(s, "early.last_eval_step", -1);
  st->last_metric = jv_num(s, "early.last_metric", NAN);
  t->ck.best_ckpt_step = (int64_t)jv_num(s, "early.best_checkpoint_step", -1);
  loss_scaler *sc = &st->scaler;
  sc->enabled = (int)jv_num(s, "scaler.enabled", sc->enabled);
  sc->scale = (float)jv_num(s, "scaler.scale", sc->scale);
  sc->growth_factor = (float)jv_num(s, "scaler.growth_factor", sc->growth_factor);
  sc->backoff_factor = (float)jv_num(s, "scaler.backoff_factor", sc->backoff_factor);
  sc->growth_interval = (int64_t)jv_num(s, "scaler.growth_interval", (double)sc->growth_interval);
  sc->growth_tracker = (int64_t)jv_num(s, "scaler.growth_tracker", (double)sc->growth_tracker);
  sc->steps_skipped = (int64_t)jv_num(s, "scaler.steps_skipped", (double)sc->steps_skipped);
  sc->steps_total = (int64_t)jv_num(s, "scaler.steps_total", (double)sc->steps_total);
  if (loss_scaler_validate(sc)) {
    if (d->rank == 0) LOG_WARN("resume: the saved loss-scaler state is implausible; reinitialised");
    loss_scaler_init(sc, sc->enabled);
  }
  // This rank's stream and counters (on another world size: fresh ones, the
  // counters summed on rank 0 so the run's totals stay right).
  const jv *ranks = jv_get(s, "ranks");
  int nranks = ranks && ranks->type == JV_ARR ? ranks->n : 0;
  if (same_world && d->rank < nranks) {
    const jv *me = &ranks->items[d->rank];
    const jv *rng = jv_get(me, "rng");
    for (int k = 0; rng && rng->type == JV_ARR && k < 4 && k < rng->n; k++)
      st->rng.s[k] = hex_u64(rng->items[k].type == JV_STR ? rng->items[k].str : NULL);
    st->decoded_before = (int64_t)jv_num(me, "decoded", 0);
    st->skipped_before = (int64_t)jv_num(me, "skipped", 0);
  } else if (d->rank == 0) {
    for (int r = 0; r < nranks; r++) {
      st->decoded_before += (int64_t)jv_num(&ranks->items[r], "decoded", 0);
      st->skipped_before += (int64_t)jv_num(&ranks->items[r], "skipped", 0);
    }
  }
  st->wall_before = jv_num(s, "wall_s", 0);
  st->train_wall_before = jv_num(s, "train_wall_s", 0);
  st->segments = (int)jv_num(s, "segments", 1) + 1;
  t->base.rate = jv_num(s, "baseline.rate", NAN);
  t->base.f1 = jv_num(s, "baseline.f1", NAN);
  snprintf(t->base.source, sizeof t->base.source, "%s", jv_str(s, "baseline.source", ""));
  if (d->rank == 0) agg_from_json(t, s);
  t->ck.last_step = st->step;
  if (d->rank == 0)
    LOG_INFO("resumed from %s: step %lld, epoch %lld, batch %lld of the epoch (segment %d)", cf->path,
             (long long)st->step, (long long)st->epoch, (long long)st->batch_in_epoch, st->segments);
  ckpt_close(cf);
}

// ---- pretrained initialisation ---------------------------------------------------------
void init_weights_apply(trainer *t) {
  const train_config *c = t->cfg;
  if (!c->init_weights[0]) return;
  weights_init_opts o = {c->init_exclude, c->init_strict, 0};
  weights_init_report rep;
  char err[1024];
  // Every rank reads the same file: the replicas start identical.
  if (weights_init_load(c->init_weights, t->g, &o, &rep, err, sizeof err))
    DP_FATAL("loading --init-weights", "check the file, or relax --init-strict / set --init-exclude", "%s", err);
  if (t->d->rank == 0) {
    LOG_INFO("init weights %s: %d tensor(s) loaded, %d missing, %d unexpected, %d shape-mismatched, %d excluded, "
             "%d head tensor(s) skipped (shape differs)", c->init_weights, rep.loaded, rep.missing, rep.unexpected,
             rep.mismatched, rep.excluded, rep.head_skipped);
    if (rep.missing) LOG_INFO("init weights: first missing: %s (kept its fresh initialisation)", rep.first_missing);
    if (rep.unexpected) LOG_INFO("init weights: first unexpected: %s (ignored)", rep.first_unexpected);
    if (rep.mismatched) LOG_INFO("init weights: first shape mismatch: %s (kept its fresh initialisation)",
                                 rep.first_mismatch);
  }
}
