// Unit tests of the study arithmetic: macro-F1 from a known confusion matrix
// (hand-computed), efficiency, cost, projection, MFU, the hardware table, the
// JSON reader and the config parser.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/cost.h"
#include "core/jsonread.h"
#include "testutil.h"
#include "train/config.h"
#include "train/metrics.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

static void test_f1(void) {
  // rows = true, cols = predicted
  //          p0 p1 p2
  // t0:       5  1  0     support 6
  // t1:       2  3  1     support 6
  // t2:       0  0  4     support 4
  const int64_t cm[9] = {5, 1, 0, 2, 3, 1, 0, 0, 4};
  class_metrics m;
  class_metrics_compute(&m, cm, 3);
  // Hand computation: predicted counts 7, 4, 5.
  // P = 5/7, 3/4, 4/5;  R = 5/6, 3/6, 4/4.
  double P[3] = {5.0 / 7, 3.0 / 4, 4.0 / 5}, R[3] = {5.0 / 6, 0.5, 1.0};
  double f1sum = 0;
  for (int c = 0; c < 3; c++) {
    double f = 2 * P[c] * R[c] / (P[c] + R[c]);
    f1sum += f;
    TU_CHECK(near(m.precision[c], P[c], 1e-12), "precision[%d] %g vs %g", c, m.precision[c], P[c]);
    TU_CHECK(near(m.recall[c], R[c], 1e-12), "recall[%d]", c);
    TU_CHECK(near(m.f1[c], f, 1e-12), "f1[%d] %g vs %g", c, m.f1[c], f);
  }
  // f1 = 0.769231, 0.6, 0.888889 -> macro 0.752707
  TU_CHECK(near(m.macro_f1, f1sum / 3, 1e-12), "macro %g", m.macro_f1);
  TU_CHECK(near(m.macro_f1, 0.7527065527, 1e-8), "macro literal %.10f", m.macro_f1);
  TU_CHECK(near(m.accuracy, 12.0 / 16, 1e-12), "accuracy %g", m.accuracy);
  TU_CHECK(m.support[2] == 4 && m.total == 16, "support");
  class_metrics_free(&m);

  // A class absent from truth and predictions is excluded (sklearn default labels).
  const int64_t cm2[9] = {3, 1, 0, 1, 3, 0, 0, 0, 0};
  class_metrics_compute(&m, cm2, 3);
  TU_CHECK(near(m.macro_f1, 0.75, 1e-12), "macro with absent class %g", m.macro_f1);
  class_metrics_free(&m);

  // argmax counting
  int64_t cm3[4] = {0};
  const float logits[6] = {0.1f, 0.9f, 2.0f, -1.0f, 0.5f, 0.5f};
  const int32_t labels[3] = {1, 1, 0};
  confusion_add_logits(cm3, 2, labels, logits, 3);
  TU_CHECK(cm3[3] == 1 && cm3[2] == 1 && cm3[0] == 1, "confusion from logits");
}

static void test_cost(void) {
  // 2 ranks at 190 img/s vs one rank at 100 img/s -> 95 %.
  TU_CHECK(near(scaling_efficiency(190, 2, 100), 0.95, 1e-12), "efficiency");
  TU_CHECK(isnan(scaling_efficiency(190, 2, 0)), "efficiency without baseline is NaN");
  TU_CHECK(near(comm_hidden_fraction(0.25, 1.0), 0.75, 1e-12), "hidden fraction");
  TU_CHECK(isnan(comm_hidden_fraction(0, 0)), "hidden fraction without comm");
  // 4 ranks x 1800 s x $2.5/h = $5.
  TU_CHECK(near(run_cost_usd(4, 1800, 2.5), 5.0, 1e-12), "run cost");
  // 1.2M images x 30 epochs at 1000 img/s = 36000 s = 10 h; 8 ranks x 10 h x $3 = $240.
  TU_CHECK(near(projected_time_s(1200000, 30, 1000), 36000, 1e-12), "projected time");
  TU_CHECK(near(projected_cost_usd(8, 1200000, 30, 1000, 3.0), 240.0, 1e-12), "projected cost");
  // ResNet-50 4.1 GFLOP fwd/img, 2470 img/s on one A100 at 312 TF bf16 -> 3*4.1e9*2470/312e12.
  double m = mfu(4100000000LL, 2470, 1, 312e12);
  TU_CHECK(near(m, 3 * 4.1e9 * 2470 / 312e12, 1e-12) && near(m, 0.097375, 1e-4), "mfu %g", m);
  TU_CHECK(near(mfu(1000000, 100, 2, 1e9), 0.15, 1e-12), "mfu 2 ranks");
}

