// Classification metrics from a confusion matrix (rows = true class,
// columns = predicted class, int64 counts so it can be all-reduced exactly).
//
// Macro-F1 follows sklearn's f1_score(average="macro") with its default
// labels: the mean over the classes that occur in the truth or in the
// predictions; a class with TP = 0 has F1 = 0 (precision/recall of 0/0 are 0).
#ifndef DP_TRAIN_METRICS_H
#define DP_TRAIN_METRICS_H
#include <stdint.h>
#include <stdio.h>

typedef struct {
  int num_classes;
  int64_t total;            // samples counted
  int64_t correct;
  double accuracy;
  double macro_f1;
  double loss;              // mean plain cross-entropy (no smoothing, no class weights,
                            // as torch's CrossEntropyLoss() reports it); filled by the
                            // caller, NAN when unknown
  double objective;         // mean training objective (the graph's loss: smoothing and
                            // class weights included), NAN when unknown
  int64_t excluded;         // records not counted because they failed to decode
  double *precision, *recall, *f1;   // (C)
  int64_t *support;         // (C) true count per class
  int64_t *predicted;       // (C) predicted count per class
  int64_t *confusion;       // (C, C) copy
} class_metrics;

// Adds a batch: labels (n), logits (n, C) row-major; argmax (first max wins).
void confusion_add_logits(int64_t *confusion, int num_classes, const int32_t *labels,
                          const float *logits, int64_t n);
// Sum over n rows of -log softmax(logits)[y] (plain cross-entropy, in double).
double xent_plain_sum(const float *logits, const int32_t *labels, int64_t n, int num_classes);
void class_metrics_compute(class_metrics *m, const int64_t *confusion, int num_classes);
void class_metrics_free(class_metrics *m);
// Macro-F1 of argmax(logits + bias) over n rows (bias may be NULL).
double macro_f1_of_logits(const float *logits, const int32_t *labels, int64_t n, int num_classes, const float *bias);
// Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit
// adjustment", ICLR 2021, applied after training): per-class offsets b added
// to the logits, tuned on (logits, labels) to maximise macro-F1. Starts from
// b_c = -tau * log(prior_c) with tau on a grid in [0, 2], then coordinate
// ascent per class over offsets in [-3, 3] (3 rounds, steps of 0.05); b is
// centred (argmax is unchanged by a common shift). prior: (C) training class
// counts, or NULL (uniform). Returns the tuned macro-F1; bias (C) is written.
double logit_adjust_tune(const float *logits, const int32_t *labels, int64_t n, int num_classes,
                         const int64_t *prior_counts, float *bias);
// Prints accuracy, macro-F1, loss and a per-class P/R/F1/support table.
void class_metrics_print(const class_metrics *m, const char *const *class_names, FILE *f);
#endif
