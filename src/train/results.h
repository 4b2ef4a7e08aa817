// One run's record: what results.json holds (docs/results-schema.md) and the
// summary table rank 0 prints. Filled by the trainer / evaluator on rank 0.
#ifndef DP_TRAIN_RESULTS_H
#define DP_TRAIN_RESULTS_H
#include <stdint.h>
#include <stdio.h>

#include "train/config.h"
#include "train/metrics.h"

#define RESULTS_SCHEMA_VERSION 1

typedef struct {
  double step_s, data_wait_s, forward_backward_s, comm_wait_s, optimizer_s, comm_span_s;
  double images_per_s;
  int64_t peak_rss_bytes;
} rank_timing;

// Per-step times of a series (the timed steps' slowest-rank step time, or the
// in-job baseline's steps), kept so results.json can state their spread: the
// study flags a baseline whose coefficient of variation exceeds 20 %.
typedef struct {
  double *v;
  int64_t n, cap;
} step_series;
void step_series_add(step_series *s, double x);
void step_series_free(step_series *s);
// Mean, coefficient of variation (sample std / mean), median and 95th
// percentile; NAN when there are fewer than 2 values.
typedef struct {
  double mean, cv, median, p95;
  int64_t n;
} step_stats;
step_stats step_series_stats(const step_series *s);

// The 1-minute load average (/proc/loadavg); NAN if unreadable.
double run_load_average_1m(void);
// CPU seconds this process has used (all threads, getrusage); NAN if unavailable.
double run_process_cpu_s(void);
// cpu_s / (wall_s x cores), clamped to [0, 1]: the share of its cores a rank
// actually got (1 on a dedicated machine); NAN when not measurable.
double run_cpu_share(double cpu_s, double wall_s, int cores);

typedef struct {
  const char *kind;            // "train" or "eval"
  int world_size, nodes;
  char hosts[256];             // unique host names, comma-separated (truncated)
  // Hardware.
  char hardware[64], hw_kind[16], hw_unit[16], precision[8];
  double peak_flops_per_rank, price_per_rank_hour;
  int price_is_estimate;
  int cores_per_rank, threads_per_rank, loader_threads;
  char hardware_table[1024];
  // Model.
  char model[32];
  int64_t params, flops_per_image_fwd;
  // Throughput (timed steps: warm-up steps excluded).
  int64_t global_batch, steps, timed_steps, images, epochs_done;
  double train_wall_s, total_wall_s, images_per_s, mfu;
  rank_timing mean;            // mean over ranks of per-step means
  rank_timing *per_rank;       // (world)
  double comm_hidden_fraction;
  // Baseline and scaling.
  char baseline_source[1024];  // "in-job", a results.json path, or "" (none)
  int64_t baseline_steps;
  double baseline_images_per_s, baseline_macro_f1, scaling_efficiency, f1_delta;
  // Cost.
  double rank_hours, cost_usd, projected_time_s, projected_cost_usd;
  int64_t project_images, project_epochs;
  // Quality.
  int evaluated;
  class_metrics q;
  char **class_names;          // (q.num_classes) or NULL
  int64_t eval_samples;
  // For the study (docs/results-schema.md "study fields").
  char device[8];              // "cpu" | "cuda": what the ranks ran on
  step_series steps_hist;      // slowest-rank step time of each timed step
  step_series baseline_hist;   // in-job baseline step times (timed ones)
  double comm_ref_s;           // blocking all-reduce of the gradients at start-up, s (0: none)
  double load_start;           // 1-minute load average when the run started
  double cpu_loop_s;           // this rank's CPU seconds in the training loop
  double cpu_share_mean, cpu_share_min;   // over ranks (rank 0)
  // Post-hoc logit adjustment (issue 12): metrics of argmax(logits + bias).
  int adjusted;
  class_metrics q_adj;
  float *logit_bias;           // (q.num_classes), owned
  char adjust_split[16];       // where bias was tuned / applied: "val (tuned)" or "eval"
  char augment_policy[16];
  // Memory, data.
  int64_t peak_rss_bytes;      // max over ranks
  int64_t decoded, skipped;
  int stopped_early;
  char stop_reason[128];
  // Run state (issue: training state that outlives the process).
  const char *status;          // "completed" | "preempted" | "failed"
  double step_images_per_s;    // images over the summed step spans (excludes stalls between steps)
  double eval_wall_s, checkpoint_stall_s;
  int segments;                // 1 + number of restarts from a checkpoint
  char resumed_from[1100];     // checkpoint of the last restart ("" fresh)
  char config_hash[64], data_fingerprint[160];
  // Checkpoints.
  int64_t checkpoints_written, checkpoint_failures, checkpoint_last_bytes;
  double checkpoint_last_write_s, checkpoint_max_write_s, checkpoint_max_snapshot_s;
  char checkpoint_last_path[1100];
  // Models: model.safetensors is the best by --early-metric when there is
  // validation, model-last.safetensors the last state.
  int64_t best_step;           // -1: no evaluation
  double best_metric;
  char early_metric[16];
  int64_t last_step;
  char init_weights[1024];     // --init-weights, "" none
} run_results;

void run_results_init(run_results *r);
void run_results_free(run_results *r);
// Writes results.json atomically (core/afile.h). cfg may be NULL (eval).
// Returns 0 or -1 (message printed, naming the path).
int run_results_write_json(const run_results *r, const train_config *cfg, const char *path);
// A run that died: {"status": "failed", "reason", the rank, host and step,
// the config}, written atomically (what can be written when a fatal error
// stops the job). Returns 0 or -1.
int run_results_write_failed(const char *path, const train_config *cfg, const char *reason, int rank,
                             const char *host, int64_t step);
void run_results_print_summary(const run_results *r, FILE *f);
// The "quality" object's members of results.json (evaluated, accuracy,
// macro_f1, per-class arrays, confusion) into an open dp_json object (a
// dp_json *), for other outputs that report the same metrics (score).
void run_results_quality_json(void *json, const run_results *r);
#endif
