// Batch-size finder and memory budget (see train/memfit.h, docs/memory.md).
#include "train/memfit.h"

#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/membudget.h"
#include "core/sysinfo.h"
#include "core/timer.h"
#include "input/shard.h"
#include "nn/backend.h"
#include "nn/ops.h"
#include "nn/optim.h"

#define MEMFIT_MAX_BATCH ((int64_t)1 << 20)   // the --batch range
#define MIB (1024.0 * 1024.0)

struct memfit {
  const train_config *c;
  const dist_ctx *d;
  train_device *td;
  char **train_paths, **val_paths;
  int ntrain, nval;
  loader_dims tdims, vdims;
  int num_classes;
  model_cfg mc;
  int64_t max_batch;   // the data's limit: batch x accum x ranks <= samples
};

int train_model_cfg(const train_config *c, int num_classes, model_cfg *mc) {
  if (!model_cfg_default(mc, c->model, c->image_size, c->channels, num_classes)) return -1;
  mc->small_stem = c->small_stem;
  mc->zero_init_residual = c->zero_init_residual;
  if (c->patch > 0) mc->patch = c->patch;
  if (c->cnn_width > 0) mc->cnn_width = c->cnn_width;
  mc->dropout = c->dropout;
  return 0;
}

void train_loader_cfg(const train_config *c, const dist_ctx *d, const train_device *td, char **paths, int npaths,
                      int train, loader_cfg *lc) {
  loader_cfg_defaults(lc);
  lc->shards = paths;
  lc->nshards = npaths;
  lc->rank = d->rank;
  lc->world = d->world;
  lc->batch = c->batch;
  lc->drop_last = train;
  lc->shuffle = train;
  lc->seed = c->seed;
  lc->threads = d->loader_threads > 0 ? d->loader_threads : 1;
  lc->out_size = (int)c->image_size;
  lc->out_channels = c->channels;
  lc->train = train ? c->augment : 0;
  lc->rrc_scale[0] = c->rrc_scale_min;
  lc->hflip_p = c->hflip;
  lc->jitter = c->jitter;
  lc->mixup_alpha = train ? c->mixup : 0;
  lc->cutmix_alpha = train ? c->cutmix : 0;
  lc->num_classes = 0;   // from the shards, so a mismatch with --classes is caught
  lc->out_uint8 = td->loader_uint8;   // a GPU normalises on the device
  // Batch vs data checked before any batch buffer exists; an empty val split
  // is allowed (null metrics).
  lc->min_batches = train ? c->accum : 0;
}

memfit *memfit_open(const train_config *c, const dist_ctx *d, train_device *td, char *err, size_t n) {
  // Fixed mmap threshold: glibc otherwise raises it to the size of each big
  // block freed, later blocks of that size then stay in the heap after a
  // probe frees them, and the next probe would start on memory already
  // resident (its measured peak too low). Blocks above 1 MiB go back to the
  // system when freed.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
  memfit *m = dp_calloc(1, sizeof *m, "batch-size finder");
  m->c = c;
  m->d = d;
  m->td = td;
  dp_err e;
  dp_err_clear(&e);
  m->ntrain = shard_glob(c->train, &m->train_paths);
  if (m->ntrain <= 0) {
    snprintf(err, n, "setting 'train': no shards match '%s'", c->train);
    memfit_close(m);
    return NULL;
  }
  loader_cfg lc;
  train_loader_cfg(c, d, td, m->train_paths, m->ntrain, 1, &lc);
  if (train_loader_quality(c, -1, &lc, &e)) {   // the policy decides the crops the buffers must hold
    snprintf(err, n, "setting 'augment-policy': %s", e.msg);
    memfit_close(m);
    return NULL;
  }
  if (loader_scan(&lc, &m->tdims, &e)) {
    snprintf(err, n, "setting 'train': %s", e.msg);
    memfit_close(m);
    return NULL;
  }
  if (c->val[0]) {
    m->nval = shard_glob(c->val, &m->val_paths);
    train_loader_cfg(c, d, td, m->val_paths, m->nval, 0, &lc);
    if (m->nval > 0 && loader_scan(&lc, &m->vdims, &e)) {
      snprintf(err, n, "setting 'val': %s", e.msg);
      memfit_close(m);
      return NULL;
    }
  }
  m->num_classes = c->classes > 0 ? (int)c->classes : m->tdims.num_classes;
  if (train_model_cfg(c, m->num_classes, &m->mc)) {
    snprintf(err, n, "setting 'model': unknown model '%s'", c->model);
    memfit_close(m);
    return NULL;
  }
  m->max_batch = m->tdims.total / ((int64_t)d->world * c->accum);
  if (m->max_batch > MEMFIT_MAX_BATCH) m->max_batch = MEMFIT_MAX_BATCH;
  return m;
}

