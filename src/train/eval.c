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

void eval_logits_free(eval_logits *e) {
  free(e->logits);
  free(e->labels);
  memset(e, 0, sizeof *e);
}

static void collect_append(eval_logits *e, const float *logits, const int32_t *labels, int64_t n, int C) {
  if (e->n + n > e->cap) {
    int64_t cap = e->cap ? e->cap : 256;
    while (cap < e->n + n) cap *= 2;
    e->logits = dp_realloc(e->logits, (size_t)cap * C * sizeof(float), "eval logits");
    e->labels = dp_realloc(e->labels, (size_t)cap * sizeof(int32_t), "eval labels");
    e->cap = cap;
  }
  memcpy(e->logits + e->n * C, logits, (size_t)n * C * sizeof(float));
  memcpy(e->labels + e->n, labels, (size_t)n * sizeof(int32_t));
  e->n += n;
}

// Every rank ends with all ranks' rows, in rank order.
static void collect_gather(eval_logits *e, dist_ctx *d, int C) {
  if (d->world == 1) return;
  int W = d->world;
  long long mine = e->n;
  long long *ns = dp_malloc(sizeof(long long) * (size_t)W, "eval gather");
  MPI_CHECK(MPI_Allgather(&mine, 1, MPI_LONG_LONG, ns, 1, MPI_LONG_LONG, d->comm), "gathering eval logits");
  int64_t total = 0;
  for (int r = 0; r < W; r++) total += ns[r];
  DP_CHECK(total * C < (int64_t)1 << 31, "gathering eval logits", "val split too large to gather (< 2^31 logits)");
  int *cnt = dp_malloc(sizeof(int) * (size_t)W, "eval gather"), *dis = dp_malloc(sizeof(int) * (size_t)W, "eval gather");
  float *lg = dp_malloc((size_t)(total ? total : 1) * C * sizeof(float), "eval logits");
  int32_t *lb = dp_malloc((size_t)(total ? total : 1) * sizeof(int32_t), "eval labels");
  int64_t at = 0;
  for (int r = 0; r < W; r++) cnt[r] = (int)(ns[r] * C), dis[r] = (int)(at * C), at += ns[r];
  MPI_CHECK(MPI_Allgatherv(e->logits, (int)(e->n * C), MPI_FLOAT, lg, cnt, dis, MPI_FLOAT, d->comm),
            "gathering eval logits");
  at = 0;
  for (int r = 0; r < W; r++) cnt[r] = (int)ns[r], dis[r] = (int)at, at += ns[r];
  MPI_CHECK(MPI_Allgatherv(e->labels, (int)e->n, MPI_INT32_T, lb, cnt, dis, MPI_INT32_T, d->comm),
            "gathering eval labels");
  free(e->logits);
  free(e->labels);
  e->logits = lg;
  e->labels = lb;
  e->n = e->cap = total;
  free(ns);
  free(cnt);
  free(dis);
}

double eval_run(nn_graph *g, loader *l, dist_ctx *d, int num_classes, class_metrics *out) {
  return eval_run_ex(g, l, d, num_classes, out, NULL);
}

double eval_run_ex(nn_graph *g, loader *l, dist_ctx *d, int num_classes, class_metrics *out, const eval_extra *x) {
  train_device *td = train_device_cpu_create(d);
  double s = eval_run_device_ex(g, td, l, d, num_classes, out, x);
  td->destroy(td);
  return s;
}

double eval_run_device(nn_graph *g, train_device *td, loader *l, dist_ctx *d, int num_classes, class_metrics *out) {
  return eval_run_device_ex(g, td, l, d, num_classes, out, NULL);
}

// Copies the rows of b that are real, decoded samples (label >= 0 among the
// first nv) to the front of a scratch batch; returns their count.
static int64_t compact_rows(const loader_batch *b, int64_t nv, int64_t B, int64_t sample_bytes, loader_batch *c,
                            uint8_t *img, int32_t *labels) {
  const uint8_t *src = b->images_u8 ? b->images_u8 : (const uint8_t *)b->images;
  int64_t m = 0;
  for (int64_t i = 0; i < nv; i++) {
    if (b->labels[i] < 0) continue;
    memcpy(img + m * sample_bytes, src + i * sample_bytes, (size_t)sample_bytes);
    labels[m++] = b->labels[i];
  }
  memset(img + m * sample_bytes, 0, (size_t)((B - m) * sample_bytes));
  for (int64_t i = m; i < B; i++) labels[i] = -1;
  *c = *b;
  c->labels = labels;
  c->soft_targets = NULL;
  c->n = m;
  if (b->images_u8) c->images_u8 = img;
  else c->images = (float *)img;
  return m;
}

