// Training configuration: one struct, filled from defaults, then a config
// file (`key = value` lines, same names as the long flags without "--"),
// then command-line flags (flags win). Parsing and range checks are the
// shared option table of core/opts.h: every number is checked on its own
// type and range, NaN/Inf are refused, thread counts are bounded by the CPUs. The effective configuration is written
// back in the same format (OUT/config.ini) so a run can be repeated with
// `--config OUT/config.ini`.
#ifndef DP_TRAIN_CONFIG_H
#define DP_TRAIN_CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TC_PATH_MAX 1024

typedef struct {
  // Model.
  char model[32];
  int64_t image_size;
  int channels;
  int64_t classes;           // 0: taken from the shards
  int small_stem;
  int zero_init_residual;
  int patch;
  float dropout;
  int cnn_width;
  // Data.
  char train[TC_PATH_MAX];   // shard glob or comma list
  char val[TC_PATH_MAX];     // may be empty (no evaluation)
  // Length.
  int64_t epochs;
  int64_t steps;             // > 0 overrides epochs
  int64_t batch;             // per rank, per micro-step
  int accum;                 // gradient accumulation micro-steps
  // Memory (train/memfit.h; memory: batch-size finder and budget).
  int auto_batch;            // 1: pick the largest batch under the budget ("--batch auto")
  char memory_budget[32];    // per rank, e.g. "24GiB"; empty: free memory minus a reserve
  float memory_margin;       // safety margin below the budget (fraction)
  int memory_enforce;        // 1: fail on allocations past the budget (CPU)
  int64_t global_batch;      // tune-batch: the accumulation steps that hold this global batch
  int tune_steps;            // tune-batch: steps per probed batch (1 measures memory, the rest time)
  // Optimizer and schedule.
  char optimizer[16];        // sgd | adamw
  float lr, momentum, weight_decay;
  int nesterov;
  int no_decay_norm_bias;
  float clip_grad_norm;
  char schedule[16];         // cosine | constant | step
  int64_t warmup_steps;
  float warmup_epochs;       // used when warmup_steps == 0
  float min_lr;
  int64_t step_every;
  float step_gamma;
  float backbone_lr_mult;
  int freeze_below_stage;
  int unfreeze_every;
  // Loss.
  float label_smoothing;
  char class_weights[TC_PATH_MAX];   // "" none | auto | "w0,w1,..."
  // Augmentation.
  int augment;               // 0: eval transform for training too (tests)
  float rrc_scale_min;
  float hflip;
  float jitter;
  float mixup;
  float cutmix;
  char augment_policy[16];   // quality: auto (from the shards) | defects | imagenet
  int crop_pad;              // quality: defects policy, crop offsets past the image (pixels)
  char jitter_classes[TC_PATH_MAX];   // quality: classes colour jitter may touch ("" = policy default)
  char sampler[16];          // quality: uniform | balanced | sqrt
  int logit_adjust;          // quality: tune per-class logit offsets on val after training (0/1)
  int save_init;             // quality: write OUT/init.safetensors (the broadcast initial weights)
  // Run.
  uint64_t seed;
  int threads;               // compute threads per rank (0 = from binding)
  int loader_threads;        // decode threads per rank (0 = from binding)
  char out[TC_PATH_MAX];
  int patience;              // evaluations without improvement (0 = off)
  char early_metric[16];     // f1 | loss
  int64_t eval_every;        // steps between evaluations (0 = each epoch)
  int log_every;             // progress line period in steps (0 = auto)
  double bucket_mb;          // gradient bucket size
  // Study.
  int64_t baseline_steps;    // in-job single-rank baseline (0 = off)
  char baseline[TC_PATH_MAX];   // previous results.json as the baseline
  int64_t project_images;
  int64_t project_epochs;
  char hardware[64];         // row of the hardware table ("auto": by device)
  char hardware_table[TC_PATH_MAX];
  double price_per_hour;     // per rank; < 0: from the table
  double max_skip_rate;
  // Training state (train/checkpoint.h, docs/checkpoints.md).
  int64_t checkpoint_every;  // steps between checkpoints (0 = off)
  double checkpoint_minutes; // minutes between checkpoints (0 = off)
  int keep_checkpoints;      // newest checkpoints kept (the best is kept as well)
  char resume[TC_PATH_MAX];  // "" (fresh), "auto" (newest valid in OUT/checkpoints, else fresh) or a path
  int resume_force;          // resume even when the config hash or the data fingerprint changed
  double collective_timeout; // seconds a rank may wait for another before the job aborts
  char init_weights[TC_PATH_MAX];   // pretrained safetensors loaded before training
  char init_exclude[TC_PATH_MAX];   // comma-separated name prefixes not loaded
  int init_strict;           // any missing / unexpected / mismatched tensor is an error
  char device[16];           // cpu | cuda | auto
  char precision[16];        // auto | fp32 | tf32 | bf16 | fp16 (GPU only; CPU is fp32)
  // Tracking (src/track, docs/tracking.md): empty URI = MLFLOW_TRACKING_URI or off.
  char mlflow_uri[TC_PATH_MAX];
  char mlflow_experiment[256];   // "" = MLFLOW_EXPERIMENT_NAME or "dptrain"
  char run_name[256];            // "" = basename of --out
  double mlflow_timeout;         // seconds per HTTP call
  // Debug / tests.
  char dump_ids[TC_PATH_MAX];   // per-rank "<file>.rank<r>" of consumed sample ids
  char config[TC_PATH_MAX];  // config file read (informational)
} train_config;

void train_config_defaults(train_config *c);
// Parses argv (argv[0] is the subcommand name). Reads --config FILE first.
// Returns 0 on success, 1 if --help was printed, -1 on error (message printed).
int train_config_parse(train_config *c, int argc, char **argv);
// Reads `key = value` lines into c. Returns 0, or -1 with a message.
// The file must be a regular file of at most 1 MiB with no NUL byte and no
// line over 4095 characters (core/opts.h).
int train_config_read_file(train_config *c, const char *path);
// The same from memory (name is used in messages; the fuzz target uses it).
int train_config_read_text(train_config *c, const char *text, size_t len, const char *name);
// Sets one option by name (without "--"). Returns 0, or -1 with a message.
int train_config_set(train_config *c, const char *key, const char *value);
void train_config_write(const train_config *c, FILE *f);
// Calls fn(name, value) for every setting, in table order, with the value
// formatted as config.ini writes it.
void train_config_foreach(const train_config *c, void (*fn)(const char *name, const char *value, void *ctx),
                          void *ctx);
void train_config_usage(FILE *f);
// Writes every setting as "name": value pairs into an open JSON object.
void train_config_write_json(const train_config *c, void *dp_json_writer);
// Checks values that need no files (batch >= 1, known model, ...). Returns 0
// or -1 after printing a message that names the setting.
int train_config_check(const train_config *c);
#endif
