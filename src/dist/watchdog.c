// The collective watchdog (see watchdog.h).
#include "dist/watchdog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/timer.h"

#define TAG_BEAT 7301
#define HOST_LEN 64
#define GRACE_S 5.0

static const char *phase_names[WD_PHASES] = {"step start", "gradient all-reduce", "step-end agreement",
                                             "evaluation", "setup/checkpoint/results"};

struct dist_watchdog {
  MPI_Comm comm;            // private duplicate: beats never match other traffic
  double timeout_s;
  int64_t mine;             // this rank's position: step * WD_PHASES + phase
  int64_t *seen;            // (world) last position heard from each rank (rank 0: all; others: rank 0)
  int64_t *in;              // (world) receive buffers
  int64_t *out;             // (world) send buffers
  MPI_Request *rreq, *sreq; // (world)
  char *hosts;              // (world * HOST_LEN)
  int beats_heard;          // count of beats received (progress for the timeout rule)
};

static int64_t pos(int64_t step, wd_phase ph) { return step * WD_PHASES + (int64_t)ph; }

static void post_recv(struct dist_watchdog *w, int from) {
  MPI_CHECK(MPI_Irecv(&w->in[from], 1, MPI_INT64_T, from, TAG_BEAT, w->comm, &w->rreq[from]), "watchdog heartbeat");
}

void dist_watchdog_init(dist_ctx *d, double timeout_s) {
  if (d->wd) return;
  struct dist_watchdog *w = dp_calloc(1, sizeof *w, "watchdog");
  int W = d->world;
  w->timeout_s = timeout_s;
  w->mine = -1;
  w->seen = dp_calloc((size_t)W, sizeof(int64_t), "watchdog");
  w->in = dp_calloc((size_t)W, sizeof(int64_t), "watchdog");
  w->out = dp_calloc((size_t)W, sizeof(int64_t), "watchdog");
  w->rreq = dp_calloc((size_t)W, sizeof(MPI_Request), "watchdog");
  w->sreq = dp_calloc((size_t)W, sizeof(MPI_Request), "watchdog");
  w->hosts = dp_calloc((size_t)W * HOST_LEN, 1, "watchdog");
  for (int r = 0; r < W; r++) {
    w->seen[r] = -1;
    w->rreq[r] = w->sreq[r] = MPI_REQUEST_NULL;
  }
  char me[HOST_LEN] = {0};
  snprintf(me, sizeof me, "%.63s", d->host);
  MPI_CHECK(MPI_Allgather(me, HOST_LEN, MPI_CHAR, w->hosts, HOST_LEN, MPI_CHAR, d->comm), "watchdog host names");
  MPI_CHECK(MPI_Comm_dup(d->comm, &w->comm), "watchdog communicator");
  // Rank 0 hears from everyone, the others from rank 0.
  if (d->rank == 0)
    for (int r = 1; r < W; r++) post_recv(w, r);
  else
    post_recv(w, 0);
  d->wd = w;
}

void dist_watchdog_free(dist_ctx *d) {
  struct dist_watchdog *w = d->wd;
  if (!w) return;
  d->wd = NULL;
  for (int r = 0; r < d->world; r++) {
    if (w->rreq[r] != MPI_REQUEST_NULL) {
      MPI_Cancel(&w->rreq[r]);
      MPI_Request_free(&w->rreq[r]);
    }
    if (w->sreq[r] != MPI_REQUEST_NULL) MPI_Request_free(&w->sreq[r]);
  }
  MPI_Comm_free(&w->comm);
  free(w->seen);
  free(w->in);
  free(w->out);
  free(w->rreq);
  free(w->sreq);
  free(w->hosts);
  free(w);
}

// Drains the heartbeats that arrived; returns how many.
static int poll_beats(dist_ctx *d) {
  struct dist_watchdog *w = d->wd;
  int got = 0;
  int lo = d->rank == 0 ? 1 : 0, hi = d->rank == 0 ? d->world : 1;
  for (int r = lo; r < hi; r++) {
    for (;;) {
      int flag = 0;
      if (w->rreq[r] == MPI_REQUEST_NULL) break;
      MPI_CHECK(MPI_Test(&w->rreq[r], &flag, MPI_STATUS_IGNORE), "watchdog heartbeat");
      if (!flag) break;
      w->seen[r] = w->in[r];   // MPI keeps one sender's messages in order: the newest is the latest
      got++;
      post_recv(w, r);
    }
  }
  w->beats_heard += got;
  return got;
}

static void send_beat(dist_ctx *d, int to) {
  struct dist_watchdog *w = d->wd;
  if (w->sreq[to] != MPI_REQUEST_NULL) {
    int flag = 0;
    MPI_CHECK(MPI_Test(&w->sreq[to], &flag, MPI_STATUS_IGNORE), "watchdog heartbeat");
    if (!flag) return;   // the previous beat is still in flight: this one adds nothing
  }
  w->out[to] = w->mine;
  MPI_CHECK(MPI_Isend(&w->out[to], 1, MPI_INT64_T, to, TAG_BEAT, w->comm, &w->sreq[to]), "watchdog heartbeat");
}

