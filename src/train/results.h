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
} run_results;

void run_results_init(run_results *r);
void run_results_free(run_results *r);
// Writes results.json. cfg may be NULL (eval). Returns 0 or -1 (message printed).
int run_results_write_json(const run_results *r, const train_config *cfg, const char *path);
void run_results_print_summary(const run_results *r, FILE *f);
#endif
