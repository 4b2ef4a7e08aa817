#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "core/afile.h"
#include "core/log.h"
#include "core/sysinfo.h"
#include "core/timer.h"
#include "input/augment.h"
#include "input/loader.h"
#include "input/shard.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "train/cost.h"
#include "core/jsonread.h"
#include "train/results.h"
#include "train/device.h"
#include "train/eval.h"
#include "nn/optim.h"
#include "train/progress.h"
#include "train/state.h"
#include "train/weights.h"

// Per-step values each rank sends to rank 0.
enum { V_STEP, V_DATA, V_FB, V_COMM, V_OPT, V_LOSS, V_SPAN, V_IMAGES, V_RSS, NV };

typedef struct {
  const train_config *cfg;
  dist_ctx *d;
  model_cfg mc;
  nn_graph *g;
  char **train_paths, **val_paths;
  int ntrain, nval;
  loader *train, *val;
  loader_cfg train_lc;
  optim_cfg oc;
  train_state st;
  train_device *td;          // CPU or CUDA: input staging, reduction, optimizer
  nn_step ns;                // per-step inputs of the graph, with the reducer's hook
  int num_classes;
  float *class_weights;
  int64_t batches_per_epoch, steps_per_epoch, total_steps, warm_steps;
  FILE *dump, *csv;
  int inject_rank;
  int64_t inject_step;
  progress prog;
  // Rank 0 aggregates over timed steps.
  double *rank_sums;        // (world, NV)
  double sum_step_max;
  double sum_comm_exposed;  // sum over timed steps of the least comm wait of any rank
  int64_t timed_steps, timed_images;
  int64_t last_eval_step;
  double t_start;
  // Baseline.
  double base_rate, base_f1;
  char base_source[TC_PATH_MAX];
  // Hardware.
  hw_table hw;
  const hw_entry *hwe;
  char hw_name[64];
  run_results res;
  char cfg_msg[1024];
} trainer;


static void out_path(const trainer *t, const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s", t->cfg->out, name);
}

// ---- configuration checks (before any work) ----------------------------------
// Every rank checks; rank 0 reports its own problem, and when rank 0 is fine
// but another rank is not (e.g. shards missing on one node), that rank reports.
// The message is kept and printed after all ranks agree (trainer_run).
#define CFG_FAIL(setting, ...)                                                                 \
  do {                                                                                         \
    int k_ = snprintf(t->cfg_msg, sizeof t->cfg_msg, "bad configuration: setting '%s': ", setting); \
    if (k_ > 0 && (size_t)k_ < sizeof t->cfg_msg &&                                            \
        snprintf(t->cfg_msg + k_, sizeof t->cfg_msg - (size_t)k_, __VA_ARGS__) < 0)            \
      t->cfg_msg[k_] = 0;                                                                      \
    return -1;                                                                                 \
  } while (0)

static int parse_class_weights(trainer *t) {
  const char *s = t->cfg->class_weights;
  if (!s[0] || !strcmp(s, "none")) return 0;
  int C = t->num_classes;
  t->class_weights = dp_calloc((size_t)C, sizeof(float), "class weights");
  if (!strcmp(s, "auto")) {
    // Inverse frequency, normalised so a balanced set gets 1: w_c = N / (C * n_c).
    int64_t *counts = dp_calloc((size_t)C, sizeof(int64_t), "class counts");
    loader_class_counts(t->train, counts);
    int64_t total = 0;
    for (int c = 0; c < C; c++) total += counts[c];
    for (int c = 0; c < C; c++)
      t->class_weights[c] = counts[c] > 0 ? (float)((double)total / ((double)C * (double)counts[c])) : 0.0f;
    free(counts);
    return 0;
  }
  const char *p = s;
  for (int c = 0; c < C; c++) {
    char *end;
    errno = 0;
    double w = strtod(p, &end);
    if (errno || end == p || w < 0) CFG_FAIL("class-weights", "'%s' is not auto or %d non-negative numbers", s, C);
    t->class_weights[c] = (float)w;
    p = end;
    if (c < C - 1) {
      if (*p != ',') CFG_FAIL("class-weights", "%d classes need %d comma-separated weights (got '%s')", C, C, s);
      p++;
    }
  }
  if (*p) CFG_FAIL("class-weights", "more weights than the %d classes in '%s'", C, s);
  return 0;
}

static int read_baseline_file(trainer *t) {
  char err[512];
  jv *v = jv_parse_file(t->cfg->baseline, err, sizeof err);
  if (!v) CFG_FAIL("baseline", "%s", err);
  double ws = jv_num(v, "world_size", NAN);
  double rate = ws == 1 ? jv_num(v, "images_per_s", NAN) : jv_num(v, "baseline.images_per_s", NAN);
  t->base_f1 = jv_num(v, "macro_f1", NAN);
  jv_free(v);
  if (!(rate > 0))
    CFG_FAIL("baseline", "'%s' has no single-rank rate (world_size 1 with images_per_s, or baseline.images_per_s)",
             t->cfg->baseline);
  t->base_rate = rate;
  snprintf(t->base_source, sizeof t->base_source, "%s", t->cfg->baseline);
  return 0;
}