double eval_run_device_ex(nn_graph *g, train_device *td, loader *l, dist_ctx *d, int num_classes,
                          class_metrics *out, const eval_extra *x) {
  double t0 = dp_now();
  int was_training = g->training;
  nn_graph_set_training(g, 0);
  const int C = num_classes;
  int64_t *cm = dp_calloc((size_t)C * C * 2, sizeof(int64_t), "confusion matrix");   // raw, adjusted
  double sums[4] = {0, 0, 0, 0};   // plain CE sum, objective x rows, rows, excluded
  const float *bias = x ? x->logit_bias : NULL;
  eval_logits *col = x ? x->collect : NULL;
  if (col) {
    eval_logits_free(col);
    col->num_classes = C;
  }
  const int64_t B = g->batch, sb = loader_sample_bytes(l);
  uint8_t *img = dp_aligned_alloc(64, (size_t)(B * sb), "eval compact batch");
  int32_t *lab = dp_malloc((size_t)B * sizeof(int32_t), "eval compact labels");
  float *adj = bias ? dp_malloc((size_t)B * C * sizeof(float), "adjusted logits") : NULL;
  loader_start_epoch(l, 0);
  const int64_t total = loader_total_samples(l);
  const loader_batch *b;
  nn_step st;
  nn_step_init(&st, g);
  while ((b = loader_next_batch(l)) != NULL) {
    int64_t nv = eval_batch_valid(b, B, total, d->rank, d->world);
    if (nv <= 0) continue;
    loader_batch cb;
    int64_t m = compact_rows(b, nv, B, sb, &cb, img, lab);
    sums[3] += (double)(nv - m);
    if (m == 0) continue;
    td->feed(td, g, &st, &cb, m);
    st.soft_targets = NULL;   // eval never mixes
    nn_forward(g, &st);
    const float *logits = td->logits(td, g);   // (N, C), host memory
    // Rows [0, m) are real, decoded samples with their loader labels.
    confusion_add_logits(cm, C, lab, logits, m);
    sums[0] += xent_plain_sum(logits, lab, m, C);
    sums[1] += (double)st.loss * (double)m;
    sums[2] += (double)m;
    if (bias) {
      for (int64_t i = 0; i < m; i++)
        for (int c = 0; c < C; c++) adj[i * C + c] = logits[i * C + c] + bias[c];
      confusion_add_logits(cm + (size_t)C * C, C, lab, adj, m);
    }
    if (col) collect_append(col, logits, lab, m, C);
  }
  dist_allreduce_sum_i64(d, cm, (int64_t)C * C * 2);
  dist_allreduce_sum_f64(d, sums, 4);
  if (col) collect_gather(col, d, C);
  class_metrics_compute(out, cm, C);
  out->loss = sums[2] > 0 ? sums[0] / sums[2] : NAN;
  out->objective = sums[2] > 0 ? sums[1] / sums[2] : NAN;
  out->excluded = (int64_t)sums[3];
  if (bias && x->adjusted) {
    class_metrics_compute(x->adjusted, cm + (size_t)C * C, C);
    x->adjusted->loss = out->loss;
    x->adjusted->excluded = out->excluded;
  }
  free(cm);
  free(img);
  free(lab);
  free(adj);
  nn_graph_set_training(g, was_training);
  return dp_now() - t0;
}

double eval_logit_adjust(nn_graph *g, train_device *td, loader *l, dist_ctx *d, int num_classes,
                         const int64_t *prior_counts, float *bias, class_metrics *raw, class_metrics *adj) {
  double t0 = dp_now();
  const int C = num_classes;
  eval_logits col;
  memset(&col, 0, sizeof col);
  eval_extra x = {NULL, NULL, &col};
  eval_run_device_ex(g, td, l, d, C, raw, &x);
  logit_adjust_tune(col.logits, col.labels, col.n, C, prior_counts, bias);
  int64_t *cm = dp_calloc((size_t)C * C, sizeof(int64_t), "confusion matrix");
  float *row = dp_malloc((size_t)C * sizeof(float), "adjusted logits");
  for (int64_t i = 0; i < col.n; i++) {
    for (int c = 0; c < C; c++) row[c] = col.logits[i * C + c] + bias[c];
    confusion_add_logits(cm, C, col.labels + i, row, 1);
  }
  class_metrics_compute(adj, cm, C);
  adj->loss = raw->loss;
  adj->excluded = raw->excluded;
  free(cm);
  free(row);
  eval_logits_free(&col);
  return dp_now() - t0;
}

// ---- early stopping ----------------------------------------------------------
double early_metric_value(const class_metrics *m, const char *name, int *higher_is_better) {
  if (!strcmp(name, "f1")) {
    *higher_is_better = 1;
    return m->macro_f1;
  }
  *higher_is_better = 0;
  if (!strcmp(name, "loss")) return m->loss;
  if (!strcmp(name, "objective")) return m->objective;
  return NAN;
}

int early_stop_update(double *best, int64_t *best_step, int *evals_since_best, int *stop, double metric,
                      int higher_is_better, int patience, int64_t step) {
  int better = !isnan(metric) && (isnan(*best) || (higher_is_better ? metric > *best : metric < *best));
  if (better) {
    *best = metric;
    *best_step = step;
    *evals_since_best = 0;
    return 1;
  }
  (*evals_since_best)++;
  if (patience > 0 && *evals_since_best >= patience) *stop = 1;
  return 0;
}
