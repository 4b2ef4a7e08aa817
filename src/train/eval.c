#include "train/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/timer.h"
#include "train/device.h"

int64_t eval_batch_valid(const loader_batch *b, int64_t batch, int64_t total, int rank, int world) {
  int64_t own = total > rank ? (total - rank + world - 1) / world : 0;   // real positions of this rank
  int64_t v = own - b->index * batch;
  return v < 0 ? 0 : (v < b->n ? v : b->n);
}

double eval_run(nn_graph *g, loader *l, dist_ctx *d, int num_classes, class_metrics *out) {
  train_device *td = train_device_cpu_create(d);
  double s = eval_run_device(g, td, l, d, num_classes, out);
  td->destroy(td);
  return s;
}

double eval_run_device(nn_graph *g, train_device *td, loader *l, dist_ctx *d, int num_classes, class_metrics *out) {
  double t0 = dp_now();
  int was_training = g->training;
  nn_graph_set_training(g, 0);
  int64_t *cm = dp_calloc((size_t)num_classes * num_classes, sizeof(int64_t), "confusion matrix");
  double sums[2] = {0, 0};   // loss x n, n
  loader_start_epoch(l, 0);
  const int64_t total = loader_total_samples(l);
  const loader_batch *b;
  nn_step st;
  nn_step_init(&st, g);
  while ((b = loader_next_batch(l)) != NULL) {
    int64_t nv = eval_batch_valid(b, g->batch, total, d->rank, d->world);
    if (nv <= 0) continue;
    td->feed(td, g, &st, b, nv);
    st.soft_targets = NULL;   // eval never mixes
    nn_forward(g, &st);
    const float *logits = td->logits(td, g);   // (N, C), host memory
    // Rows [0, nv) are real samples with their loader labels.
    confusion_add_logits(cm, num_classes, b->labels, logits, nv);
    sums[0] += (double)st.loss * (double)nv;
    sums[1] += (double)nv;
  }
  dist_allreduce_sum_i64(d, cm, (int64_t)num_classes * num_classes);
  dist_allreduce_sum_f64(d, sums, 2);
  class_metrics_compute(out, cm, num_classes);
  out->loss = sums[1] > 0 ? sums[0] / sums[1] : NAN;   // no samples: unknown (null)
  free(cm);
  nn_graph_set_training(g, was_training);
  return dp_now() - t0;
}