static int setup_hardware(trainer *t) {
  const train_config *c = t->cfg;
  const char *path = c->hardware_table[0] ? c->hardware_table : hw_table_default_path();
  char err[512];
  if (!strcmp(c->hardware, "auto") && t->td->backend != NN_BACKEND_CPU) {
    // No reliable map from a GPU's name to a table row: better no MFU and
    // price than ones computed from a CPU row.
    snprintf(t->hw_name, sizeof t->hw_name, "gpu");
    if (t->d->rank == 0) LOG_WARN("GPU ranks with --hardware auto: pass --hardware ROW (e.g. a100-sxm4-80gb) for MFU and price");
    return 0;
  }
  if (!strcmp(c->hardware, "auto"))
    snprintf(t->hw_name, sizeof t->hw_name, "%s",
             __builtin_cpu_supports("avx512f") ? "cpu-core-avx512" : "cpu-core-avx2");
  else
    snprintf(t->hw_name, sizeof t->hw_name, "%s", c->hardware);
  if (hw_table_load(&t->hw, path, err, sizeof err) != 0) {
    if (strcmp(c->hardware, "auto") || c->hardware_table[0]) CFG_FAIL("hardware-table", "%s", err);
    if (t->d->rank == 0) LOG_WARN("%s; MFU and table prices unavailable", err);
    return 0;
  }
  t->hwe = hw_table_find(&t->hw, t->hw_name);
  if (!t->hwe) CFG_FAIL("hardware", "'%s' is not a row of %s", t->hw_name, path);
  return 0;
}

static int setup_loaders(trainer *t) {
  const train_config *c = t->cfg;
  dp_err err;
  dp_err_clear(&err);
  t->ntrain = shard_glob(c->train, &t->train_paths);
  if (t->ntrain <= 0) CFG_FAIL("train", "no shards match '%s'", c->train);
  if (c->val[0]) {
    t->nval = shard_glob(c->val, &t->val_paths);
    if (t->nval <= 0) CFG_FAIL("val", "no shards match '%s'", c->val);
  }
  loader_cfg lc;
  loader_cfg_defaults(&lc);
  lc.shards = t->train_paths;
  lc.nshards = t->ntrain;
  lc.rank = t->d->rank;
  lc.world = t->d->world;
  lc.batch = c->batch;
  lc.drop_last = 1;
  lc.shuffle = 1;
  lc.seed = c->seed;
  lc.threads = t->d->loader_threads > 0 ? t->d->loader_threads : 1;
  lc.out_size = (int)c->image_size;
  lc.out_channels = c->channels;
  lc.train = c->augment;
  lc.rrc_scale[0] = c->rrc_scale_min;
  lc.hflip_p = c->hflip;
  lc.jitter = c->jitter;
  lc.mixup_alpha = c->mixup;
  lc.cutmix_alpha = c->cutmix;
  lc.num_classes = 0;   // from the shards, so a mismatch with --classes is caught below
  lc.out_uint8 = t->td->loader_uint8;   // a GPU normalises on the device
  // quality: the augmentation policy the dataset expects (or --augment-policy) and class-aware jitter.
  char pol_src[1200];
  if (loader_cfg_set_policy(&lc, c->augment_policy, c->jitter_classes, pol_src, sizeof pol_src, &err))
    CFG_FAIL("augment-policy", "%s", err.msg);
  lc.crop_pad = c->crop_pad;
  lc.sampler_mode = sampler_mode_parse(c->sampler);   // quality: class-balanced / sqrt draws
  if (t->d->rank == 0 && c->augment)
    LOG_INFO("augmentation: policy %s (from %s)%s", aug_policy_name(lc.policy), pol_src,
             lc.policy == AUG_POLICY_DEFECTS && (c->mixup > 0 || c->cutmix > 0)
                 ? "; mixup/cutmix were asked for: they blend defects into clean images" : "");
  t->train_lc = lc;
  t->train = loader_create(&lc, &err);
  if (!t->train) CFG_FAIL("train", "%s", err.msg);
  t->num_classes = loader_num_classes(t->train);
  if (c->classes > 0 && c->classes != t->num_classes)
    CFG_FAIL("classes", "--classes %lld but the training shards have %d classes", (long long)c->classes,
             t->num_classes);
  if (t->nval > 0) {
    loader_cfg vc = lc;
    vc.shards = t->val_paths;
    vc.nshards = t->nval;
    vc.batch = c->batch;   // eval reuses the training graph
    vc.drop_last = 0;
    vc.shuffle = 0;
    vc.train = 0;
    vc.mixup_alpha = vc.cutmix_alpha = 0;
    vc.fill_skipped = 0;   // quality: a corrupt val record is excluded, not replaced
    vc.sampler_mode = SAMPLER_UNIFORM;   // quality: every val record once
    t->val = loader_create(&vc, &err);
    if (!t->val) CFG_FAIL("val", "%s", err.msg);
    if (loader_num_classes(t->val) != t->num_classes)
      CFG_FAIL("val", "val shards have %d classes, training shards %d", loader_num_classes(t->val), t->num_classes);
  }
  t->batches_per_epoch = loader_batches_per_epoch(t->train);
  t->steps_per_epoch = t->batches_per_epoch / c->accum;
  if (t->steps_per_epoch < 1)
    CFG_FAIL("batch", "batch %lld x accum %d x %d ranks exceeds the %lld training samples",
             (long long)c->batch, c->accum, t->d->world, (long long)loader_total_samples(t->train));
  t->total_steps = c->steps > 0 ? c->steps : c->epochs * t->steps_per_epoch;
  return 0;
}