void dist_watchdog_mark(dist_ctx *d, int64_t step, wd_phase phase) {
  struct dist_watchdog *w = d->wd;
  if (!w || d->world < 2) return;
  w->mine = pos(step, phase);
  if (d->rank == 0)
    for (int r = 1; r < d->world; r++) send_beat(d, r);
  else
    send_beat(d, 0);
  poll_beats(d);
}

static void describe_pos(int64_t p, char *buf, int n) {
  if (p < 0) snprintf(buf, (size_t)n, "no heartbeat yet");
  else snprintf(buf, (size_t)n, "step %lld (%s)", (long long)(p / WD_PHASES), phase_names[p % WD_PHASES]);
}

double dist_watchdog_timeout(const dist_ctx *d) { return d->wd ? d->wd->timeout_s : 600.0; }

void dist_watchdog_describe(const dist_ctx *d, int rank, char *buf, int n) {
  const struct dist_watchdog *w = d->wd;
  if (!w) {
    snprintf(buf, (size_t)n, "unknown (no watchdog)");
    return;
  }
  describe_pos(rank == d->rank ? w->mine : w->seen[rank], buf, n);
}

// The wait expired: say who is missing and end the job.
_Noreturn static void expire(dist_ctx *d, const char *what, double waited) {
  struct dist_watchdog *w = d->wd;
  poll_beats(d);
  char here[96];
  describe_pos(w->mine, here, sizeof here);
  const char *hint = "a rank is stopped, hung or lost (kill -STOP, a wedged node, a network fault); check that "
                     "rank's host, or raise --collective-timeout for very slow steps";
  if (d->rank == 0) {
    char list[768] = "";
    size_t len = 0;
    int nmiss = 0;
    for (int r = 1; r < d->world && len < sizeof list - 100; r++) {
      if (w->seen[r] >= w->mine) continue;
      char p[96];
      describe_pos(w->seen[r], p, sizeof p);
      len += (size_t)snprintf(list + len, sizeof list - len, "%srank %d (host %s, last seen at %s)",
                              nmiss ? ", " : "", r, w->hosts + (size_t)r * HOST_LEN, p);
      nmiss++;
    }
    if (nmiss)
      DP_FATAL("collective timeout", hint, "%s made no progress for %.0f s at %s: %s did not arrive", what, waited,
               here, list);
    DP_FATAL("collective timeout", hint,
             "%s made no progress for %.0f s at %s; every rank reached this point, so a rank stopped inside it",
             what, waited, here);
  }
  if (w->seen[0] < w->mine) {
    char p[96];
    describe_pos(w->seen[0], p, sizeof p);
    DP_FATAL("collective timeout", hint, "%s made no progress for %.0f s at %s: rank 0 (host %s, last seen at %s) "
             "did not arrive", what, waited, here, w->hosts, p);
  }
  // Rank 0 is at least as far as this rank: it names the missing rank; give
  // it time to do so before aborting from here.
  double t0 = dp_now();
  struct timespec ts = {0, 20000000};
  while (dp_now() - t0 < GRACE_S) nanosleep(&ts, NULL);
  DP_FATAL("collective timeout", hint, "%s made no progress for %.0f s at %s (rank 0 got here too; see its message "
           "for the missing rank)", what, waited + GRACE_S, here);
}

// Poll loop with backoff: spin briefly (latency of the gradient wait), then
// sleep in growing steps up to 1 ms.
static int wait_core(dist_ctx *d, int n, MPI_Request *reqs, int any, const char *what) {
  struct dist_watchdog *w = d->wd;
  double t0 = dp_now(), last_progress = t0;
  long sleep_ns = 0;
  for (int spins = 0;; spins++) {
    int flag = 0, idx = MPI_UNDEFINED;
    if (any) {
      MPI_CHECK(MPI_Testany(n, reqs, &idx, &flag, MPI_STATUS_IGNORE), what);
      if (flag) return idx;   // MPI_UNDEFINED when nothing was active
    } else {
      MPI_CHECK(MPI_Testall(n, reqs, &flag, MPI_STATUSES_IGNORE), what);
      if (flag) return 0;
    }
    double now = dp_now();
    if (d->world > 1 && poll_beats(d) > 0) last_progress = now;
    if (now - last_progress > w->timeout_s) expire(d, what, now - last_progress);
    if (spins > 2000) {
      sleep_ns = sleep_ns ? (sleep_ns * 2 < 1000000 ? sleep_ns * 2 : 1000000) : 1000;
      struct timespec ts = {0, sleep_ns};
      nanosleep(&ts, NULL);
    }
  }
}

void dist_wait_all(dist_ctx *d, int n, MPI_Request *reqs, const char *what) {
  if (!d->wd) {
    MPI_CHECK(MPI_Waitall(n, reqs, MPI_STATUSES_IGNORE), what);
    return;
  }
  wait_core(d, n, reqs, 0, what);
}

int dist_wait_any(dist_ctx *d, int n, MPI_Request *reqs, const char *what) {
  if (!d->wd) {
    int idx = MPI_UNDEFINED;
    MPI_CHECK(MPI_Waitany(n, reqs, &idx, MPI_STATUS_IGNORE), what);
    return idx;
  }
  return wait_core(d, n, reqs, 1, what);
}
