#include "track/tracker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/timer.h"
#include "track/http.h"
#include "track/mlflow.h"
#include "track/ship.h"

#define BACKOFF_MAX_S 60.0
#define IDLE_WAKE_S 5.0
#define CLOSE_CAP_S 60.0   // the end-of-run wait never exceeds this

struct trk_tracker {
  trk_spool_writer w;
  int writer_broken;
  char dir[1024];
  char uri[1024];
  double timeout_s;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int wake;                  // new records (under mu)
  trk_ident id;              // the shipper's latest view (under mu)
  atomic_int stop;
  // When stopping, calls abort once drain_us passed without an accepted
  // request (counting from the close) or at hard_us (dp_now() microseconds).
  atomic_llong close_us, last_ok_us, drain_us, hard_us;
  int lock_fd;
  int shipping;              // the thread runs
  pthread_t th;
};

static int should_abort(void *ctx) {
  trk_tracker *t = ctx;
  if (!atomic_load(&t->stop)) return 0;
  long long now = (long long)(dp_now() * 1e6), since = atomic_load(&t->last_ok_us);
  if (since < atomic_load(&t->close_us)) since = atomic_load(&t->close_us);
  return now > since + atomic_load(&t->drain_us) || now > atomic_load(&t->hard_us);
}

static void on_success(void *ctx) {
  trk_tracker *t = ctx;
  atomic_store(&t->last_ok_us, (long long)(dp_now() * 1e6));
}

// Waits until woken by new records (any_wake) or by stop, or for secs.
static void wait_for(trk_tracker *t, double secs, int any_wake) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double end = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + secs;
  ts.tv_sec = (time_t)end;
  ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
  pthread_mutex_lock(&t->mu);
  while (!atomic_load(&t->stop) && !(any_wake && t->wake))
    if (pthread_cond_timedwait(&t->cv, &t->mu, &ts) == ETIMEDOUT) break;
  if (any_wake) t->wake = 0;
  pthread_mutex_unlock(&t->mu);
}

static void *shipper_main(void *arg) {
  trk_tracker *t = arg;
  // With CURLOPT_NOSIGNAL, a TLS write to a connection the server closed can
  // raise SIGPIPE, which would end the training. Blocked in this thread, the
  // (thread-directed) signal stays pending and the write fails with EPIPE.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  trk_http_opts ho;
  trk_http_opts_default(&ho);
  ho.timeout_s = t->timeout_s;
  ho.connect_timeout_s = t->timeout_s < 5 ? t->timeout_s : 5;
  ho.max_attempts = 2;   // the loop below backs off further between rounds
  ho.backoff_s = 0.5;
  ho.backoff_cap_s = 4;
  ho.should_abort = should_abort;
  ho.on_success = on_success;
  ho.abort_ctx = t;
  dp_err e;
  dp_err_clear(&e);
  trk_client *c = trk_client_create(t->uri, &ho, &e);
  if (!c) {
    LOG_WARN("MLflow: %s; records stay in %s", e.msg, t->dir);
    return NULL;
  }
  pthread_mutex_lock(&t->mu);
  trk_ident id = t->id;
  pthread_mutex_unlock(&t->mu);
  double delay = 1.0;
  char last_warn[512] = "";
  trk_ship_stats st;
  memset(&st, 0, sizeof st);
  for (;;) {
    int stopping = atomic_load(&t->stop);
    dp_err_clear(&e);
    int rc = trk_ship(c, t->dir, &id, &st, &e);
    pthread_mutex_lock(&t->mu);
    t->id = id;
    pthread_mutex_unlock(&t->mu);
    if (rc == 0) {
      if (last_warn[0]) LOG_INFO("MLflow: %s answers again; the spool is shipped", t->uri);
      last_warn[0] = 0;
      delay = 1.0;
      if (stopping) break;
      wait_for(t, IDLE_WAKE_S, 1);
      continue;
    }
    if (e.code == TRK_E_LOCAL) {
      LOG_WARN("MLflow spool: %s; shipping stops (`dptrain track sync` can retry)", e.msg);
      break;
    }
    if (e.code != TRK_E_ABORTED && strcmp(last_warn, e.msg)) {
      LOG_WARN("MLflow: %s; records stay in %s and are retried in the background (training goes on)", e.msg, t->dir);
      snprintf(last_warn, sizeof last_warn, "%s", e.msg);
    }
    if (stopping) break;   // draining: one try, no backoff
    wait_for(t, delay, 0);
    delay = delay * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : delay * 2;
  }
  trk_client_destroy(c);
  return NULL;
}