static int setup_checks(trainer *t) {
  if (train_config_check(t->cfg) != 0) return -1;   // prints its own message
  if (setup_loaders(t)) return -1;
  if (parse_class_weights(t)) return -1;
  if (t->cfg->baseline[0] && read_baseline_file(t)) return -1;
  if (setup_hardware(t)) return -1;
  return 0;
}

// ---- model, optimizer, reducer -----------------------------------------------
static void bcast_floats(dist_ctx *d, float *x, int64_t n) {
  for (int64_t o = 0; o < n; o += (int64_t)1 << 28) {
    int64_t c = n - o < ((int64_t)1 << 28) ? n - o : ((int64_t)1 << 28);
    MPI_CHECK(MPI_Bcast(x + o, (int)c, MPI_FLOAT, 0, d->comm), "broadcasting initial weights");
  }
}

static void setup_model(trainer *t) {
  const train_config *c = t->cfg;
  if (!model_cfg_default(&t->mc, c->model, c->image_size, c->channels, t->num_classes))
    DP_FATAL("building the model", "see --help", "unknown model '%s'", c->model);
  t->mc.small_stem = c->small_stem;
  t->mc.zero_init_residual = c->zero_init_residual;
  if (c->patch > 0) t->mc.patch = c->patch;
  if (c->cnn_width > 0) t->mc.cnn_width = c->cnn_width;
  t->mc.dropout = c->dropout;
  nn_graph *g = nn_graph_create(t->td->be, c->batch, c->seed);
  model_build(g, &t->mc);
  nn_xent_cfg xc = {c->label_smoothing, t->class_weights, t->num_classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_finalize(g);
  // Same seed gives the same init everywhere; the broadcast makes it certain.
  // Host views: the buffers themselves on the CPU, one copy each on a GPU.
  bcast_floats(t->d, nn_params_host(g), g->nparam_elems);
  nn_params_push(g);
  bcast_floats(t->d, nn_bufs_host(g), g->nbuf_elems);
  nn_bufs_push(g);
  // Dropout masks must differ between ranks (they see different samples).
  g->seed = c->seed * 0x9E3779B97F4A7C15ull + (uint64_t)t->d->rank + 1;
  nn_graph_set_training(g, 1);
  t->g = g;

  optim_cfg *oc = &t->oc;
  optim_cfg_defaults(oc, strcmp(c->optimizer, "adamw") ? OPTIM_SGD : OPTIM_ADAMW);
  oc->lr = c->lr;
  if (oc->kind == OPTIM_SGD) oc->momentum = c->momentum;
  oc->nesterov = c->nesterov;
  oc->weight_decay = c->weight_decay;
  oc->no_decay_norm_bias = c->no_decay_norm_bias;
  oc->clip_grad_norm = c->clip_grad_norm;
  oc->backbone_lr_mult = c->backbone_lr_mult;
  oc->freeze_below_stage = c->freeze_below_stage;
  oc->unfreeze_every = c->unfreeze_every;
  oc->sched = !strcmp(c->schedule, "cosine") ? SCHED_COSINE : !strcmp(c->schedule, "step") ? SCHED_STEP : SCHED_CONSTANT;
  oc->warmup_steps = c->warmup_steps > 0 ? c->warmup_steps : (int64_t)(c->warmup_epochs * (float)t->steps_per_epoch);
  oc->total_steps = t->total_steps;
  oc->min_lr = c->min_lr;
  if (c->step_every > 0) oc->step_every = c->step_every;
  oc->step_gamma = c->step_gamma;

  memset(&t->st, 0, sizeof t->st);
  t->st.seed = c->seed;
  t->st.rng = dp_rng_stream(c->seed, 1000 + (uint64_t)t->d->rank);
  t->st.best_metric = NAN;
  // Reducer before the optimizer: on a GPU the memory plan below then holds
  // exactly the graph, the context and the NCCL staging, not optimizer state.
  nn_step_init(&t->ns, g);
  t->td->reduce_attach(t->td, g, &t->ns, (int64_t)(c->bucket_mb * 1048576.0));
  if (!nn_graph_host_memory(g) && t->d->rank == 0) {
    nn_memory_plan m = nn_graph_memory_plan(g, optim_state_copies(oc->kind));
    LOG_INFO("GPU memory: planned %.1f MiB (params+grads %.1f, activations %.1f, context %.1f, optimizer %.1f); "
             "measured in use before the optimizer %.1f MiB",
             (double)m.total_bytes / 1048576.0, (double)(m.params_bytes + m.grads_bytes) / 1048576.0,
             (double)(m.activations_bytes + m.activation_grads_bytes + m.extras_bytes) / 1048576.0,
             (double)m.backend_bytes / 1048576.0, (double)m.optimizer_bytes / 1048576.0,
             (double)m.measured_bytes / 1048576.0);
  }
  t->st.opt = t->td->optim_create(t->td, oc, g, model_num_stages(&t->mc), &t->st.scaler);
}

// ---- one optimizer step -------------------------------------------------------
typedef struct {
  double v[NV];
} step_vals;

static void dump_batch(trainer *t, const loader_batch *b) {
  if (!t->dump) return;
  for (int64_t i = 0; i < b->n; i++)
    fprintf(t->dump, "%lld %lld %lld\n", (long long)t->st.epoch, (long long)b->sample_index[i], (long long)b->ids[i]);
}

// Runs accum micro-steps and one optimizer update on graph g with optimizer o.
// reduce = 0 for the single-rank baseline (no communication).
static step_vals train_step(trainer *t, loader *l, void *o, nn_step *ns, int reduce, int dump) {
  nn_graph *g = t->g;
  train_device *td = t->td;
  int accum = t->cfg->accum;
  step_vals s;
  memset(&s, 0, sizeof s);
  double s0 = dp_now();
  for (int m = 0; m < accum; m++) {
    double d0 = dp_now();
    const loader_batch *b = loader_next_batch(l);
    if (!b) DP_FATAL("reading a training batch", "loader bug: epoch ended early", "no batch at micro-step %d", m);
    if (dump) dump_batch(t, b);
    td->feed(td, g, ns, b, b->n);
    double f0 = dp_now();
    s.v[V_DATA] += f0 - d0;
    ns->accumulate_grads = m > 0;
    ns->step = (uint64_t)t->st.step;
    if (reduce) td->reduce_begin(td, m == accum - 1);
    if (b->n == 0) {
      // Every record of this batch was corrupt (the loader's rule): contribute
      // zero gradient but still take part in the all-reduce (wait starts the
      // buckets backward did not), so no rank blocks.
      if (m == 0) td->grads_scale(td, g, 0.0f);
      s.v[V_FB] += dp_now() - f0;
      continue;
    }
    nn_forward(g, ns);
    ns->loss_scale = loss_scaler_scale(&t->st.scaler);   // 1 unless fp16 on a GPU
    nn_backward(g, ns);
    s.v[V_FB] += dp_now() - f0;
    s.v[V_LOSS] += ns->loss / accum;
    s.v[V_IMAGES] += (double)b->n;
    if (!isfinite(ns->loss))
      DP_FATAL("training", "lower --lr, add --warmup-steps or --clip-grad-norm", "loss is %f at step %lld",
               (double)ns->loss, (long long)t->st.step);
  }
  double c0 = dp_now();
  if (reduce) s.v[V_SPAN] = td->reduce_wait(td);
  if (accum > 1) td->grads_scale(td, g, 1.0f / (float)accum);   // summed micro-batch grads -> mean
  double o0 = dp_now();
  s.v[V_COMM] = o0 - c0;
  t->st.last_lr = td->optim_step(td, o, g);
  double e = dp_now();
  s.v[V_OPT] = e - o0;
  s.v[V_STEP] = e - s0;
  s.v[V_RSS] = (double)dp_peak_rss_bytes();
  return s;
}

// ---- in-job single-rank baseline ----------------------------------------------
static void wait_barrier_idle(dist_ctx *d) {
  // Ibarrier + sleep, not MPI_Barrier: a spinning barrier would steal the
  // cores rank 0 measures its baseline on.
  MPI_Request req;
  MPI_CHECK(MPI_Ibarrier(d->comm, &req), "baseline barrier");
  int done = 0;
  struct timespec ts = {0, 2000000};
  for (;;) {
    MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "baseline barrier");
    if (done) break;
    nanosleep(&ts, NULL);
  }
}

