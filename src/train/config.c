#include "train/config.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/opts.h"
#include "nn/models/models.h"
#include "track/mlflow.h"

// One table drives the CLI, the config file and the saved config
// (core/opts.h). Every number has the range it is checked against, on its
// own type: O_I ranges are inclusive integers, O_F ranges are floats
// (LO/HI_OPEN exclude a bound); O_ gives a new setting its type's full range
// (still no truncation, still finite).
#define TC train_config
#define O_S(n, f, h) DP_OPT_S(TC, n, f, 0, h)
#define O_I(n, t, f, lo, hi, fl, h) DP_OPT_I(TC, n, t, f, lo, hi, fl, h)
#define O_F(n, t, f, lo, hi, fl, h) DP_OPT_F(TC, n, t, f, lo, hi, fl, h)
#define O_B(n, f, h) DP_OPT_I(TC, n, DP_OPT_INT, f, 0, 1, DP_OPT_BARE, h)
#define O_(n, t, f, h) {n, t, offsetof(TC, f), 0, INT64_MIN, INT64_MAX, -DBL_MAX, DBL_MAX, 0, h}
#define I_ DP_OPT_INT
#define L_ DP_OPT_I64
#define F_ DP_OPT_FLOAT
#define D_ DP_OPT_DOUBLE
#define BIG ((int64_t)1 << 40)   // "no practical limit" for step counts