void memfit_close(memfit *m) {
  if (!m) return;
  for (int i = 0; i < m->ntrain; i++) free(m->train_paths[i]);
  for (int i = 0; i < m->nval; i++) free(m->val_paths[i]);
  free(m->train_paths);
  free(m->val_paths);
  free(m);
}

static optim_kind kind_of(const train_config *c) { return strcmp(c->optimizer, "adamw") ? OPTIM_SGD : OPTIM_ADAMW; }

static nn_graph *build_graph(memfit *m, int64_t batch, int planning) {
  nn_graph *g = planning ? nn_graph_create_planning(m->td->be, batch) : nn_graph_create(m->td->be, batch, m->c->seed);
  model_build(g, &m->mc);
  nn_xent_cfg xc = {m->c->label_smoothing, NULL, m->num_classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  return g;
}

void memfit_plan_batch(memfit *m, int64_t batch, memfit_plan *p) {
  memset(p, 0, sizeof *p);
  p->batch = batch;
  const train_config *c = m->c;
  nn_graph *g = build_graph(m, batch, 1);
  p->graph = nn_graph_memory_plan(g, optim_state_copies(kind_of(c)));
  nn_graph_destroy(g);
  train_config cb = *c;
  cb.batch = batch;
  loader_cfg lc;
  train_loader_cfg(&cb, m->d, m->td, m->train_paths, m->ntrain, 1, &lc);
  p->loader_bytes = loader_plan_bytes(&lc, &m->tdims);
  if (m->nval > 0) {
    train_loader_cfg(&cb, m->d, m->td, m->val_paths, m->nval, 0, &lc);
    p->loader_bytes += loader_plan_bytes(&lc, &m->vdims);
  }
  if (c->baseline_steps > 0) {
    // The in-job baseline: a single-rank training loader beside the run's,
    // and a copy of the weights and BN buffers (rank 0).
    train_config c1 = cb;
    dist_ctx d1 = *m->d;
    d1.world = 1;
    d1.rank = 0;
    train_loader_cfg(&c1, &d1, m->td, m->train_paths, m->ntrain, 1, &lc);
    p->loader_bytes += loader_plan_bytes(&lc, &m->tdims) + p->graph.params_bytes + p->graph.buffers_bytes;
  }
  int gpu = !(m->td->be)->host_memory;
  if (m->d->world > 1 && !gpu) {
    // The reducer's calibration buffer (one gradient copy, at setup, freed
    // before the optimizer state exists): it only raises the peak when
    // larger than that state.
    int64_t calib = p->graph.grads_bytes - p->graph.optimizer_bytes;
    p->comm_bytes = calib > 0 ? calib : 0;
  }
  if (gpu) {
    // Estimates (no GPU run yet, docs/memory.md): the cuDNN/cuBLASLt
    // workspace bound (256 MiB default), the context and library handles,
    // the pinned input path's device batches (uint8, double-buffered), soft
    // targets, and the bf16 gradient staging of the NCCL reducer.
    int64_t in = batch * c->image_size * c->image_size * c->channels;
    p->device_bytes = ((int64_t)256 << 20) + ((int64_t)768 << 20) + 2 * (in + batch * 4) +
                      batch * (int64_t)m->num_classes * 4 + (m->d->world > 1 ? p->graph.params_bytes / 2 : 0);
  }
  // Library start-up memory (cpu_runtime_bytes' *startup) is paid by the
  // warm-up step before the budget counts (memfit_warmup); the rest of the
  // runtime term (JIT code per op) is part of the run.
  p->total_bytes = p->graph.total_bytes - p->graph.runtime_startup_bytes + p->loader_bytes + p->comm_bytes +
                   p->device_bytes;
}

void memfit_plan_format(const memfit_plan *p, char *buf, size_t n) {
  char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
  int k = snprintf(buf, n, "params+grads+optimizer %s, activation arena %s, workspace %s, JIT code %s, loaders %s",
                   dp_size_format(p->graph.params_bytes + p->graph.grads_bytes + p->graph.optimizer_bytes +
                                      p->graph.buffers_bytes, a, sizeof a),
                   dp_size_format(p->graph.arena_bytes, b, sizeof b), dp_size_format(p->graph.workspace_bytes, c, sizeof c),
                   dp_size_format(p->graph.runtime_bytes - p->graph.runtime_startup_bytes, d, sizeof d),
                   dp_size_format(p->loader_bytes, e, sizeof e));
  if (k > 0 && (size_t)k < n && p->comm_bytes)
    k += snprintf(buf + k, n - (size_t)k, ", reduction %s", dp_size_format(p->comm_bytes, f, sizeof f));
  if (k > 0 && (size_t)k < n && p->device_bytes)
    snprintf(buf + k, n - (size_t)k, ", GPU context/workspace/staging %s (estimates)",
             dp_size_format(p->device_bytes, g, sizeof g));
}

int memfit_budget_get(memfit *m, memfit_budget *b, char *err, size_t n) {
  const train_config *c = m->c;
  char s1[32], s2[32];
  memset(b, 0, sizeof *b);
  if (c->memory_budget[0]) {
    b->budget = dp_size_parse(c->memory_budget);
    if (b->budget <= 0) {
      snprintf(err, n, "setting 'memory-budget': '%s' is not a size", c->memory_budget);
      return -1;
    }
    snprintf(b->source, sizeof b->source, "--memory-budget %s", c->memory_budget);
    return 0;
  }
  int gpu = !(m->td->be)->host_memory;
  int64_t avail = m->td->mem_free ? m->td->mem_free(m->td) : -1;
  if (avail <= 0) {
    b->budget = -1;
    snprintf(b->source, sizeof b->source, "unknown (no free-memory figure on this %s)", gpu ? "GPU" : "machine");
    return 0;
  }
  // Reserve for what is outside any plan (other processes, the page cache
  // the system needs, allocator drift): 10 %, at least 512 MiB (1 GiB on a GPU).
  int64_t reserve = avail / 10, floor_b = (int64_t)(gpu ? 1024 : 512) << 20;
  if (reserve < floor_b) reserve = floor_b;
  int sharing = gpu ? 1 : (m->d->local_world > 0 ? m->d->local_world : 1);
  b->budget = (avail - reserve) / sharing;
  snprintf(b->source, sizeof b->source, "%s %s minus a %s reserve%s%d rank%s", gpu ? "free GPU memory" : "available memory",
           dp_size_format(avail, s1, sizeof s1), dp_size_format(reserve, s2, sizeof s2), sharing > 1 ? ", over " : ", ",
           sharing, sharing > 1 ? "s on this node" : "");
  return 0;
}

int64_t memfit_search(memfit *m, int64_t usable, double scale) {
  memfit_plan p;
#define FITS(b) (memfit_plan_batch(m, (b), &p), (double)p.total_bytes * scale <= (double)usable)
  int64_t top = m->max_batch > 0 ? m->max_batch : 1;
  if (!FITS(1)) return 0;
  int64_t lo = 1, hi = 2;
  while (hi <= top && FITS(hi)) {
    lo = hi;
    hi *= 2;
  }
  if (hi > top) {
    if (FITS(top)) return top;
    hi = top;
  }
  while (hi - lo > 1) {   // plan(lo) fits, plan(hi) does not
    int64_t mid = lo + (hi - lo) / 2;
    if (FITS(mid)) lo = mid;
    else hi = mid;
  }
#undef FITS
  return lo;
}

// VmHWM back to the current resident set, so a probe's peak is its own; 0 if refused.
static int reset_peak(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY);
  if (fd < 0) return 0;
  int ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void memfit_probe(memfit *m, int64_t batch, int steps, memfit_row *row) {
  const train_config *c = m->c;
  train_device *td = m->td;
  memfit_plan p;
  memfit_plan_batch(m, batch, &p);
  memset(row, 0, sizeof *row);
  row->batch = batch;
  row->planned = p.total_bytes;
  row->measured = -1;
  int gpu = !(td->be)->host_memory;
  int resettable = reset_peak();
  int64_t rss0 = dp_proc_status_bytes("VmRSS"), free0 = gpu && td->mem_free ? td->mem_free(td) : -1;
  train_config cb = *c;
  cb.batch = batch;
  loader_cfg lc;
  train_loader_cfg(&cb, m->d, td, m->train_paths, m->ntrain, 1, &lc);
  dp_err e;
  dp_err_clear(&e);
  loader *tl = loader_create(&lc, &e), *vl = NULL;
  if (!tl) DP_FATAL("batch-size probe", "check the training shards", "%s", e.msg);
  if (m->nval > 0) {
    train_loader_cfg(&cb, m->d, td, m->val_paths, m->nval, 0, &lc);
    vl = loader_create(&lc, &e);
    if (!vl) DP_FATAL("batch-size probe", "check the validation shards", "%s", e.msg);
  }
  nn_graph *g = build_graph(m, batch, 0);
  nn_graph_finalize(g);
  nn_graph_set_training(g, 1);
  optim_cfg oc;
  optim_cfg_defaults(&oc, kind_of(c));
  oc.lr = c->lr;
  loss_scaler scaler;
  memset(&scaler, 0, sizeof scaler);
  void *opt = td->optim_create(td, &oc, g, model_num_stages(&m->mc), &scaler);
  nn_step s;
  nn_step_init(&s, g);
  double *t = dp_calloc((size_t)steps, sizeof(double), "probe times");
  int64_t epoch = 0;
  loader_start_epoch(tl, epoch);
  for (int k = 0; k < steps; k++) {
    const loader_batch *b = loader_next_batch(tl);
    if (!b) {
      loader_start_epoch(tl, ++epoch);
      b = loader_next_batch(tl);
    }
    if (!b) DP_FATAL("batch-size probe", "use more training data or a smaller batch", "no batch of %lld samples",
                     (long long)batch);
    double t0 = dp_now();
    td->feed(td, g, &s, b, b->n > 0 ? b->n : batch);
    nn_forward(g, &s);
    nn_backward(g, &s);
    td->optim_step(td, opt, g);
    t[k] = dp_now() - t0;
    if (k == 0) {
      // The one confirming measurement: the peak of a whole training step.
      if (gpu) {
        int64_t free1 = td->mem_free ? td->mem_free(td) : -1;
        row->measured = free0 >= 0 && free1 >= 0 ? free0 - free1 : -1;
      } else {
        int64_t hwm = dp_proc_status_bytes("VmHWM");
        row->measured = hwm >= 0 && rss0 >= 0 ? hwm - rss0 : -1;
        if (!resettable) row->measured = -1;   // the peak would be an earlier one
      }
    }
  }
  if (steps >= 2) {
    qsort(t + 1, (size_t)(steps - 1), sizeof *t, cmp_d);
    int nt = steps - 1;
    double med = nt % 2 ? t[1 + nt / 2] : 0.5 * (t[nt / 2] + t[1 + nt / 2]);
    row->img_s = med > 0 ? (double)batch / med : 0;
  }
  free(t);
  td->optim_destroy(td, opt);
  nn_graph_destroy(g);
  loader_destroy(tl);
  loader_destroy(vl);
}

void memfit_warmup(memfit *m) {
  memfit_row r;
  memfit_probe(m, 1, 1, &r);
}

int64_t memfit_choose(memfit *m, const memfit_budget *b, FILE *log, memfit_row *row, char *err, size_t n) {
  char s1[32], s2[32], s3[32];
  const double margin = m->c->memory_margin;
  int64_t usable = (int64_t)((double)b->budget * (1.0 - margin));
  double scale = 1.0;
  int64_t batch = memfit_search(m, usable, scale);
  for (int attempt = 0;; attempt++) {
    if (batch < 1) {
      memfit_plan p;
      memfit_plan_batch(m, 1, &p);
      snprintf(err, n, "setting 'batch': even batch 1 needs %s planned%s, more than the %s usable (budget %s from %s, "
               "margin %.0f %%)", dp_size_format((int64_t)(p.total_bytes * scale), s1, sizeof s1),
               scale > 1 ? " (scaled by what a probe measured)" : "", dp_size_format(usable, s2, sizeof s2),
               dp_size_format(b->budget, s3, sizeof s3), b->source, 100 * margin);
      return 0;
    }
    memfit_probe(m, batch, 1, row);
    if (row->measured < 0 || (double)row->measured <= (double)row->planned * (1.0 + margin)) return batch;
    double ratio = (double)row->measured / (double)row->planned;
    if (log)
      fprintf(log, "memfit: the plan is wrong: batch %lld measured %s, planned %s (%+.1f %%, margin %.0f %%); "
                   "stepping down with the plan scaled by %.3f\n",
              (long long)batch, dp_size_format(row->measured, s1, sizeof s1),
              dp_size_format(row->planned, s2, sizeof s2), 100 * (ratio - 1), 100 * margin, ratio);
    if (ratio > scale) scale = ratio;
    int64_t next = memfit_search(m, usable, scale);
    batch = next < batch ? next : batch - 1;
    if (attempt >= 4) {
      snprintf(err, n, "setting 'batch': the memory plan underestimates this run by %.0f %% at batch %lld; "
               "give --batch explicitly", 100 * (ratio - 1), (long long)row->batch);
      return 0;
    }
  }
}

// Agreement over the ranks: the worst status and the smallest batch; the
// first failing rank's message is printed by that rank.
static int agree(dist_ctx *d, int status, int64_t *batch, const char *msg) {
  int worst = status;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MAX, d->comm), "agreeing on the batch");
  int first = status ? d->rank : d->world;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, d->comm), "agreeing on the batch");
  if (worst && d->rank == first) {
    if (d->world > 1) fprintf(stderr, "dptrain: [rank %d host %s] bad configuration: %s\n", d->rank, d->host, msg);
    else fprintf(stderr, "dptrain: bad configuration: %s\n", msg);
  }
  long long b = (long long)*batch;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &b, 1, MPI_LONG_LONG, MPI_MIN, d->comm), "agreeing on the batch");
  *batch = b;
  return worst;
}

