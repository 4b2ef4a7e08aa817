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
  m->accuracy = m->total ? (double)m->correct / (double)m->total : 0.0;
  m->macro_f1 = present ? f1sum / present : 0.0;
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