static const dp_opt opts[] = {
    O_S("model", model, "model name (cnn, resnet18, resnet50, vit_ti16, vit_s16, vit_b16)"),
    O_I("image-size", L_, image_size, 8, 8192, 0, "input height = width in pixels"),
    O_I("channels", I_, channels, 1, 3, 0, "input channels: 1 or 3"),
    O_I("classes", L_, classes, 0, 1024, 0, "class count (0 = from the shards; must match them)"),
    O_B("small-stem", small_stem, "ResNet 3x3 stride-1 stem without max-pool (28-64 px)"),
    O_B("zero-init-residual", zero_init_residual, "ResNet: last BN of each block starts at 0"),
    O_I("patch", I_, patch, 0, 1024, 0, "ViT patch size (0 = model default)"),
    O_F("dropout", F_, dropout, 0, 1, DP_OPT_HI_OPEN, "dropout probability"),
    O_I("cnn-width", I_, cnn_width, 0, 4096, 0, "baseline CNN base width (0 = default)"),
    O_S("train", train, "training shards: glob or comma list"),
    O_S("val", val, "validation shards: glob or comma list (empty: no evaluation)"),
    O_I("epochs", L_, epochs, 0, 1000000, 0, "epochs (ignored when --steps > 0)"),
    O_I("steps", L_, steps, 0, BIG, 0, "optimizer steps (0 = use --epochs)"),
    O_I("batch", L_, batch, 1, 1 << 20, 0, "per-rank batch per micro-step"),
    O_I("accum", I_, accum, 1, 65536, 0, "gradient accumulation micro-steps per optimizer step"),
    O_S("optimizer", optimizer, "sgd | adamw"),
    O_F("lr", F_, lr, 0, 1000, DP_OPT_LO_OPEN, "peak learning rate"),
    O_F("momentum", F_, momentum, 0, 1, 0, "SGD momentum"),
    O_F("weight-decay", F_, weight_decay, 0, 1000, 0, "weight decay"),
    O_B("nesterov", nesterov, "SGD Nesterov momentum (0/1)"),
    O_B("no-decay-norm-bias", no_decay_norm_bias, "no weight decay on norms/biases/embeddings"),
    O_F("clip-grad-norm", F_, clip_grad_norm, 0, 1e9, 0, "clip global grad L2 norm (0 = off)"),
    O_S("schedule", schedule, "cosine | constant | step"),
    O_I("warmup-steps", L_, warmup_steps, 0, BIG, 0, "linear warmup steps (0: use --warmup-epochs)"),
    O_F("warmup-epochs", F_, warmup_epochs, 0, 1000000, 0, "linear warmup in epochs"),
    O_F("min-lr", F_, min_lr, 0, 1000, 0, "cosine floor"),
    O_I("step-every", L_, step_every, 0, BIG, 0, "step schedule: decay period in steps"),
    O_F("step-gamma", F_, step_gamma, 0, 10, DP_OPT_LO_OPEN, "step schedule: decay factor"),
    O_F("backbone-lr-mult", F_, backbone_lr_mult, 0, 1000, 0, "LR multiplier for non-head parameters"),
    O_I("freeze-below-stage", I_, freeze_below_stage, 0, 64, 0, "freeze stages below this (0 = none)"),
    O_I("unfreeze-every", I_, unfreeze_every, 0, 1000000, 0, "unfreeze one more stage every N epochs (0 = off)"),
    O_F("label-smoothing", F_, label_smoothing, 0, 1, DP_OPT_HI_OPEN, "label smoothing (torch semantics)"),
    O_S("class-weights", class_weights, "loss class weights: empty, auto (inverse frequency) or w0,w1,..."),
    O_B("augment", augment, "training augmentation on (1) or off (0)"),
    O_F("rrc-scale-min", F_, rrc_scale_min, 0, 1, DP_OPT_LO_OPEN, "random-resized-crop minimum area fraction"),
    O_F("hflip", F_, hflip, 0, 1, 0, "horizontal flip probability"),
    O_F("jitter", F_, jitter, 0, 1, 0, "colour jitter strength (0 = off)"),
    O_F("mixup", F_, mixup, 0, 100, 0, "mixup alpha (0 = off)"),
    O_F("cutmix", F_, cutmix, 0, 100, 0, "cutmix alpha (0 = off)"),
    {"seed", DP_OPT_U64, offsetof(TC, seed), 0, 0, 0, 0, 0, 0, "seed for init, sampling and augmentation"},
    O_I("threads", I_, threads, 0, 4096, DP_OPT_CORES, "compute threads per rank (0 = from the binding)"),
    O_I("loader-threads", I_, loader_threads, 0, 4096, DP_OPT_CORES, "decode threads per rank (0 = from the binding)"),
    O_S("out", out, "output directory (results.json, steps.csv, config.ini, model.safetensors)"),
    O_I("patience", I_, patience, 0, 1000000, 0, "early stopping: evaluations without improvement (0 = off)"),
    O_S("early-metric", early_metric, "early stopping metric: f1 (val macro-F1) | loss (val loss)"),
    O_I("eval-every", L_, eval_every, 0, BIG, 0, "steps between evaluations (0 = end of each epoch)"),
    O_I("log-every", I_, log_every, 0, 1000000000, 0, "progress period in steps (0 = auto)"),
    O_F("bucket-mb", D_, bucket_mb, 0, 100000, DP_OPT_LO_OPEN, "gradient all-reduce bucket size in MB"),
    O_I("baseline-steps", L_, baseline_steps, 0, 1000000000, 0, "in-job single-rank baseline: rank 0 trains K steps alone first"),
    O_S("baseline", baseline, "baseline results.json from a previous single-rank run"),
    O_I("project-images", L_, project_images, 1, BIG, 0, "dataset size for the projected full-run cost"),
    O_I("project-epochs", L_, project_epochs, 1, 1000000, 0, "epochs for the projected full-run cost"),
    O_S("hardware", hardware, "hardware table row for MFU and price (auto = by device)"),
    O_S("hardware-table", hardware_table, "hardware table file (default bench/hardware.tsv)"),
    O_F("price-per-hour", D_, price_per_hour, -1, 1e6, 0, "USD per rank-hour (-1: from the hardware table)"),
    O_F("max-skip-rate", D_, max_skip_rate, 0, 1, 0,
        "fail when more than this fraction of records is skipped as corrupt (checked at every log "
        "interval once 1000 records were read, and at each epoch end)"),
    O_I("checkpoint-every", L_, checkpoint_every, 0, BIG, 0, "write a checkpoint every N steps (0 = off)"),
    O_F("checkpoint-minutes", D_, checkpoint_minutes, 0, 1e6, 0, "write a checkpoint every M minutes (0 = off)"),
    O_I("keep-checkpoints", I_, keep_checkpoints, 1, 1000000, 0, "newest checkpoints kept in OUT/checkpoints (plus the best)"),
    O_S("resume", resume, "auto (newest valid checkpoint in OUT/checkpoints, else a fresh start) or a checkpoint path"),
    O_B("resume-force", resume_force, "resume even if the config hash or the data fingerprint changed"),
    O_F("collective-timeout", D_, collective_timeout, 1, 1e7, 0,
        "seconds a rank waits for another before the job aborts naming the missing rank"),
    O_S("init-weights", init_weights, "pretrained weights (safetensors, torchvision or timm names) loaded before training"),
    O_S("init-exclude", init_exclude, "comma-separated tensor name prefixes not loaded from --init-weights"),
    O_B("init-strict", init_strict, "any missing, unexpected or shape-mismatched tensor in --init-weights is an error"),
    O_S("device", device, "cpu | cuda | auto (auto: a GPU per rank when one is found, else CPU)"),
    O_S("precision", precision, "auto | fp32 | tf32 | bf16 | fp16 (GPU; auto = tf32 (bf16 once measured faster); CPU is fp32)"),
    O_S("mlflow-uri", mlflow_uri, "MLflow tracking server http(s)://host:port (empty: $MLFLOW_TRACKING_URI or no tracking)"),
    O_S("mlflow-experiment", mlflow_experiment, "MLflow experiment name (empty: $MLFLOW_EXPERIMENT_NAME or dptrain)"),
    O_S("run-name", run_name, "MLflow run name (empty: the basename of --out)"),
    O_F("mlflow-timeout", D_, mlflow_timeout, 1, 600, 0, "seconds per MLflow call before it is retried in the background"),
    O_S("dump-ids", dump_ids, "debug: write consumed sample ids to FILE.rank<r>"),
};
#define NOPTS ((int)(sizeof opts / sizeof opts[0]))