train_config *memfit_config_copy(const train_config *c) {
  static train_config fitted;
  fitted = *c;
  return &fitted;
}

int memfit_prepare(train_config *c, dist_ctx *d, train_device *td) {
  char msg[1024] = "", s1[32], s2[32], s3[32];
  memfit *m = memfit_open(c, d, td, msg, sizeof msg);
  // The libraries start on a one-image step; the budget counts from after it.
  int enforce = c->memory_enforce && (c->memory_budget[0] || c->auto_batch) && td->be->host_memory;
  if (m && (c->auto_batch || enforce)) memfit_warmup(m);
  memfit_budget b = {0};
  int status = !m || memfit_budget_get(m, &b, msg, sizeof msg);
  int64_t batch = c->batch;
  memfit_plan p;
  memset(&p, 0, sizeof p);
  memfit_row row = {0};
  if (!status && c->auto_batch) {
    if (b.budget <= 0) {
      snprintf(msg, sizeof msg, "setting 'batch': --batch auto needs a memory budget: %s; give --memory-budget",
               b.source);
      status = 1;
    } else {
      batch = memfit_choose(m, &b, d->rank == 0 ? stderr : NULL, &row, msg, sizeof msg);
      status = batch < 1;
    }
  } else if (!status) {
    // An explicit batch is refused before anything is allocated when its
    // plan cannot fit (e.g. --batch 1000000).
    memfit_plan_batch(m, batch, &p);
    if (b.budget > 0 && p.total_bytes > b.budget) {
      char bd[512];
      memfit_plan_format(&p, bd, sizeof bd);
      snprintf(msg, sizeof msg, "setting 'batch': batch %lld needs %s of memory per rank as planned (%s), more than the "
               "budget of %s (%s); lower --batch, or use --batch auto", (long long)batch,
               dp_size_format(p.total_bytes, s1, sizeof s1), bd, dp_size_format(b.budget, s2, sizeof s2), b.source);
      status = 1;
    }
  }
  int worst = agree(d, status, &batch, msg);
  if (worst) {
    memfit_close(m);
    return 2;
  }
  c->batch = batch;
  memfit_plan_batch(m, batch, &p);
  // The budget counts from here: after the warm-up and the probe, whose
  // library state (JIT kernels in oneDNN's primitive cache, thread pools)
  // the run reuses. The probe has shown a whole step fits the plan.
  int64_t rss0 = dp_proc_status_bytes("VmRSS");
  if (c->auto_batch && d->rank == 0) {
    char bd[512];
    memfit_plan_format(&p, bd, sizeof bd);
    LOG_INFO("memory: --batch auto chose batch %lld per rank: planned %s (%s) of a %s budget (%s) less %.0f %% margin; "
             "the probe step measured %s (%+.1f %%)", (long long)batch, dp_size_format(p.total_bytes, s1, sizeof s1), bd,
             dp_size_format(b.budget, s2, sizeof s2), b.source, 100 * c->memory_margin,
             row.measured >= 0 ? dp_size_format(row.measured, s3, sizeof s3) : "nothing (peak not resettable)",
             row.measured >= 0 && row.planned > 0 ? 100.0 * (double)(row.measured - row.planned) / (double)row.planned : 0.0);
  }
  // Enforce the budget from here on (CPU): an allocation or a step past it is
  // an error naming the budget and the plan. The growth counts from before
  // the probe, so what the probe left resident (allocator caches) counts too.
  if (enforce && b.budget > 0) dp_budget_enforce(b.budget, p.total_bytes, b.source, rss0);
  // The saved config repeats the run with the batch found.
  c->auto_batch = 0;
  memfit_close(m);
  return 0;
}

