// `dptrain train` set-up: configuration checks that need the shards (every
// rank, before any work), the loaders, class weights, the baseline file, the
// hardware row, the model, the reducer and the optimizer; and the teardown.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/jsonread.h"
#include "core/log.h"
#include "input/shard.h"
#include "nn/ops.h"
#include "train/lineage.h"
#include "train/run.h"

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
  t->base.f1 = jv_num(v, "macro_f1", NAN);
  jv_free(v);
  if (!(rate > 0))
    CFG_FAIL("baseline", "'%s' has no single-rank rate (world_size 1 with images_per_s, or baseline.images_per_s)",
             t->cfg->baseline);
  t->base.rate = rate;
  snprintf(t->base.source, sizeof t->base.source, "%s", t->cfg->baseline);
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
    t->val = loader_create(&vc, &err);
    if (!t->val) CFG_FAIL("val", "%s", err.msg);
    if (loader_num_classes(t->val) != t->num_classes)
      CFG_FAIL("val", "val shards have %d classes, training shards %d", loader_num_classes(t->val), t->num_classes);
  }
  t->steps_per_epoch = loader_batches_per_epoch(t->train) / c->accum;

  if (t->steps_per_epoch < 1)
    CFG_FAIL("batch", "batch %lld x accum %d x %d ranks exceeds the %lld training samples",
             (long long)c->batch, c->accum, t->d->world, (long long)loader_total_samples(t->train));
  t->total_steps = c->steps > 0 ? c->steps : c->epochs * t->steps_per_epoch;
  return 0;
}

// The data and the settings that determine the run (train/lineage.h): a
// checkpoint records both, and resuming on other data or under another
// configuration is refused (unless --resume-force).
static int fingerprints(trainer *t) {
  dp_err e;
  dp_err_clear(&e);
  char tr[64] = "", va[64] = "";
  if (lineage_data_fingerprint(t->train_paths, t->ntrain, tr, sizeof tr, NULL, &e) ||
      (t->nval > 0 && lineage_data_fingerprint(t->val_paths, t->nval, va, sizeof va, NULL, &e)))
    CFG_FAIL("train", "%s", e.msg);
  snprintf(t->data_fingerprint, sizeof t->data_fingerprint, "train %s val %s", tr, va[0] ? va : "-");
  lineage_config_hash(t->cfg, t->config_hash, sizeof t->config_hash);
  return 0;
}

const char *trainer_class_name(const trainer *t, int c) { return loader_class_name(t->train, c); }

void setup_state_init(trainer *t) {
  memset(&t->st, 0, sizeof t->st);
  t->st.seed = t->cfg->seed;
  t->st.rng = dp_rng_stream(t->cfg->seed, 1000 + (uint64_t)t->d->rank);
  t->st.best_metric = NAN;
  t->st.best_step = -1;
  t->st.last_eval_step = -1;
  t->st.last_metric = NAN;
  t->st.segments = 1;
}

int setup_checks(trainer *t) {
  if (train_config_check(t->cfg) != 0) return -1;   // prints its own message
  if (setup_loaders(t)) return -1;
  if (fingerprints(t)) return -1;
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

void setup_model(trainer *t) {
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

  // Reducer before the optimizer: on a GPU the memory plan below then holds
  // exactly the graph, the context and the NCCL staging, not optimizer state.
  nn_step_init(&t->ns, g);
  t->ns.defer_loss = t->td->loss_submit != NULL;   // GPU: no host wait on each forward
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


void setup_teardown(trainer *t) {
  // Device objects first: they hold memory of the graph's backend context.
  if (t->st.opt) t->td->optim_destroy(t->td, t->st.opt);
  if (t->td) t->td->destroy(t->td);
  if (t->g) nn_graph_destroy(t->g);
  if (t->train) loader_destroy(t->train);
  if (t->val) loader_destroy(t->val);
  if (t->train_paths) shard_paths_free(t->train_paths, t->ntrain);
  if (t->val_paths) shard_paths_free(t->val_paths, t->nval);
  if (t->dump) fclose(t->dump);
  if (t->csv_open) {
    dp_err e;
    if (dp_alog_close(&t->csv, &e)) LOG_WARN("%s", e.msg);
    t->csv_open = 0;
  }
  free(t->class_weights);
  agg_free(t);
  hw_table_free(&t->hw);
  run_results_free(&t->res);
}