static const dp_opts table = {
    "dptrain", opts, NOPTS,
    "usage: dptrain train --model NAME --train GLOB [--val GLOB] --out DIR\n"
    "                     [--epochs E | --steps S] [--batch B] [--baseline-steps K | --baseline FILE]\n"
    "                     [--config FILE] [options]\n"
    "Launch with mpirun -np N or srun --mpi=pmix -n N. A config file holds `key = value`\n"
    "lines with the names below; flags given on the command line win.\n",
    1};

void train_config_defaults(train_config *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->model, sizeof c->model, "cnn");
  c->image_size = 64;
  c->channels = 3;
  c->epochs = 1;
  c->batch = 32;
  c->accum = 1;
  snprintf(c->optimizer, sizeof c->optimizer, "sgd");
  c->lr = 0.1f;
  c->momentum = 0.9f;
  c->weight_decay = 5e-4f;
  c->no_decay_norm_bias = 1;
  snprintf(c->schedule, sizeof c->schedule, "cosine");
  c->step_gamma = 0.1f;
  c->backbone_lr_mult = 1.0f;
  c->augment = 1;
  c->rrc_scale_min = 0.08f;
  c->hflip = 0.5f;
  c->seed = 1;
  snprintf(c->out, sizeof c->out, "runs/latest");
  snprintf(c->early_metric, sizeof c->early_metric, "f1");
  c->bucket_mb = 25.0;
  c->project_images = 1200000;
  c->project_epochs = 30;
  snprintf(c->hardware, sizeof c->hardware, "auto");
  c->price_per_hour = -1.0;
  // 5 %: real product-photo sets carry a few percent of corrupt or
  // unreadable files (the ShopLens data about 2 %, and `data synth` makes 2 %
  // by default), so a 1 % limit stopped production runs at the end of their
  // first epoch. 5 % still stops a run on a broken or mislabelled shard set.
  c->max_skip_rate = 0.05;
  c->keep_checkpoints = 2;
  c->collective_timeout = 600.0;
  snprintf(c->device, sizeof c->device, "cpu");
  snprintf(c->precision, sizeof c->precision, "auto");
  c->mlflow_timeout = 10.0;
}

int train_config_set(train_config *c, const char *key, const char *value) {
  return dp_opts_set(&table, c, key, value);
}

int train_config_read_file(train_config *c, const char *path) {
  if (dp_opts_read_file(&table, c, path)) return -1;
  snprintf(c->config, sizeof c->config, "%s", path);
  return 0;
}

int train_config_read_text(train_config *c, const char *text, size_t len, const char *name) {
  return dp_opts_read_text(&table, c, text, len, name);
}

void train_config_usage(FILE *f) {
  train_config d;
  train_config_defaults(&d);
  dp_opts_usage(&table, &d, f);
}

int train_config_parse(train_config *c, int argc, char **argv) {
  int rc = dp_opts_parse(&table, c, argc, argv);
  if (rc) return rc;
  // The config file read (informational, shown in config.ini's header).
  for (int i = 1; i < argc; i++) {
    if (!strncmp(argv[i], "--config=", 9)) snprintf(c->config, sizeof c->config, "%s", argv[i] + 9);
    else if (!strcmp(argv[i], "--config") && i + 1 < argc) snprintf(c->config, sizeof c->config, "%s", argv[++i]);
  }
  return 0;
}

void train_config_write(const train_config *c, FILE *f) {
  fprintf(f, "# dptrain effective configuration (reuse with --config FILE)\n");
  dp_opts_write_ini(&table, c, f);
}

void train_config_foreach(const train_config *c, void (*fn)(const char *name, const char *value, void *ctx),
                          void *ctx) {
  // The settings config.ini holds, formatted as it writes them.
  char v[TC_PATH_MAX + 64];
  for (int i = 0; i < NOPTS; i++) {
    const dp_opt *o = &opts[i];
    if (o->type == DP_OPT_LIST || (o->flags & DP_OPT_HIDDEN)) continue;
    fn(o->name, dp_opts_format(o, c, v, sizeof v), ctx);
  }
}

