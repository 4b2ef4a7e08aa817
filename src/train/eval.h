// Distributed evaluation: every rank runs the graph in eval mode over its
// share of the val shards (sampler without shuffle, drop_last = 0; the
// wrap-around samples that even out the ranks are excluded), then the
// int64 confusion matrix and the loss sums are all-reduced, so every rank ends
// with the same metrics. Used by training (each eval) and `dptrain eval`.
//
// What is counted: exactly the records of the split that decoded. The eval
// loader must be created with fill_skipped = 0, so a corrupt record's row
// comes back empty (label -1): it is excluded from the confusion matrix and
// the losses and counted in class_metrics.excluded (a filled row would count
// another record twice).
// Losses: class_metrics.loss is plain cross-entropy of the logits (no label
// smoothing, no class weights: torch's CrossEntropyLoss()(logits, y)), computed
// here from the logits; class_metrics.objective is the graph's own loss (the
// training objective), averaged over the counted rows.
#ifndef DP_TRAIN_EVAL_H
#define DP_TRAIN_EVAL_H
#include "dist/dist.h"
#include "input/loader.h"
#include "nn/graph.h"
#include "train/metrics.h"

typedef struct train_device train_device;

// Rows of an eval batch that are real samples: the loader's positional
// batches put sampler position k = index * B + j in row j, and positions
// with rank + k * world >= total are the sampler's wrap-around padding.
int64_t eval_batch_valid(const loader_batch *b, int64_t batch, int64_t total, int rank, int world);

// Logits and labels of every counted sample, gathered from all ranks (for
// post-hoc logit adjustment). Free with eval_logits_free.
typedef struct {
  float *logits;     // (n, num_classes)
  int32_t *labels;   // (n)
  int64_t n, cap;
  int num_classes;
} eval_logits;
void eval_logits_free(eval_logits *e);

typedef struct {
  const float *logit_bias;   // (C) added to the logits for `adjusted`, or NULL
  class_metrics *adjusted;   // metrics of argmax(logits + bias) when logit_bias is set
  eval_logits *collect;      // when non-NULL: filled with every rank's logits and labels
} eval_extra;

// Returns wall seconds spent. Restores g's training flag afterwards.
// td stages batches and reads logits back on g's device (train/device.h);
// l must produce what td->feed takes (uint8 pixels for a GPU device).
double eval_run_device(nn_graph *g, train_device *td, loader *l, dist_ctx *d, int num_classes, class_metrics *out);
double eval_run_device_ex(nn_graph *g, train_device *td, loader *l, dist_ctx *d, int num_classes,
                          class_metrics *out, const eval_extra *x);
// Same on a CPU graph (used by `dptrain eval`).
double eval_run(nn_graph *g, loader *l, dist_ctx *d, int num_classes, class_metrics *out);
double eval_run_ex(nn_graph *g, loader *l, dist_ctx *d, int num_classes, class_metrics *out, const eval_extra *x);

// Post-hoc logit adjustment on l's split (the validation split): evaluates
// (raw metrics into *raw), gathers every rank's logits, tunes per-class
// offsets for macro-F1 (metrics.h logit_adjust_tune, prior = prior_counts)
// into bias (C), and writes the adjusted metrics into *adj. Every rank ends
// with the same bias. Returns wall seconds.
double eval_logit_adjust(nn_graph *g, train_device *td, loader *l, dist_ctx *d, int num_classes,
                         const int64_t *prior_counts, float *bias, class_metrics *raw, class_metrics *adj);

// ---- early stopping ----------------------------------------------------------
// The value early stopping compares, by --early-metric name: "f1" (val
// macro-F1, higher is better), "loss" (val plain cross-entropy, lower is
// better) or "objective" (val training objective, lower is better).
// Returns NAN for an unknown name.
double early_metric_value(const class_metrics *m, const char *name, int *higher_is_better);
// One evaluation's update: an improvement (or the first finite value) resets
// the count and records the best; otherwise the count grows and *stop is set
// when it reaches patience (> 0). A NaN metric is never an improvement.
// Returns 1 on improvement.
int early_stop_update(double *best, int64_t *best_step, int *evals_since_best, int *stop, double metric,
                      int higher_is_better, int patience, int64_t step);
#endif
