#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

void confusion_add_logits(int64_t *confusion, int num_classes, const int32_t *labels,
                          const float *logits, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float *row = logits + i * num_classes;   // (C)
    int best = 0;
    for (int c = 1; c < num_classes; c++)
      if (row[c] > row[best]) best = c;
    int32_t y = labels[i];
    DP_CHECK(y >= 0 && y < num_classes, "counting predictions", "label out of range: shard and --classes disagree?");
    confusion[(int64_t)y * num_classes + best]++;
  }
}

double xent_plain_sum(const float *logits, const int32_t *labels, int64_t n, int num_classes) {
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    const float *row = logits + i * num_classes;   // (C)
    double mx = row[0];
    for (int c = 1; c < num_classes; c++) mx = row[c] > mx ? row[c] : mx;
    double se = 0;
    for (int c = 0; c < num_classes; c++) se += exp((double)row[c] - mx);
    int32_t y = labels[i];
    DP_CHECK(y >= 0 && y < num_classes, "computing the eval loss", "label out of range: shard and --classes disagree?");
    sum += mx + log(se) - (double)row[y];
  }
  return sum;
}

void class_metrics_compute(class_metrics *m, const int64_t *confusion, int num_classes) {
  memset(m, 0, sizeof *m);
  int C = num_classes;
  m->num_classes = C;
  m->loss = NAN;
  m->objective = NAN;
  m->precision = dp_calloc((size_t)C, sizeof(double), "metrics");
  m->recall = dp_calloc((size_t)C, sizeof(double), "metrics");
  m->f1 = dp_calloc((size_t)C, sizeof(double), "metrics");
  m->support = dp_calloc((size_t)C, sizeof(int64_t), "metrics");
  m->predicted = dp_calloc((size_t)C, sizeof(int64_t), "metrics");
  m->confusion = dp_malloc((size_t)C * C * sizeof(int64_t), "metrics");
  memcpy(m->confusion, confusion, (size_t)C * C * sizeof(int64_t));
  for (int t = 0; t < C; t++)
    for (int p = 0; p < C; p++) {
      int64_t v = confusion[(int64_t)t * C + p];
      m->support[t] += v;
      m->predicted[p] += v;
      m->total += v;
      if (t == p) m->correct += v;
    }
  int present = 0;
  double f1sum = 0;
  for (int c = 0; c < C; c++) {
    int64_t tp = confusion[(int64_t)c * C + c];
    m->precision[c] = m->predicted[c] ? (double)tp / (double)m->predicted[c] : 0.0;
    m->recall[c] = m->support[c] ? (double)tp / (double)m->support[c] : 0.0;
    double pr = m->precision[c] + m->recall[c];
    m->f1[c] = pr > 0 ? 2.0 * m->precision[c] * m->recall[c] / pr : 0.0;
    if (m->support[c] || m->predicted[c]) {
      present++;
      f1sum += m->f1[c];
    }
  }
  // No samples (an empty split): every metric is unknown, written as null
  // (docs/results-schema.md), never a made-up 0.
  if (m->total == 0)
    for (int c = 0; c < C; c++) m->precision[c] = m->recall[c] = m->f1[c] = NAN;
  m->accuracy = m->total ? (double)m->correct / (double)m->total : NAN;
  m->macro_f1 = present ? f1sum / present : NAN;
}

void class_metrics_free(class_metrics *m) {
  free(m->precision);
  free(m->recall);
  free(m->f1);
  free(m->support);
  free(m->predicted);
  free(m->confusion);
  memset(m, 0, sizeof *m);
}