// Rows of the table: the chosen batch, the multiple of 8 below it, and a few
// smaller ones.
static int table_batches(int64_t chosen, int64_t *out) {
  int64_t cand[5] = {chosen, chosen / 8 * 8, chosen * 3 / 4, chosen / 2, chosen / 4};
  int n = 0;
  for (int i = 0; i < 5; i++) {
    if (cand[i] < 1) continue;
    int dup = 0;
    for (int j = 0; j < n; j++) dup |= out[j] == cand[i];
    if (!dup) out[n++] = cand[i];
  }
  for (int i = 1; i < n; i++)   // descending
    for (int j = i; j > 0 && out[j] > out[j - 1]; j--) {
      int64_t x = out[j];
      out[j] = out[j - 1];
      out[j - 1] = x;
    }
  return n;
}

void memfit_report(const dist_ctx *d) {
  // Every rank takes part (the budget is the same decision on all of them).
  long long worst = dp_budget_active() ? (long long)dp_budget_peak_growth() : -1;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_LONG_LONG, MPI_MAX, d->comm), "memory budget report");
  char s1[32], s2[32];
  if (d->rank == 0 && worst >= 0)
    LOG_INFO("memory: the budget of %s held: peak growth %s (largest over the ranks), no allocation past it",
             dp_size_format(dp_budget_limit(), s1, sizeof s1), dp_size_format((int64_t)worst, s2, sizeof s2));
}