static void run_baseline(trainer *t) {
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
    loader_start_epoch(l, 0);
    int64_t per_epoch = loader_batches_per_epoch(l) / t->cfg->accum, in_epoch = 0, epoch = 0;
    int64_t warm = K >= 2 ? 1 : 0;   // the first step pays for cold caches and thread start-up
    double tsum = 0, imgs = 0;
    for (int64_t k = 0; k < K; k++) {
      if (in_epoch >= per_epoch) loader_start_epoch(l, ++epoch), in_epoch = 0;
      step_vals s = train_step(t, l, o, &bs, 0, 0);
      in_epoch++;
      if (k >= warm) tsum += s.v[V_STEP], imgs += s.v[V_IMAGES];
    }
    t->base_rate = tsum > 0 ? imgs / tsum : NAN;
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
    LOG_INFO("baseline: %.2f img/s on one rank", t->base_rate);
    MPI_Request req;
    MPI_CHECK(MPI_Ibarrier(t->d->comm, &req), "baseline barrier");
    MPI_CHECK(MPI_Wait(&req, MPI_STATUS_IGNORE), "baseline barrier");
  } else {
    wait_barrier_idle(t->d);
  }
  MPI_CHECK(MPI_Bcast(&t->base_rate, 1, MPI_DOUBLE, 0, t->d->comm), "sharing the baseline rate");
  snprintf(t->base_source, sizeof t->base_source, "in-job");
}

