#include "train/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "nn/models/models.h"

typedef enum { T_STR, T_I64, T_INT, T_FLOAT, T_DOUBLE, T_U64 } opt_type;

typedef struct {
  const char *name;
  opt_type type;
  size_t off;
  size_t size;   // for strings
  const char *help;
} opt_desc;

#define O_STR(n, f, h) {n, T_STR, offsetof(train_config, f), sizeof(((train_config *)0)->f), h}
#define O_(n, t, f, h) {n, t, offsetof(train_config, f), 0, h}

// One table drives the CLI, the config file and the saved config.
static const opt_desc opts[] = {
    O_STR("model", model, "model name (cnn, resnet18, resnet50, vit_ti16, vit_s16, vit_b16)"),
    O_("image-size", T_I64, image_size, "input height = width in pixels"),
    O_("channels", T_INT, channels, "input channels: 1 or 3"),
    O_("classes", T_I64, classes, "class count (0 = from the shards; must match them)"),
    O_("small-stem", T_INT, small_stem, "ResNet 3x3 stride-1 stem without max-pool (28-64 px)"),
    O_("zero-init-residual", T_INT, zero_init_residual, "ResNet: last BN of each block starts at 0"),
    O_("patch", T_INT, patch, "ViT patch size (0 = model default)"),
    O_("dropout", T_FLOAT, dropout, "dropout probability"),
    O_("cnn-width", T_INT, cnn_width, "baseline CNN base width (0 = default)"),
    O_STR("train", train, "training shards: glob or comma list"),
    O_STR("val", val, "validation shards: glob or comma list (empty: no evaluation)"),
    O_("epochs", T_I64, epochs, "epochs (ignored when --steps > 0)"),
    O_("steps", T_I64, steps, "optimizer steps (0 = use --epochs)"),
    O_("batch", T_I64, batch, "per-rank batch per micro-step"),
    O_("accum", T_INT, accum, "gradient accumulation micro-steps per optimizer step"),
    O_STR("optimizer", optimizer, "sgd | adamw"),
    O_("lr", T_FLOAT, lr, "peak learning rate"),
    O_("momentum", T_FLOAT, momentum, "SGD momentum"),
    O_("weight-decay", T_FLOAT, weight_decay, "weight decay"),
    O_("nesterov", T_INT, nesterov, "SGD Nesterov momentum (0/1)"),
    O_("no-decay-norm-bias", T_INT, no_decay_norm_bias, "no weight decay on norms/biases/embeddings"),
    O_("clip-grad-norm", T_FLOAT, clip_grad_norm, "clip global grad L2 norm (0 = off)"),
    O_STR("schedule", schedule, "cosine | constant | step"),
    O_("warmup-steps", T_I64, warmup_steps, "linear warmup steps (0: use --warmup-epochs)"),
    O_("warmup-epochs", T_FLOAT, warmup_epochs, "linear warmup in epochs"),
    O_("min-lr", T_FLOAT, min_lr, "cosine floor"),
    O_("step-every", T_I64, step_every, "step schedule: decay period in steps"),
    O_("step-gamma", T_FLOAT, step_gamma, "step schedule: decay factor"),
    O_("backbone-lr-mult", T_FLOAT, backbone_lr_mult, "LR multiplier for non-head parameters"),
    O_("freeze-below-stage", T_INT, freeze_below_stage, "freeze stages below this (0 = none)"),
    O_("unfreeze-every", T_INT, unfreeze_every, "unfreeze one more stage every N epochs (0 = off)"),
    O_("label-smoothing", T_FLOAT, label_smoothing, "label smoothing (torch semantics)"),
    O_STR("class-weights", class_weights, "loss class weights: empty, auto (inverse frequency) or w0,w1,..."),
    O_("augment", T_INT, augment, "training augmentation on (1) or off (0)"),
    O_("rrc-scale-min", T_FLOAT, rrc_scale_min, "random-resized-crop minimum area fraction"),
    O_("hflip", T_FLOAT, hflip, "horizontal flip probability"),
    O_("jitter", T_FLOAT, jitter, "colour jitter strength (0 = off)"),
    O_("mixup", T_FLOAT, mixup, "mixup alpha (0 = off)"),
    O_("cutmix", T_FLOAT, cutmix, "cutmix alpha (0 = off)"),
    O_STR("augment-policy", augment_policy, "auto (the shards' augment_policy attribute, else imagenet) | defects (native scale: crop/translate, flip) | imagenet (random-resized-crop, flip, jitter)"),
    O_("crop-pad", T_INT, crop_pad, "defects policy: crop offsets may reach this many pixels past the resized image"),
    O_STR("jitter-classes", jitter_classes, "colour jitter only for these classes (names or indices, comma list; defects: none by default)"),
    O_STR("sampler", sampler, "uniform (DistributedSampler) | balanced (class-balanced, with replacement) | sqrt (square-root frequency, with replacement)"),
    O_("logit-adjust", T_INT, logit_adjust, "after training, tune per-class logit offsets on val for macro-F1 and store them with the model (0/1)"),
    O_("seed", T_U64, seed, "seed for init, sampling and augmentation"),
    O_("threads", T_INT, threads, "compute threads per rank (0 = from the binding)"),
    O_("loader-threads", T_INT, loader_threads, "decode threads per rank (0 = from the binding)"),
    O_STR("out", out, "output directory (results.json, steps.csv, config.ini, model.safetensors)"),
    O_("patience", T_INT, patience, "early stopping: evaluations without improvement (0 = off)"),
    O_STR("early-metric", early_metric, "early stopping metric: f1 (val macro-F1) | loss (val plain cross-entropy) | objective (val training loss)"),
    O_("eval-every", T_I64, eval_every, "steps between evaluations (0 = end of each epoch)"),
    O_("log-every", T_INT, log_every, "progress period in steps (0 = auto)"),
    O_("bucket-mb", T_DOUBLE, bucket_mb, "gradient all-reduce bucket size in MB"),
    O_("baseline-steps", T_I64, baseline_steps, "in-job single-rank baseline: rank 0 trains K steps alone first"),
    O_STR("baseline", baseline, "baseline results.json from a previous single-rank run"),
    O_("project-images", T_I64, project_images, "dataset size for the projected full-run cost"),
    O_("project-epochs", T_I64, project_epochs, "epochs for the projected full-run cost"),
    O_STR("hardware", hardware, "hardware table row for MFU and price (auto = by device)"),
    O_STR("hardware-table", hardware_table, "hardware table file (default bench/hardware.tsv)"),
    O_("price-per-hour", T_DOUBLE, price_per_hour, "USD per rank-hour (< 0: from the hardware table)"),
    O_("max-skip-rate", T_DOUBLE, max_skip_rate, "fail when more than this fraction of records is skipped"),
    O_STR("device", device, "cpu | cuda | auto (auto: a GPU per rank when one is found, else CPU)"),
    O_STR("precision", precision, "auto | fp32 | tf32 | bf16 | fp16 (GPU; auto = bf16 on sm_80+; CPU is fp32)"),
    O_STR("dump-ids", dump_ids, "debug: write consumed sample ids to FILE.rank<r>"),
};
#define NOPTS ((int)(sizeof opts / sizeof opts[0]))

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
  snprintf(c->augment_policy, sizeof c->augment_policy, "auto");
  snprintf(c->sampler, sizeof c->sampler, "uniform");
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
  c->max_skip_rate = 0.01;
  snprintf(c->device, sizeof c->device, "cpu");
  snprintf(c->precision, sizeof c->precision, "auto");
}