void class_metrics_print(const class_metrics *m, const char *const *class_names, FILE *f) {
  if (m->total == 0) {
    fprintf(f, "no samples evaluated (empty split): metrics are null\n");
    return;
  }
  fprintf(f, "accuracy %.4f  macro-F1 %.4f  loss %.4f", m->accuracy, m->macro_f1, m->loss);
  if (!isnan(m->objective)) fprintf(f, "  (training objective %.4f)", m->objective);
  fprintf(f, "  (%lld samples", (long long)m->total);
  if (m->excluded) fprintf(f, "; %lld corrupt record(s) excluded", (long long)m->excluded);
  fprintf(f, ")\n");
  fprintf(f, "  %-20s %9s %9s %9s %9s\n", "class", "precision", "recall", "f1", "support");
  for (int c = 0; c < m->num_classes; c++) {
    char nm[32];
    if (class_names && class_names[c]) snprintf(nm, sizeof nm, "%s", class_names[c]);
    else snprintf(nm, sizeof nm, "%d", c);
    fprintf(f, "  %-20s %9.4f %9.4f %9.4f %9lld\n", nm, m->precision[c], m->recall[c], m->f1[c],
            (long long)m->support[c]);
  }
}

double macro_f1_of_logits(const float *logits, const int32_t *labels, int64_t n, int num_classes, const float *bias) {
  const int C = num_classes;
  int64_t *tp = dp_calloc((size_t)C * 3, sizeof(int64_t), "f1 counts");   // tp, predicted, support
  for (int64_t i = 0; i < n; i++) {
    const float *row = logits + i * C;
    int best = 0;
    float bv = row[0] + (bias ? bias[0] : 0.0f);
    for (int c = 1; c < C; c++) {
      float v = row[c] + (bias ? bias[c] : 0.0f);
      if (v > bv) bv = v, best = c;
    }
    int32_t y = labels[i];
    if (y < 0 || y >= C) continue;
    tp[best] += best == y;
    tp[C + best]++;
    tp[2 * C + y]++;
  }
  // sklearn's macro average over the classes present in truth or predictions.
  double sum = 0;
  int present = 0;
  for (int c = 0; c < C; c++) {
    if (!tp[C + c] && !tp[2 * C + c]) continue;
    present++;
    double denom = (double)(tp[C + c] + tp[2 * C + c]);
    sum += denom > 0 ? 2.0 * (double)tp[c] / denom : 0.0;   // F1 = 2 TP / (pred + support)
  }
  free(tp);
  return present ? sum / present : 0.0;
}

double logit_adjust_tune(const float *logits, const int32_t *labels, int64_t n, int num_classes,
                         const int64_t *prior_counts, float *bias) {
  const int C = num_classes;
  float *lp = dp_calloc((size_t)C, sizeof(float), "log prior");
  if (prior_counts) {
    double tot = 0;
    for (int c = 0; c < C; c++) tot += (double)prior_counts[c];
    for (int c = 0; c < C; c++)
      lp[c] = prior_counts[c] > 0 && tot > 0 ? (float)log((double)prior_counts[c] / tot) : (float)log(1e-6);
  }
  float *b = dp_calloc((size_t)C, sizeof(float), "logit bias");
  double best = macro_f1_of_logits(logits, labels, n, C, NULL);   // tau = 0: raw argmax
  memset(bias, 0, (size_t)C * sizeof(float));
  for (int k = 1; prior_counts && k <= 40; k++) {
    float tau = 0.05f * (float)k;
    for (int c = 0; c < C; c++) b[c] = -tau * lp[c];
    double f = macro_f1_of_logits(logits, labels, n, C, b);
    if (f > best) best = f, memcpy(bias, b, (size_t)C * sizeof(float));
  }
  memcpy(b, bias, (size_t)C * sizeof(float));
  for (int round = 0; round < 3; round++) {
    int changed = 0;
    for (int c = 0; c < C; c++) {
      float keep = b[c], bestv = b[c];
      for (int k = -60; k <= 60; k++) {
        if (!k) continue;
        b[c] = keep + 0.05f * (float)k;
        double f = macro_f1_of_logits(logits, labels, n, C, b);
        if (f > best + 1e-12) best = f, bestv = b[c], changed = 1;
      }
      b[c] = bestv;
    }
    if (!changed) break;
  }
  double mean = 0;
  for (int c = 0; c < C; c++) mean += b[c] / C;
  for (int c = 0; c < C; c++) bias[c] = b[c] - (float)mean;
  best = macro_f1_of_logits(logits, labels, n, C, bias);   // as applied (after centring)
  free(b);
  free(lp);
  return best;
}