// ---- aggregation --------------------------------------------------------------
static void record_step(trainer *t, const step_vals *s, int64_t epoch) {
  dist_ctx *d = t->d;
  double *all = d->rank == 0 ? dp_malloc(sizeof(double) * NV * (size_t)d->world, "step gather") : NULL;
  MPI_CHECK(MPI_Gather(s->v, NV, MPI_DOUBLE, all, NV, MPI_DOUBLE, 0, d->comm), "gathering step timings");
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
  int timed = t->st.step > t->warm_steps;
  if (timed) {
    for (int r = 0; r < d->world; r++)
      for (int k = 0; k < NV; k++) t->rank_sums[(size_t)r * NV + k] += all[(size_t)r * NV + k];
    t->sum_step_max += step_max;
    // Every rank leaves the all-reduce wait together; a rank's wait also holds
    // the time it idled for slower ranks to finish backward (skew), which is
    // not communication. The last rank to finish backward waits least: its
    // wait is the communication not hidden behind backward in this step.
    double wmin = all[V_COMM];
    for (int r = 1; r < d->world; r++) wmin = fmin(wmin, all[(size_t)r * NV + V_COMM]);
    t->sum_comm_exposed += wmin;
    t->timed_images += (int64_t)imgs;
    t->timed_steps++;
  }
  if (t->csv) {
    double mean[NV] = {0};
    for (int r = 0; r < d->world; r++)
      for (int k = 0; k < NV; k++) mean[k] += all[(size_t)r * NV + k] / d->world;
    fprintf(t->csv, "%lld,%lld,%d,%.6g,%.6f,%.3f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f", (long long)t->st.step,
            (long long)epoch, timed, (double)t->st.last_lr, loss, img_s, step_max, mean[V_DATA], mean[V_FB],
            mean[V_COMM], mean[V_OPT], mean[V_SPAN]);
    fprintf(t->csv, ",%.0f", rss_max);
    for (int r = 0; r < d->world; r++) {
      const double *v = all + (size_t)r * NV;
      fprintf(t->csv, ",%.3f", v[V_STEP] > 0 ? v[V_IMAGES] / v[V_STEP] : 0.0);
    }
    fputc('\n', t->csv);
  }
  progress_update(&t->prog, epoch, t->st.step, loss, img_s, t->st.last_lr);
  free(all);
}

// ---- evaluation and early stopping --------------------------------------------
static void average_bn(trainer *t) {
  if (t->g->nbuf_elems > 0 && t->d->world > 1) {
    dist_allreduce_mean(t->d, nn_bufs_host(t->g), t->g->nbuf_elems);
    nn_bufs_push(t->g);
  }
}

static void do_eval(trainer *t) {
  if (!t->val) return;
  average_bn(t);
  class_metrics m;
  double secs = eval_run_device(t->g, t->td, t->val, t->d, t->num_classes, &m);
  t->last_eval_step = t->st.step;
  const train_config *c = t->cfg;
  // quality: early stopping compares the metric --early-metric names (eval.c).
  int higher;
  double metric = early_metric_value(&m, c->early_metric, &higher);
  early_stop_update(&t->st.best_metric, &t->st.best_step, &t->st.evals_since_best, &t->st.stop, metric, higher,
                    c->patience, t->st.step);
  if (t->d->rank == 0) {
    progress_break(&t->prog);
    printf("eval at step %lld (epoch %lld, %.1f s): ", (long long)t->st.step, (long long)t->st.epoch, secs);
    const char **names = dp_calloc((size_t)t->num_classes, sizeof(char *), "class names");
    for (int k = 0; k < t->num_classes; k++) names[k] = loader_class_name(t->train, k);
    class_metrics_print(&m, names, stdout);
    free(names);
    if (t->st.stop)
      printf("early stopping: no %s improvement in %d evaluation(s) (best %.4f at step %lld)\n", c->early_metric,
             c->patience, t->st.best_metric, (long long)t->st.best_step);
    fflush(stdout);
  }
  if (t->res.evaluated) class_metrics_free(&t->res.q);
  t->res.q = m;
  t->res.evaluated = 1;
}

// quality: the initial weights (after the broadcast), e.g. for a PyTorch twin
// that must start from the same point (bench/parity).
static void quality_save_init(trainer *t) {
  weights_meta wm;
  memset(&wm, 0, sizeof wm);
  wm.model = t->mc;
  memcpy(wm.mean, t->train_lc.mean, sizeof wm.mean);
  memcpy(wm.std, t->train_lc.std, sizeof wm.std);
  wm.num_classes = t->num_classes;
  char path[TC_PATH_MAX + 64], err[512];
  out_path(t, "init.safetensors", path, sizeof path);
  if (weights_save(path, t->g, &wm, err, sizeof err)) DP_FATAL("writing the initial weights", "check --out", "%s", err);
}