static const opt_desc *find_opt(const char *name) {
  for (int i = 0; i < NOPTS; i++)
    if (!strcmp(opts[i].name, name)) return &opts[i];
  return NULL;
}

static int parse_num(const char *key, const char *v, int is_float, double *dv, long long *iv) {
  char *end = NULL;
  errno = 0;
  if (is_float) *dv = strtod(v, &end);
  else *iv = strtoll(v, &end, 10);
  if (errno || end == v || *end) {
    fprintf(stderr, "dptrain: setting '%s': '%s' is not a valid %s\n", key, v,
            is_float ? "number" : "integer");
    return -1;
  }
  return 0;
}

int train_config_set(train_config *c, const char *key, const char *value) {
  const opt_desc *o = find_opt(key);
  if (!o) {
    fprintf(stderr, "dptrain: unknown setting '%s' (see --help)\n", key);
    return -1;
  }
  char *base = (char *)c + o->off;
  double dv = 0;
  long long iv = 0;
  switch (o->type) {
    case T_STR:
      if (strlen(value) >= o->size) {
        fprintf(stderr, "dptrain: setting '%s': value too long (max %zu)\n", key, o->size - 1);
        return -1;
      }
      snprintf(base, o->size, "%s", value);
      return 0;
    case T_I64:
    case T_INT:
    case T_U64:
      if (parse_num(key, value, 0, &dv, &iv)) return -1;
      if (o->type == T_I64) *(int64_t *)base = iv;
      else if (o->type == T_U64) *(uint64_t *)base = (uint64_t)iv;
      else *(int *)base = (int)iv;
      return 0;
    case T_FLOAT:
    case T_DOUBLE:
      if (parse_num(key, value, 1, &dv, &iv)) return -1;
      if (o->type == T_FLOAT) *(float *)base = (float)dv;
      else *(double *)base = dv;
      return 0;
  }
  return -1;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = 0;
  return s;
}