trk_tracker *trk_open(const trk_open_opts *o, int *resumed, dp_err *err) {
  if (resumed) *resumed = 0;
  if (trk_http_global_init(err)) return NULL;
  trk_tracker *t = dp_calloc(1, sizeof *t, "tracker");
  snprintf(t->dir, sizeof t->dir, "%s", o->spool_dir);
  snprintf(t->uri, sizeof t->uri, "%s", o->uri);
  t->timeout_s = o->timeout_s > 0 ? o->timeout_s : 10;
  t->lock_fd = -1;
  t->w.log.fd = -1;
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  if (dp_mkdir_p(t->dir, err)) goto fail;
  char holder[64] = "";
  int lk = trk_spool_lock(t->dir, &t->lock_fd, holder, sizeof holder, err);
  if (lk < 0) goto fail;
  trk_ident id;
  int have = trk_ident_load(t->dir, &id, err);
  if (have < 0) goto fail;
  if (have == 0 && !o->continue_run && lk == 1) {
    dp_err_set(err, TRK_E_LOCAL, "%s belongs to an earlier run and is in use by %s (a `track sync`?)", t->dir, holder);
    goto fail;
  }
  if (have == 0 && !o->continue_run) {
    // A fresh start: the earlier run's spool is history, not this run's.
    int64_t off = trk_cursor_load(t->dir, NULL);
    int64_t left = off < 0 ? -1 : trk_spool_count_pending(t->dir, off);
    char old[1200];
    snprintf(old, sizeof old, "%s.prev-%s", t->dir, id.spool_id);
    trk_spool_unlock(t->lock_fd);   // the lock file moves with the directory
    t->lock_fd = -1;
    if (rename(t->dir, old) != 0) {
      dp_err_set(err, TRK_E_LOCAL, "moving the previous run's spool %s aside to %s: %s", t->dir, old,
                 strerror(errno));
      goto fail;
    }
    if (left != 0)
      LOG_WARN("MLflow: the previous run in %s had %lld unsent record(s); its spool is now %s", t->dir,
               (long long)left, old);
    if (dp_mkdir_p(t->dir, err)) goto fail;
    lk = trk_spool_lock(t->dir, &t->lock_fd, holder, sizeof holder, err);
    if (lk < 0) goto fail;
    have = 1;
  }
  if (have == 0) {
    if (resumed) *resumed = 1;
    if (strcmp(id.tracking_uri, o->uri)) {
      // A run id of another server means nothing here: replay everything.
      LOG_WARN("MLflow: %s was tracked to %s; its records go to a new run at %s", t->dir, id.tracking_uri, o->uri);
      id.run_id[0] = id.experiment_id[0] = id.artifact_uri[0] = 0;
      snprintf(id.tracking_uri, sizeof id.tracking_uri, "%s", o->uri);
      if (trk_cursor_save(t->dir, 0, err)) goto fail;
    }
  } else {
    memset(&id, 0, sizeof id);
    trk_make_spool_id(id.spool_id, sizeof id.spool_id);
    snprintf(id.tracking_uri, sizeof id.tracking_uri, "%s", o->uri);
    snprintf(id.experiment, sizeof id.experiment, "%s", o->experiment && o->experiment[0] ? o->experiment : "dptrain");
    snprintf(id.run_name, sizeof id.run_name, "%s", o->run_name ? o->run_name : "");
    id.start_ms = trk_now_ms();
  }
  if (trk_ident_save(t->dir, &id, err)) goto fail;
  t->id = id;
  if (trk_spool_writer_open(&t->w, t->dir, err)) goto fail;
  if (lk == 1) {
    LOG_WARN("MLflow: %s is being shipped by %s; this run only appends to it", t->dir, holder);
  } else if (pthread_create(&t->th, NULL, shipper_main, t) != 0) {
    LOG_WARN("MLflow: cannot start the shipper thread (%s); records stay in %s", strerror(errno), t->dir);
  } else {
    t->shipping = 1;
  }
  return t;
fail:
  trk_spool_writer_close(&t->w, NULL);
  trk_spool_unlock(t->lock_fd);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  free(t);
  return NULL;
}