// quality: tunes per-class logit offsets on the val split for macro-F1
// (eval.c), reports them beside the raw argmax and keeps them for the weights.
static void quality_logit_adjust(trainer *t) {
  const int C = t->num_classes;
  int64_t *counts = dp_calloc((size_t)C, sizeof(int64_t), "class counts");
  loader_class_counts(t->train, counts);
  float *bias = dp_calloc((size_t)C, sizeof(float), "logit bias");
  class_metrics raw, adj;
  double secs = eval_logit_adjust(t->g, t->td, t->val, t->d, C, counts, bias, &raw, &adj);
  free(counts);
  if (t->d->rank == 0) {
    printf("logit adjustment tuned on val (%.1f s): macro-F1 %.4f raw -> %.4f adjusted (optimistic on the split it "
           "was tuned on: evaluate the test split with `dptrain eval`)\n  offsets:", secs, raw.macro_f1, adj.macro_f1);
    for (int c = 0; c < C; c++) printf(" %s %+.2f", loader_class_name(t->train, c), (double)bias[c]);
    printf("\n");
    const char **names = dp_calloc((size_t)C, sizeof(char *), "class names");
    for (int k = 0; k < C; k++) names[k] = loader_class_name(t->train, k);
    class_metrics_print(&adj, names, stdout);
    free(names);
    fflush(stdout);
  }
  class_metrics_free(&raw);
  if (t->res.adjusted) class_metrics_free(&t->res.q_adj);
  free(t->res.logit_bias);
  t->res.q_adj = adj;
  t->res.adjusted = 1;
  t->res.logit_bias = bias;
  snprintf(t->res.adjust_split, sizeof t->res.adjust_split, "val (tuned)");
}

static void check_skips(trainer *t, int64_t *decoded, int64_t *skipped) {
  loader_stats ls = loader_get_stats(t->train);
  int64_t v[2] = {ls.decoded, ls.skipped};
  dist_allreduce_sum_i64(t->d, v, 2);
  *decoded = v[0];
  *skipped = v[1];
  int64_t tot = v[0] + v[1];
  double rate = tot ? (double)v[1] / (double)tot : 0;
  if (v[1] > 0 && t->d->rank == 0) LOG_WARN("skipped %lld of %lld records so far (%.3f %%)", (long long)v[1], (long long)tot, 100 * rate);
  if (rate > t->cfg->max_skip_rate)
    DP_FATAL("reading training data", "inspect the shards with `dptrain data verify`, or raise --max-skip-rate",
             "%lld of %lld records (%.2f %%) were skipped as corrupt, above --max-skip-rate %.2f %% (this rank's last: %s)",
             (long long)v[1], (long long)tot, 100 * rate, 100 * t->cfg->max_skip_rate,
             ls.last_error[0] ? ls.last_error : "none here");
}

static void maybe_inject_fault(trainer *t) {
  if (t->inject_rank == t->d->rank && t->inject_step == t->st.step)
    DP_FATAL("injected fault", "test-only: unset DPTRAIN_INJECT_FAULT", "DPTRAIN_INJECT_FAULT=%d:%lld",
             t->inject_rank, (long long)t->inject_step);
}

// ---- results ------------------------------------------------------------------
static void finish_results(trainer *t, int64_t decoded, int64_t skipped) {
  dist_ctx *d = t->d;
  const train_config *c = t->cfg;
  run_results *r = &t->res;
  // Per-rank hidden fraction and peak RSS to rank 0.
  // Host names (unique, in rank order) for the record.
  char myhost[64] = {0};
  snprintf(myhost, sizeof myhost, "%.63s", d->host);
  char *hosts = d->rank == 0 ? dp_malloc((size_t)64 * (size_t)d->world, "host names") : NULL;
  MPI_CHECK(MPI_Gather(myhost, 64, MPI_CHAR, hosts, 64, MPI_CHAR, 0, d->comm), "gathering host names");
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
  double mine[2] = {t->td->reduce_hidden_fraction(t->td), (double)dp_peak_rss_bytes()};
  double *all = d->rank == 0 ? dp_malloc(sizeof(double) * 2 * (size_t)d->world, "gather") : NULL;
  MPI_CHECK(MPI_Gather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, 0, d->comm), "gathering memory figures");
  if (d->rank != 0) return;
  r->kind = "train";
  snprintf(r->precision, sizeof r->precision, "%s", t->td->precision);
  r->world_size = d->world;
  r->nodes = d->node_count;
  snprintf(r->model, sizeof r->model, "%s", c->model);
  r->params = t->g->nparam_elems;
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
  r->timed_steps = t->timed_steps;
  r->images = t->st.step * r->global_batch;
  r->epochs_done = t->st.epoch;
  r->total_wall_s = dp_now() - t->t_start;
  r->images_per_s = t->sum_step_max > 0 ? (double)t->timed_images / t->sum_step_max : NAN;
  r->per_rank = dp_calloc((size_t)d->world, sizeof(rank_timing), "per-rank timings");
  double hid = 0;
  int nhid = 0;
  for (int k = 0; k < d->world; k++) {
    const double *s = t->rank_sums + (size_t)k * NV;
    double n = t->timed_steps > 0 ? (double)t->timed_steps : 1;
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
  // Exposed communication per step (see record_step) against a blocking
  // all-reduce of the same bytes, calibrated at start-up.
  r->comm_hidden_fraction = d->world > 1 && nhid ? hid / nhid : NAN;
  if (d->world > 1 && t->td->comm_ref_s > 0 && t->timed_steps > 0)
    r->comm_hidden_fraction = comm_hidden_fraction(t->sum_comm_exposed / (double)t->timed_steps, t->td->comm_ref_s);
  r->mfu = mfu(r->flops_per_image_fwd, r->images_per_s, d->world, r->peak_flops_per_rank);
  snprintf(r->baseline_source, sizeof r->baseline_source, "%s", t->base_source);
  r->baseline_steps = c->baseline_steps;
  r->baseline_images_per_s = t->base_source[0] ? t->base_rate : NAN;
  r->baseline_macro_f1 = t->base_f1;
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
  snprintf(r->augment_policy, sizeof r->augment_policy, "%s", aug_policy_name(t->train_lc.policy));   // quality
  if (t->st.stop) snprintf(r->stop_reason, sizeof r->stop_reason, "early stopping (patience %d)", c->patience);
}