int memfit_tune(const train_config *c, dist_ctx *d, train_device *td) {
  char msg[1024] = "", s1[32], s2[32], s3[32];
  memfit *m = memfit_open(c, d, td, msg, sizeof msg);
  memfit_budget b = {0};
  int status = !m || memfit_budget_get(m, &b, msg, sizeof msg);
  if (!status && b.budget <= 0) {
    snprintf(msg, sizeof msg, "setting 'memory-budget': no free-memory figure here (%s); give --memory-budget", b.source);
    status = 1;
  }
  memfit_row chosen_row = {0};
  int64_t chosen = 0;
  if (!status) memfit_warmup(m);   // library start-up, outside the budget
  if (!status) {
    chosen = memfit_choose(m, &b, d->rank == 0 ? stdout : NULL, &chosen_row, msg, sizeof msg);
    status = chosen < 1;
  }
  if (agree(d, status, &chosen, msg)) {
    memfit_close(m);
    return 2;
  }
  int64_t usable = (int64_t)((double)b.budget * (1.0 - c->memory_margin));
  int64_t rows_b[5];
  int nr = table_batches(chosen, rows_b);
  memfit_row rows[5];
  for (int i = 0; i < nr; i++) memfit_probe(m, rows_b[i], c->tune_steps, &rows[i]);
  if (d->rank == 0) {
    printf("tune-batch: %s %lld px, %s, %s on %s, accum %d, %d rank(s)\n", c->model, (long long)c->image_size,
           c->optimizer, td->precision, td->name, c->accum, d->world);
    printf("budget per rank %s (%s); margin %.0f %% -> usable %s\n", dp_size_format(b.budget, s1, sizeof s1), b.source,
           100 * c->memory_margin, dp_size_format(usable, s2, sizeof s2));
    printf("\n| batch | planned | measured peak | measured vs plan | img/s |\n|---|---|---|---|---|\n");
    for (int i = 0; i < nr; i++) {
      char mv[32] = "-", dv[32] = "-";
      if (rows[i].measured >= 0) {
        dp_size_format(rows[i].measured, mv, sizeof mv);
        snprintf(dv, sizeof dv, "%+.1f %%", 100.0 * (double)(rows[i].measured - rows[i].planned) / (double)rows[i].planned);
      }
      printf("| %lld%s | %s | %s | %s | %.2f |\n", (long long)rows[i].batch, rows[i].batch == chosen ? " (largest)" : "",
             dp_size_format(rows[i].planned, s3, sizeof s3), mv, dv, rows[i].img_s);
    }
    // A multiple of 8 only when it measured clearly faster (tensor-core and SIMD
    // blockings often like it; measured here, not assumed).
    int64_t pick = chosen;
    double best = nr > 0 ? rows[0].img_s : 0;
    for (int i = 0; i < nr; i++)
      if (rows[i].batch == chosen / 8 * 8 && rows[i].batch != chosen && rows[i].img_s > 1.03 * best)
        pick = rows[i].batch;   // 3 %: beyond the step-time noise of a shared machine
    memfit_plan p;
    memfit_plan_batch(m, pick, &p);
    char bd[512];
    memfit_plan_format(&p, bd, sizeof bd);
    printf("\nrecommended: --batch %lld (%s)\n  plan: %s\n", (long long)pick,
           pick == chosen ? "the largest batch under the budget" : "a multiple of 8 that measured faster than the largest",
           bd);
    if (c->global_batch > 0) {
      int64_t G = c->global_batch, W = d->world, k = (G + W * pick - 1) / (W * pick), exact = 0;
      for (int64_t kk = k; kk <= k + 64 && kk * W <= G; kk++)
        if (G % (W * kk) == 0) {
          exact = kk;
          break;
        }
      int64_t acc = exact ? exact : k, per = exact ? G / (W * exact) : (G + W * k - 1) / (W * k);
      printf("global batch %lld: --accum %lld x --batch %lld x %lld rank(s) = %lld%s\n", (long long)G, (long long)acc,
             (long long)per, (long long)W, (long long)(acc * per * W),
             exact ? "" : " (no exact split under the largest batch: the nearest above)");
    }
    fflush(stdout);
  }
  memfit_close(m);
  return 0;
}