static void test_hw_table(void) {
  hw_table t;
  char err[256];
  int rc = hw_table_load(&t, hw_table_default_path(), err, sizeof err);
  TU_CHECK(rc == 0, "load table: %s", err);
  if (rc) return;
  const hw_entry *a = hw_table_find(&t, "a100-sxm4-80gb");
  TU_CHECK(a && near(a->peak_bf16, 312e12, 1e-9) && near(a->peak_fp32, 19.5e12, 1e-9), "A100 peaks");
  const hw_entry *h = hw_table_find(&t, "h100-sxm5-80gb");
  TU_CHECK(h && near(h->peak_fp32, 67e12, 1e-9), "H100 peak");
  const hw_entry *c = hw_table_find(&t, "cpu-core-avx512");
  TU_CHECK(c && near(hw_rank_peak(c, "fp32", 2), 2 * 0.1664e12, 1e-9), "per-core scaling");
  TU_CHECK(c && near(hw_rank_price(c, 2), 0.08, 1e-9), "per-core price");
  TU_CHECK(hw_table_find(&t, "nope") == NULL, "unknown row");
  hw_table_free(&t);
}

static void test_json_reader(void) {
  const char *s = "{\"a\": 1.5, \"b\": {\"c\": [1, 2, {\"d\": \"x\\\"y\"}], \"e\": null, \"t\": true},"
                  " \"n\": -2e3}";
  char err[256];
  jv *v = jv_parse(s, strlen(s), err, sizeof err);
  TU_CHECK(v != NULL, "parse: %s", err);
  if (!v) return;
  TU_CHECK(jv_num(v, "a", 0) == 1.5, "a");
  TU_CHECK(jv_num(v, "n", 0) == -2000, "n");
  TU_CHECK(isnan(jv_num(v, "b.e", NAN)), "null -> default");
  TU_CHECK(jv_num(v, "b.t", 0) == 1, "bool");
  const jv *arr = jv_path(v, "b.c");
  TU_CHECK(arr && arr->type == JV_ARR && arr->n == 3, "array");
  if (arr && arr->n == 3) TU_CHECK(!strcmp(jv_str(&arr->items[2], "d", ""), "x\"y"), "escaped string");
  jv_free(v);
  TU_CHECK(jv_parse("{\"a\": }", 7, err, sizeof err) == NULL, "syntax error detected");
}

static void test_config(void) {
  train_config c;
  train_config_defaults(&c);
  char path[512];
  snprintf(path, sizeof path, "%s/train_unit_cfg.ini", tu_fixture_dir());
  FILE *f = fopen(path, "w");
  TU_CHECK(f != NULL, "open %s", path);
  if (!f) return;
  fprintf(f, "# comment\nmodel = resnet18\nbatch = 7\nlr = 0.5  # peak\nclass_weights = auto\ntrain = \"a/*.h5\"\n");
  fclose(f);
  char *argv[] = {"train", "--config", path, "--batch", "9", "--small-stem", "--epochs=3"};
  int rc = train_config_parse(&c, 7, argv);
  TU_CHECK(rc == 0, "parse rc %d", rc);
  TU_CHECK(!strcmp(c.model, "resnet18") && c.batch == 9 && c.epochs == 3, "flags override file");
  TU_CHECK(c.small_stem == 1, "bare on/off flag");
  TU_CHECK(fabsf(c.lr - 0.5f) < 1e-7f && !strcmp(c.class_weights, "auto") && !strcmp(c.train, "a/*.h5"),
           "file values");
  TU_CHECK(train_config_set(&c, "no-such", "1") == -1, "unknown key rejected");
  TU_CHECK(train_config_set(&c, "batch", "x1") == -1, "bad int rejected");
  c.batch = 0;
  TU_CHECK(train_config_check(&c) == -1, "batch < 1 rejected");
  c.batch = 4;
  snprintf(c.model, sizeof c.model, "nonexistent");
  TU_CHECK(train_config_check(&c) == -1, "unknown model rejected");
}

int main(void) {
  test_f1();
  test_cost();
  test_hw_table();
  test_json_reader();
  test_config();
  return tu_finish("test_train_unit");
}