int train_config_read_file(train_config *c, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "dptrain: setting 'config': cannot open '%s': %s\n", path, strerror(errno));
    return -1;
  }
  char line[2048];
  int lineno = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';' || *s == '[') continue;   // comments, [sections]
    char *eq = strchr(s, '=');
    if (!eq) {
      fprintf(stderr, "dptrain: %s:%d: expected 'key = value'\n", path, lineno);
      rc = -1;
      break;
    }
    *eq = 0;
    char *k = trim(s), *v = trim(eq + 1);
    // Allow "key = value  # comment" and quoted values.
    char *hash = strstr(v, " #");
    if (hash) *hash = 0, v = trim(v);
    size_t vn = strlen(v);
    if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') v[vn - 1] = 0, v++;
    for (char *p = k; *p; p++)
      if (*p == '_') *p = '-';
    if (train_config_set(c, k, v)) {
      fprintf(stderr, "dptrain: (in %s line %d)\n", path, lineno);
      rc = -1;
      break;
    }
  }
  fclose(f);
  if (!rc) snprintf(c->config, sizeof c->config, "%s", path);
  return rc;
}

static void format_value(const train_config *c, const opt_desc *o, char *b, size_t n) {
  const char *base = (const char *)c + o->off;
  switch (o->type) {
    case T_STR: snprintf(b, n, "%s", base); break;
    case T_I64: snprintf(b, n, "%lld", (long long)*(const int64_t *)base); break;
    case T_U64: snprintf(b, n, "%llu", (unsigned long long)*(const uint64_t *)base); break;
    case T_INT: snprintf(b, n, "%d", *(const int *)base); break;
    case T_FLOAT: snprintf(b, n, "%.9g", (double)*(const float *)base); break;
    case T_DOUBLE: snprintf(b, n, "%.17g", *(const double *)base); break;
  }
}

void train_config_usage(FILE *f) {
  fprintf(f,
          "usage: dptrain train --model NAME --train GLOB [--val GLOB] --out DIR\n"
          "                     [--epochs E | --steps S] [--batch B] [--baseline-steps K | --baseline FILE]\n"
          "                     [--config FILE] [options]\n"
          "Launch with mpirun -np N or srun --mpi=pmix -n N. A config file holds `key = value`\n"
          "lines with the names below; flags given on the command line win.\n\noptions:\n");
  fprintf(f, "  --%-22s %s\n", "config FILE", "read settings from FILE first");
  train_config d;
  train_config_defaults(&d);
  for (int i = 0; i < NOPTS; i++) {
    char v[64];
    format_value(&d, &opts[i], v, sizeof v);
    fprintf(f, "  --%-22s %s [%s]\n", opts[i].name, opts[i].help, v);
  }
}