void train_config_write_json(const train_config *c, void *dp_json_writer) {
  dp_opts_write_json(&table, c, dp_json_writer);
}

#define BAD(setting, ...)                                                  \
  do {                                                                     \
    fprintf(stderr, "dptrain: bad configuration: setting '%s': ", setting); \
    fprintf(stderr, __VA_ARGS__);                                          \
    fputc('\n', stderr);                                                   \
    return -1;                                                             \
  } while (0)

int train_config_check(const train_config *c) {
  if (!model_known(c->model)) BAD("model", "unknown model '%s' (known: %s)", c->model, model_names());
  if (c->batch < 1) BAD("batch", "must be >= 1 (got %lld)", (long long)c->batch);
  if (c->accum < 1) BAD("accum", "must be >= 1 (got %d)", c->accum);
  if (c->image_size < 8) BAD("image-size", "must be >= 8 (got %lld)", (long long)c->image_size);
  if (c->channels != 1 && c->channels != 3) BAD("channels", "must be 1 or 3 (got %d)", c->channels);
  if (c->classes < 0) BAD("classes", "must be >= 0");
  if (!c->train[0]) BAD("train", "no training shards given (--train GLOB)");
  if (c->steps <= 0 && c->epochs <= 0) BAD("epochs", "need --epochs > 0 or --steps > 0");
  if (strcmp(c->optimizer, "sgd") && strcmp(c->optimizer, "adamw"))
    BAD("optimizer", "unknown optimizer '%s' (sgd, adamw)", c->optimizer);
  if (strcmp(c->schedule, "cosine") && strcmp(c->schedule, "constant") && strcmp(c->schedule, "step"))
    BAD("schedule", "unknown schedule '%s' (cosine, constant, step)", c->schedule);
  if (!(c->lr > 0)) BAD("lr", "must be > 0");
  if (c->label_smoothing < 0 || c->label_smoothing >= 1) BAD("label-smoothing", "must be in [0, 1)");
  if (strcmp(c->early_metric, "f1") && strcmp(c->early_metric, "loss"))
    BAD("early-metric", "must be f1 or loss (got '%s')", c->early_metric);
  if (c->patience < 0) BAD("patience", "must be >= 0");
  if (c->baseline_steps < 0) BAD("baseline-steps", "must be >= 0");
  if (c->baseline_steps > 0 && c->baseline[0])
    BAD("baseline", "give either --baseline-steps K or --baseline FILE, not both");
  if (c->max_skip_rate < 0 || c->max_skip_rate > 1) BAD("max-skip-rate", "must be in [0, 1]");
  if (strcmp(c->device, "cpu") && strcmp(c->device, "cuda") && strcmp(c->device, "auto"))
    BAD("device", "must be cpu, cuda or auto (got '%s')", c->device);
  if (strcmp(c->precision, "auto") && strcmp(c->precision, "fp32") && strcmp(c->precision, "tf32") &&
      strcmp(c->precision, "bf16") && strcmp(c->precision, "fp16"))
    BAD("precision", "must be auto, fp32, tf32, bf16 or fp16 (got '%s')", c->precision);
  // The CPU backend computes in fp32 only; asking for less on an explicit CPU
  // run is a mistake worth stopping for (with --device auto falling back to
  // the CPU, the trainer logs that the setting is ignored).
  if (!strcmp(c->device, "cpu") && strcmp(c->precision, "auto") && strcmp(c->precision, "fp32"))
    BAD("precision", "--precision %s needs --device cuda (the CPU backend is fp32)", c->precision);
  if (!c->out[0]) BAD("out", "output directory is empty");
  if (c->bucket_mb <= 0) BAD("bucket-mb", "must be > 0");
  if (c->mixup < 0 || c->cutmix < 0) BAD("mixup", "alphas must be >= 0");
  if (c->threads < 0 || c->loader_threads < 0) BAD("threads", "must be >= 0");
  if (c->mlflow_uri[0]) {
    char why[512];
    if (trk_uri_check(c->mlflow_uri, why, sizeof why)) BAD("mlflow-uri", "%s", why);
  }
  if (!(c->mlflow_timeout >= 1 && c->mlflow_timeout <= 600))   // the table checks flags; this, defaults and code
    BAD("mlflow-timeout", "must be in [1, 600] seconds (got %g)", c->mlflow_timeout);
  for (const char *p = c->mlflow_experiment; *p; p++)
    if ((unsigned char)*p < 0x20) BAD("mlflow-experiment", "contains a control character");
  for (const char *p = c->run_name; *p; p++)
    if ((unsigned char)*p < 0x20) BAD("run-name", "contains a control character");
  return 0;
}
