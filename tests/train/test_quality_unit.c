// Unit tests for issue 12: plain cross-entropy from logits (hand values),
// early stopping on the metric it names.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "train/eval.h"
#include "train/metrics.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

static void test_xent_plain(void) {
  // -log softmax([1, 2, 3])[0] = log(e + e^2 + e^3) - 1; [0]: -log(1/2) for equal logits.
  const float logits[6] = {1, 2, 3, 5, 5, 0};
  const int32_t y[2] = {0, 1};
  double want = (log(exp(1.0) + exp(2.0) + exp(3.0)) - 1.0) + (log(2 * exp(5.0) + 1.0) - 5.0);
  double got = xent_plain_sum(logits, y, 2, 3);
  TU_CHECK(near(got, want, 1e-6), "plain cross-entropy %.9f vs %.9f", got, want);
  // Large logits: no overflow.
  const float big[3] = {1000, 0, -1000};
  const int32_t y0[1] = {0};
  TU_CHECK(near(xent_plain_sum(big, y0, 1, 3), 0.0, 1e-9), "stable for large logits");
}

static void test_early_stop(void) {
  class_metrics m;
  memset(&m, 0, sizeof m);
  int hi;
  m.macro_f1 = 0.5, m.loss = 1.0, m.objective = 2.0;
  TU_CHECK(early_metric_value(&m, "f1", &hi) == 0.5 && hi == 1, "f1 is macro-F1, higher is better");
  TU_CHECK(early_metric_value(&m, "loss", &hi) == 1.0 && hi == 0, "loss is the plain cross-entropy");
  TU_CHECK(early_metric_value(&m, "objective", &hi) == 2.0 && hi == 0, "objective is the training loss");
  TU_CHECK(isnan(early_metric_value(&m, "nope", &hi)), "unknown name");
  // Plain loss improves while the objective gets worse: "loss" must see an improvement.
  double best = NAN;
  int64_t best_step = -1;
  int since = 0, stop = 0;
  double seq_loss[3] = {1.0, 0.9, 0.95}, seq_obj[3] = {2.0, 2.1, 2.2};
  for (int i = 0; i < 3; i++) {
    m.loss = seq_loss[i], m.objective = seq_obj[i];
    early_stop_update(&best, &best_step, &since, &stop, early_metric_value(&m, "loss", &hi), hi, 2, 10 * (i + 1));
  }
  TU_CHECK(best == 0.9 && best_step == 20 && since == 1 && !stop, "loss: best %g at %lld, since %d, stop %d", best,
           (long long)best_step, since, stop);
  best = NAN, best_step = -1, since = 0, stop = 0;
  for (int i = 0; i < 3; i++) {
    m.loss = seq_loss[i], m.objective = seq_obj[i];
    early_stop_update(&best, &best_step, &since, &stop, early_metric_value(&m, "objective", &hi), hi, 2, i);
  }
  TU_CHECK(best == 2.0 && since == 2 && stop, "objective: best %g, since %d, stop %d", best, since, stop);
  // A NaN metric is never an improvement, even first.
  best = NAN, since = 0, stop = 0;
  TU_CHECK(early_stop_update(&best, &best_step, &since, &stop, NAN, 0, 1, 0) == 0 && stop, "NaN is no improvement");
  TU_CHECK(early_stop_update(&best, &best_step, &since, &stop, 3.0, 0, 1, 1) == 1 && best == 3.0, "then a value is");
}

int main(void) {
  test_xent_plain();
  test_early_stop();
  return tu_finish("test_quality_unit");
}