void trk_param(trk_tracker *t, const char *key, const char *value) {
  if (t && !t->writer_broken) trk_spool_param(&t->w, key, value);
}
void trk_metric(trk_tracker *t, const char *key, double value, int64_t step) {
  if (t && !t->writer_broken) trk_spool_metric(&t->w, key, value, step, trk_now_ms());
}
void trk_tag(trk_tracker *t, const char *key, const char *value) {
  if (t && !t->writer_broken) trk_spool_tag(&t->w, key, value);
}
void trk_artifact(trk_tracker *t, const char *file, const char *dir) {
  if (t && !t->writer_broken) trk_spool_artifact(&t->w, file, dir);
}
void trk_status(trk_tracker *t, const char *status) {
  if (t && !t->writer_broken) trk_spool_status(&t->w, status, trk_now_ms());
}

void trk_flush(trk_tracker *t) {
  if (!t || t->writer_broken) return;
  dp_err e;
  dp_err_clear(&e);
  if (trk_spool_flush(&t->w, &e)) {
    // The spool is an aid, not the run: warn once and train on untracked.
    LOG_WARN("MLflow spool: %s; tracking stops for this run", e.msg);
    t->writer_broken = 1;
    return;
  }
  pthread_mutex_lock(&t->mu);
  t->wake = 1;
  pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

void trk_identity(trk_tracker *t, trk_ident *out) {
  if (!t) {
    memset(out, 0, sizeof *out);
    return;
  }
  pthread_mutex_lock(&t->mu);
  *out = t->id;
  pthread_mutex_unlock(&t->mu);
}

int64_t trk_close(trk_tracker *t, double drain_s) {
  if (!t) return 0;
  trk_flush(t);
  int joined = 1;
  if (t->shipping) {
    double cap = drain_s > CLOSE_CAP_S ? drain_s : CLOSE_CAP_S;
    atomic_store(&t->drain_us, (long long)(drain_s * 1e6));
    atomic_store(&t->hard_us, (long long)((dp_now() + cap) * 1e6));
    atomic_store(&t->close_us, (long long)(dp_now() * 1e6));
    pthread_mutex_lock(&t->mu);
    atomic_store(&t->stop, 1);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    // Transfers abort at the deadline (curl's progress callback); the margin
    // covers a connect or name lookup that ignores it.
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)cap + 3;
    if (pthread_timedjoin_np(t->th, NULL, &ts) != 0) {
      joined = 0;
      LOG_WARN("MLflow: the shipper is still in a call %.0f s after the end; leaving it", cap + 3);
      pthread_detach(t->th);
    }
  }
  dp_err e;
  dp_err_clear(&e);
  int64_t off = trk_cursor_load(t->dir, &e);
  int64_t pending = off < 0 ? -1 : trk_spool_count_pending(t->dir, off);
  trk_ident id;
  trk_identity(t, &id);
  char out_dir[1024];
  trk_spool_out_dir(t->dir, out_dir, sizeof out_dir);
  if (pending != 0)
    LOG_WARN("MLflow: %lld record(s) not sent to %s yet; they are kept in %s: run `dptrain track sync %s` once the "
             "server is up",
             (long long)pending, t->uri, t->dir, out_dir);
  else if (id.run_id[0])
    LOG_INFO("MLflow: run %s complete at %s (experiment %s)", id.run_id, t->uri, id.experiment_id);
  trk_spool_writer_close(&t->w, &e);
  if (!joined) return pending;   // the thread may still read t: leave it allocated
  trk_spool_unlock(t->lock_fd);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  free(t);
  return pending;
}
