// The in-job single-rank baseline: before training, rank 0 alone trains K
// steps at the same per-rank batch on a copy of the state (restored after),
// while the other ranks sleep in a non-blocking barrier.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/timer.h"
#include "dist/watchdog.h"
#include "train/run.h"

// ---- in-job single-rank baseline ----------------------------------------------
static void wait_barrier_idle(dist_ctx *d) {
  // Ibarrier + a sleeping poll, not MPI_Barrier: a spinning barrier would
  // steal the cores rank 0 measures its baseline on. The watchdog's wait
  // sleeps between polls, and rank 0's per-step heartbeats keep it from
  // expiring while the baseline runs.
  MPI_Request req;
  MPI_CHECK(MPI_Ibarrier(d->comm, &req), "baseline barrier");
  if (!d->wd) {
    int done = 0;
    struct timespec ts = {0, 2000000};
    for (;;) {
      MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "baseline barrier");
      if (done) break;
      nanosleep(&ts, NULL);
    }
    return;
  }
  dist_wait_all(d, 1, &req, "the single-rank baseline (other ranks wait for rank 0)");
}

void run_baseline(trainer *t) {
  int64_t K = t->cfg->baseline_steps;
  if (t->d->rank == 0) {
    LOG_INFO("baseline: rank 0 alone trains %lld step(s) at batch %lld (other ranks idle)", (long long)K,
             (long long)t->cfg->batch);
    nn_graph *g = t->g;
    float *p0 = dp_malloc((size_t)g->nparam_elems * 4, "baseline weights copy");
    float *b0 = dp_malloc((size_t)(g->nbuf_elems ? g->nbuf_elems : 1) * 4, "baseline buffers copy");
    memcpy(p0, nn_params_host(g), (size_t)g->nparam_elems * 4);
    if (g->nbuf_elems) memcpy(b0, nn_bufs_host(g), (size_t)g->nbuf_elems * 4);
    loader_cfg lc = t->train_lc;
    lc.rank = 0;
    lc.world = 1;
    dp_err err;
    dp_err_clear(&err);
    loader *l = loader_create(&lc, &err);
    if (!l) DP_FATAL("baseline", "check the training shards", "%s", err.msg);
    // The baseline's optimizer gets a fresh scaler in the state's slot (the
    // loop reads the seed from there); the run's scaler is restored after.
    loss_scaler saved_scaler = t->st.scaler;
    void *o = t->td->optim_create(t->td, &t->oc, g, model_num_stages(&t->mc), &t->st.scaler);
    t->td->optim_freezing(t->td, o, g, 0);
    nn_step bs;   // no gradient hook: the baseline does not communicate
    nn_step_init(&bs, g);
    bs.defer_loss = t->td->loss_submit != NULL;
    loader_start_epoch(l, 0);
    int64_t per_epoch = loader_batches_per_epoch(l) / t->cfg->accum, in_epoch = 0, epoch = 0;
    int64_t warm = K >= 2 ? 1 : 0;   // the first step pays for cold caches and thread start-up
    double tsum = 0, imgs = 0;
    for (int64_t k = 0; k < K; k++) {
      if (in_epoch >= per_epoch) loader_start_epoch(l, ++epoch), in_epoch = 0;
      dist_watchdog_mark(t->d, 0, WD_OTHER);   // any heartbeat keeps the waiting ranks' deadline away
      step_vals s = train_step(t, l, o, &bs, 0, 0);
      in_epoch++;
      if (k >= warm) tsum += s.v[V_STEP], imgs += s.v[V_IMAGES];
      if (k >= warm) step_series_add(&t->res.baseline_hist, s.v[V_STEP]);   // study: baseline spread
    }
    t->base.rate = tsum > 0 ? imgs / tsum : NAN;
    t->td->optim_destroy(t->td, o);
    t->st.scaler = saved_scaler;
    loader_destroy(l);
    memcpy(nn_params_host(g), p0, (size_t)g->nparam_elems * 4);
    nn_params_push(g);
    if (g->nbuf_elems) {
      memcpy(nn_bufs_host(g), b0, (size_t)g->nbuf_elems * 4);
      nn_bufs_push(g);
    }
    free(p0);
    free(b0);
    LOG_INFO("baseline: %.2f img/s on one rank", t->base.rate);
    MPI_Request req;
    MPI_CHECK(MPI_Ibarrier(t->d->comm, &req), "baseline barrier");
    dist_wait_all(t->d, 1, &req, "the end of the single-rank baseline");
  } else {
    wait_barrier_idle(t->d);
  }
  MPI_CHECK(MPI_Bcast(&t->base.rate, 1, MPI_DOUBLE, 0, t->d->comm), "sharing the baseline rate");
  snprintf(t->base.source, sizeof t->base.source, "in-job");
}