int train_config_parse(train_config *c, int argc, char **argv) {
  // Pass 1: the config file, so command-line flags override it.
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      train_config_usage(stdout);
      return 1;
    }
    if (!strncmp(argv[i], "--config", 8)) {
      const char *v = NULL;
      if (argv[i][8] == '=') v = argv[i] + 9;
      else if (argv[i][8] == 0 && i + 1 < argc) v = argv[++i];
      if (!v) {
        fprintf(stderr, "dptrain: setting 'config' needs a file\n");
        return -1;
      }
      if (train_config_read_file(c, v)) return -1;
    }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2)) {
      fprintf(stderr, "dptrain: unexpected argument '%s' (flags are --name value)\n", a);
      return -1;
    }
    char key[128];
    const char *val = NULL;
    const char *eq = strchr(a, '=');
    if (eq) {
      snprintf(key, sizeof key, "%.*s", (int)(eq - a - 2), a + 2);
      val = eq + 1;
    } else {
      snprintf(key, sizeof key, "%s", a + 2);
    }
    if (!strcmp(key, "config")) {
      if (!eq) i++;
      continue;
    }
    // On/off settings may be given bare: "--small-stem" means "--small-stem 1".
    static const char *const bare_ok[] = {"small-stem", "zero-init-residual", "nesterov", "augment",
                                          "no-decay-norm-bias", "logit-adjust"};
    if (!val && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)))
      for (size_t b = 0; b < sizeof bare_ok / sizeof bare_ok[0]; b++)
        if (!strcmp(key, bare_ok[b])) val = "1";
    if (!val) {
      if (i + 1 >= argc) {
        fprintf(stderr, "dptrain: setting '%s' needs a value\n", key);
        return -1;
      }
      val = argv[++i];
    }
    if (train_config_set(c, key, val)) return -1;
  }
  return 0;
}

void train_config_write(const train_config *c, FILE *f) {
  fprintf(f, "# dptrain effective configuration (reuse with --config FILE)\n");
  for (int i = 0; i < NOPTS; i++) {
    const char *base = (const char *)c + opts[i].off;
    fprintf(f, "%s = ", opts[i].name);
    switch (opts[i].type) {
      case T_STR: fprintf(f, "%s\n", base); break;
      case T_I64: fprintf(f, "%lld\n", (long long)*(const int64_t *)base); break;
      case T_U64: fprintf(f, "%llu\n", (unsigned long long)*(const uint64_t *)base); break;
      case T_INT: fprintf(f, "%d\n", *(const int *)base); break;
      case T_FLOAT: fprintf(f, "%.9g\n", (double)*(const float *)base); break;
      case T_DOUBLE: fprintf(f, "%.17g\n", *(const double *)base); break;
    }
  }
}

void train_config_write_json(const train_config *c, void *dp_json_writer) {
  dp_json *j = dp_json_writer;
  for (int i = 0; i < NOPTS; i++) {
    const char *base = (const char *)c + opts[i].off;
    switch (opts[i].type) {
      case T_STR: dp_json_kv_string(j, opts[i].name, base); break;
      case T_I64: dp_json_kv_int(j, opts[i].name, *(const int64_t *)base); break;
      case T_U64: dp_json_kv_int(j, opts[i].name, (int64_t) * (const uint64_t *)base); break;
      case T_INT: dp_json_kv_int(j, opts[i].name, *(const int *)base); break;
      case T_FLOAT: {   // shortest decimal that round-trips the float, not its double expansion
        char b[32];
        snprintf(b, sizeof b, "%.7g", (double)*(const float *)base);
        dp_json_kv_double(j, opts[i].name, strtod(b, NULL));
        break;
      }
      case T_DOUBLE: dp_json_kv_double(j, opts[i].name, *(const double *)base); break;
    }
  }
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
  if (strcmp(c->early_metric, "f1") && strcmp(c->early_metric, "loss") && strcmp(c->early_metric, "objective"))
    BAD("early-metric", "must be f1, loss or objective (got '%s')", c->early_metric);
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
  if (strcmp(c->augment_policy, "auto") && strcmp(c->augment_policy, "defects") && strcmp(c->augment_policy, "imagenet"))
    BAD("augment-policy", "must be auto, defects or imagenet (got '%s')", c->augment_policy);
  if (c->crop_pad < 0 || c->crop_pad > 4096) BAD("crop-pad", "must be in [0, 4096] (got %d)", c->crop_pad);
  if (strcmp(c->sampler, "uniform") && strcmp(c->sampler, "balanced") && strcmp(c->sampler, "sqrt"))
    BAD("sampler", "must be uniform, balanced or sqrt (got '%s')", c->sampler);
  if (c->logit_adjust != 0 && c->logit_adjust != 1) BAD("logit-adjust", "must be 0 or 1 (got %d)", c->logit_adjust);
  if (c->threads < 0 || c->loader_threads < 0) BAD("threads", "must be >= 0");
  return 0;
}