// ---- the run ------------------------------------------------------------------
static void parse_inject(trainer *t) {
  t->inject_rank = -1;
  const char *e = getenv("DPTRAIN_INJECT_FAULT");
  long long st = -1;
  int rk = -1;
  if (e && sscanf(e, "%d:%lld", &rk, &st) == 2) t->inject_rank = rk, t->inject_step = st;
}

static void teardown(trainer *t) {
  // Device objects first: they hold memory of the graph's backend context.
  if (t->st.opt) t->td->optim_destroy(t->td, t->st.opt);
  if (t->td) t->td->destroy(t->td);
  if (t->g) nn_graph_destroy(t->g);
  if (t->train) loader_destroy(t->train);
  if (t->val) loader_destroy(t->val);
  if (t->train_paths) shard_paths_free(t->train_paths, t->ntrain);
  if (t->val_paths) shard_paths_free(t->val_paths, t->nval);
  if (t->dump) fclose(t->dump);
  if (t->csv) fclose(t->csv);
  free(t->class_weights);
  free(t->rank_sums);
  hw_table_free(&t->hw);
  run_results_free(&t->res);
}

int trainer_run(const train_config *cfg, dist_ctx *d) {
  trainer tt, *t = &tt;
  memset(t, 0, sizeof *t);
  t->cfg = cfg;
  t->d = d;
  t->t_start = dp_now();
  t->base_rate = NAN;
  t->base_f1 = NAN;
  run_results_init(&t->res);
  parse_inject(t);
  // The device comes first: it decides the loaders' pixel format, and on a
  // GPU sets the device and binding before any graph or loader thread exists.
  // Collective; `--device cuda` without a usable GPU stops here with the reason.
  {
    loader_cfg dc;
    loader_cfg_defaults(&dc);
    t->td = train_device_open(cfg->device, cfg->precision, d, dc.mean, dc.std);
  }
  int mine = setup_checks(t) == 0;
  int ok = mine, root_ok = mine;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, d->comm), "agreeing on the configuration");
  MPI_CHECK(MPI_Bcast(&root_ok, 1, MPI_INT, 0, d->comm), "agreeing on the configuration");
  if (!mine && t->cfg_msg[0] && (d->rank == 0 || root_ok)) {
    if (d->rank == 0) fprintf(stderr, "dptrain: %s\n", t->cfg_msg);
    else fprintf(stderr, "dptrain: [rank %d host %s] %s\n", d->rank, d->host, t->cfg_msg);
  }
  if (!ok) {
    teardown(t);
    return 2;
  }
  char path[TC_PATH_MAX + 64];
  if (d->rank == 0) {
    dp_err me;
    dp_err_clear(&me);
    if (dp_mkdir_p(cfg->out, &me)) DP_FATAL("creating the output directory", "check --out and permissions", "%s", me.msg);
    out_path(t, "config.ini", path, sizeof path);
    FILE *f = fopen(path, "w");
    PTR_CHECK(f, "writing config.ini");
    train_config_write(cfg, f);
    fclose(f);
    out_path(t, "steps.csv", path, sizeof path);
    t->csv = fopen(path, "w");
    PTR_CHECK(t->csv, "writing steps.csv");
    fprintf(t->csv, "step,epoch,timed,lr,loss,global_img_s,step_s_max,data_wait_s,fwd_bwd_s,comm_wait_s,optimizer_s,"
                    "comm_span_s,peak_rss_max_bytes");
    for (int r = 0; r < d->world; r++) fprintf(t->csv, ",rank%d_img_s", r);
    fputc('\n', t->csv);
    t->rank_sums = dp_calloc((size_t)d->world * NV, sizeof(double), "step sums");
  }
  if (cfg->dump_ids[0]) {
    snprintf(path, sizeof path, "%s.rank%d", cfg->dump_ids, d->rank);
    t->dump = fopen(path, "w");
    PTR_CHECK(t->dump, "opening the --dump-ids file");
  }
  setup_model(t);
  if (cfg->save_init && d->rank == 0) quality_save_init(t);   // quality: initial weights for a twin run
  // After the graph exists: the GPU context may have lowered the precision.
  if (d->rank == 0)
    LOG_INFO("device %s: %s ranks, precision %s", cfg->device, t->td->name, t->td->precision);
  t->warm_steps = t->total_steps >= 10 ? 2 : (t->total_steps >= 3 ? 1 : 0);
  if (d->rank == 0) {
    LOG_INFO("train: model %s (%lld params, %.3f GFLOP/img fwd), %d classes, %lld samples, %lld steps/epoch, %lld steps",
             cfg->model, (long long)t->g->nparam_elems, (double)nn_flops_per_image(t->g) / 1e9, t->num_classes,
             (long long)loader_total_samples(t->train), (long long)t->steps_per_epoch, (long long)t->total_steps);
    LOG_INFO("train: per-rank batch %lld x accum %d x %d ranks = global batch %lld", (long long)cfg->batch, cfg->accum,
             d->world, (long long)(cfg->batch * cfg->accum * d->world));
  }
  if (cfg->baseline_steps > 0) run_baseline(t);

  progress_init(&t->prog, stdout, t->total_steps, cfg->log_every);
  t->st.epoch = 0;
  loader_start_epoch(t->train, 0);
  t->td->optim_freezing(t->td, t->st.opt, t->g, 0);
  t->last_eval_step = -1;
  int64_t decoded = 0, skipped = 0;
  double loop0 = dp_now();
  while (t->st.step < t->total_steps && !t->st.stop) {
    maybe_inject_fault(t);
    step_vals s = train_step(t, t->train, t->st.opt, &t->ns, 1, 1);
    t->st.step++;
    t->st.images_seen += (int64_t)s.v[V_IMAGES];
    t->st.batch_in_epoch += cfg->accum;
    record_step(t, &s, t->st.epoch);
    int epoch_end = t->st.batch_in_epoch >= t->steps_per_epoch * cfg->accum;
    if ((epoch_end && cfg->eval_every == 0) || (cfg->eval_every > 0 && t->st.step % cfg->eval_every == 0))
      do_eval(t);
    if (epoch_end) {
      check_skips(t, &decoded, &skipped);
      t->st.epoch++;
      t->st.batch_in_epoch = 0;
      if (t->st.step < t->total_steps && !t->st.stop) {
        loader_start_epoch(t->train, t->st.epoch);
        t->td->optim_freezing(t->td, t->st.opt, t->g, t->st.epoch);
      }
    }
  }
  t->res.train_wall_s = dp_now() - loop0;
  progress_break(&t->prog);
  if (t->st.batch_in_epoch != 0) check_skips(t, &decoded, &skipped);   // else done at the epoch end
  if (t->val && t->last_eval_step != t->st.step) do_eval(t);
  average_bn(t);
  if (t->val && cfg->logit_adjust) quality_logit_adjust(t);   // quality: post-hoc offsets, tuned on val
  if (d->rank == 0) {
    weights_meta wm;
    memset(&wm, 0, sizeof wm);
    wm.model = t->mc;
    memcpy(wm.mean, t->train_lc.mean, sizeof wm.mean);
    memcpy(wm.std, t->train_lc.std, sizeof wm.std);
    wm.num_classes = t->num_classes;
    wm.steps = t->st.step;
    wm.logit_bias = t->res.logit_bias;   // quality: applied by `dptrain eval` (NULL: none)
    snprintf(wm.augment_policy, sizeof wm.augment_policy, "%s", aug_policy_name(t->train_lc.policy));
    wm.class_names = dp_calloc((size_t)t->num_classes, sizeof(char *), "class names");
    for (int k = 0; k < t->num_classes; k++) wm.class_names[k] = (char *)loader_class_name(t->train, k);
    out_path(t, "model.safetensors", path, sizeof path);
    char err[512];
    if (weights_save(path, t->g, &wm, err, sizeof err))
      DP_FATAL("writing the weights", "check --out", "%s", err);
    free(wm.class_names);
  }
  finish_results(t, decoded, skipped);
  if (d->rank == 0) {
    char **names = dp_calloc((size_t)t->num_classes, sizeof(char *), "class names");
    for (int k = 0; k < t->num_classes; k++) names[k] = (char *)loader_class_name(t->train, k);
    t->res.class_names = names;
    out_path(t, "results.json", path, sizeof path);
    int rc = run_results_write_json(&t->res, cfg, path);
    run_results_print_summary(&t->res, stdout);
    printf("outputs: %s/{results.json, steps.csv, config.ini, model.safetensors}\n", cfg->out);
    fflush(stdout);
    free(names);
    t->res.class_names = NULL;
    if (rc) DP_FATAL("writing results.json", "check --out", "see above");
  }
  teardown(t);
  return 0;
}
