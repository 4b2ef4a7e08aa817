// Unit tests for issue 12: plain cross-entropy from logits (hand values),
// early stopping on the metric it names, the defects augmentation policy
// (the eval resize, then whole-pixel translation: no rescale), the policy
// attribute of shards and its resolution.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"
#include "input/augment.h"
#include "input/loader.h"
#include "input/sampler.h"
#include "input/shard.h"
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

static void render(const img_view *v, const aug_params *p, const aug_out *o, float *dst) {
  aug_scratch *s = aug_scratch_create(o);
  aug_render(v, v->w, v->h, p, o, s, dst);
  aug_scratch_destroy(s);
}

static void test_defects_policy(void) {
  const int W = 90, H = 70, OUT = 32;
  uint8_t *pix = malloc((size_t)W * H * 3 + 4);
  dp_rng r = dp_rng_stream(7, 1);
  for (int i = 0; i < W * H * 3; i++) pix[i] = (uint8_t)dp_rng_u32(&r);
  img_view v = {pix, W, H, 3, (int64_t)W * 3};
  const float mean[3] = {0.5f, 0.5f, 0.5f}, sd[3] = {0.25f, 0.25f, 0.25f};
  aug_out o;
  aug_out_init(&o, OUT, 3, 0, 0, mean, sd);
  size_t n = (size_t)OUT * OUT * 3;
  // Same alignment for both: the row writer takes a streaming-store path only for aligned rows.
  float *a = dp_aligned_alloc(64, n * 4, "test"), *b = dp_aligned_alloc(64, n * 4, "test");
  // Eval = the native-scale crop at the centre: the same operation.
  aug_params pe, pn;
  aug_eval_params(W, H, OUT, 0.875f, &pe);
  int S = (int)(OUT / 0.875), nw = (int)((double)S * W / H);   // 36 x 46 resized
  aug_native_params(W, H, OUT, 0.875f, (int)nearbyint((nw - OUT) / 2.0), (int)nearbyint((S - OUT) / 2.0), 0, &pn);
  TU_CHECK(!memcmp(&pe, &pn, sizeof pe), "eval params == centred native params");
  // Every defects draw keeps eval's scale (crop side in source pixels), never jitters.
  for (int k = 0; k < 200; k++) {
    aug_params pd;
    aug_defects_params(&r, W, H, OUT, 0.875f, 3, 0.5f, &pd);
    if (pd.cw != pe.cw || pd.ch != pe.ch || pd.jitter) {
      TU_CHECK(0, "draw %d: crop %g x %g vs eval %g x %g, jitter %d", k, pd.cw, pd.ch, pe.cw, pe.ch, pd.jitter);
      break;
    }
  }
  // Translation by one resized pixel shifts the output by exactly one column.
  aug_params p0, p1;
  aug_native_params(W, H, OUT, 0.875f, 4, 2, 0, &p0);
  aug_native_params(W, H, OUT, 0.875f, 5, 2, 0, &p1);
  render(&v, &p0, &o, a);
  render(&v, &p1, &o, b);
  double worst = 0;
  for (int y = 0; y < OUT; y++)
    for (int x = 0; x + 1 < OUT; x++)
      for (int c = 0; c < 3; c++) {
        double d = fabs(b[((size_t)y * OUT + x) * 3 + c] - a[((size_t)y * OUT + x + 1) * 3 + c]);
        worst = d > worst ? d : worst;
      }
  TU_CHECK(worst < 1e-4, "one-pixel translation: max difference %g", worst);
  // Eval render == centred native render, bit for bit.
  render(&v, &pe, &o, a);
  render(&v, &pn, &o, b);
  double dm = 0;
  for (size_t i = 0; i < n; i++) dm = fmax(dm, fabs(a[i] - b[i]));
  TU_CHECK(!memcmp(a, b, n * 4), "eval and centred defects crop render identically (max diff %g)", dm);
  free(a);
  free(b);
  free(pix);
}

static void write_shard(const char *path, const char *policy) {
  const char *names[3] = {"ok", "blurry", "watermark"};
  shard_writer_cfg wc = {SHARD_CODEC_RAW, 3, names, 4, 4, 3, policy};
  dp_err err;
  dp_err_clear(&err);
  shard_writer *w = shard_writer_create(path, &wc, &err);
  uint8_t img[48] = {0};
  for (int i = 0; w && i < 3; i++) shard_writer_add(w, img, 48, i, i, NULL, &err);
  TU_CHECK(w && shard_writer_close(w, &err) == 0, "write %s: %s", path, err.msg);
}

static void test_policy_attribute(const char *dir) {
  char with[1024], without[1024], src[256];
  snprintf(with, sizeof with, "%s/quality_policy_defects.h5", dir);
  snprintf(without, sizeof without, "%s/quality_policy_none.h5", dir);
  write_shard(with, "defects");
  write_shard(without, NULL);
  dp_err err;
  dp_err_clear(&err);
  shard *s = shard_open(with, &err);
  TU_CHECK(s && !strcmp(s->augment_policy, "defects"), "attribute read back: '%s'", s ? s->augment_policy : "?");
  if (s) shard_close(s);
  char *p1[1] = {with}, *p0[1] = {without};
  loader_cfg c;
  loader_cfg_defaults(&c);
  c.shards = p1;
  c.nshards = 1;
  TU_CHECK(loader_cfg_set_policy(&c, "auto", "", src, sizeof src, &err) == 0 && c.policy == AUG_POLICY_DEFECTS,
           "auto -> defects from the attribute (%s)", err.msg);
  TU_CHECK(loader_cfg_set_policy(&c, "imagenet", "watermark,0", src, sizeof src, &err) == 0 &&
               c.policy == AUG_POLICY_IMAGENET && c.jitter_by_class && c.jitter_class_ok[0] && !c.jitter_class_ok[1] &&
               c.jitter_class_ok[2],
           "explicit policy wins; jitter classes by name and index");
  TU_CHECK(loader_cfg_set_policy(&c, "auto", "nosuch", src, sizeof src, &err) == -1 && strstr(err.msg, "nosuch"),
           "unknown jitter class named");
  c.shards = p0;
  TU_CHECK(loader_cfg_set_policy(&c, "auto", "", src, sizeof src, &err) == 0 && c.policy == AUG_POLICY_IMAGENET,
           "no attribute -> imagenet");
  TU_CHECK(loader_cfg_set_policy(&c, "fancy", "", src, sizeof src, &err) == -1, "unknown policy refused");
}

// Class-aware sampler: one global sequence per (seed, epoch), rank r takes
// positions r::world, class shares match q_c within 5 binomial SDs.
static void test_sampler_classes(void) {
  const int64_t N = 3000;
  const int K = 3;
  int32_t *lab = malloc(N * sizeof(int32_t));
  for (int64_t i = 0; i < N; i++) lab[i] = i % 10 < 7 ? 0 : (i % 10 < 9 ? 1 : 2);   // 70 / 20 / 10 %
  const double want_bal[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3};
  double sq[3] = {sqrt(2100.0), sqrt(600.0), sqrt(300.0)}, sqs = sq[0] + sq[1] + sq[2];
  const double want_sqrt[3] = {sq[0] / sqs, sq[1] / sqs, sq[2] / sqs};
  for (int mode = SAMPLER_BALANCED; mode <= SAMPLER_SQRT; mode++) {
    const double *want = mode == SAMPLER_BALANCED ? want_bal : want_sqrt;
    sampler g, r0, r1;
    sampler_init(&g, N, 0, 1, 1, 1, 11);
    sampler_init(&r0, N, 0, 2, 1, 1, 11);
    sampler_init(&r1, N, 1, 2, 1, 1, 11);
    sampler_set_classes(&g, mode, lab, K);
    sampler_set_classes(&r0, mode, lab, K);
    sampler_set_classes(&r1, mode, lab, K);
    for (int c = 0; c < K; c++)
      TU_CHECK(near(sampler_class_prob(&g, c), want[c], 1e-12), "mode %d q[%d] %g vs %g", mode, c,
               sampler_class_prob(&g, c), want[c]);
    for (int64_t e = 0; e < 3; e++) {
      sampler_set_epoch(&g, e);
      sampler_set_epoch(&r0, e);
      sampler_set_epoch(&r1, e);
      TU_CHECK(r0.per_rank == N / 2 && r1.per_rank == N / 2, "per-rank share");
      int64_t cnt[3] = {0, 0, 0}, mismatch = 0, repeats = 0;
      char *seen = calloc((size_t)N, 1);
      for (int64_t k = 0; k < N / 2; k++) {
        int64_t a = sampler_get(&r0, k), b = sampler_get(&r1, k);
        mismatch += a != sampler_get(&g, 2 * k) || b != sampler_get(&g, 2 * k + 1);
        cnt[lab[a]]++, cnt[lab[b]]++;
        repeats += seen[a]++ > 0;
        repeats += seen[b]++ > 0;
      }
      free(seen);
      TU_CHECK(mismatch == 0, "mode %d epoch %lld: ranks are not positions r::2 of the global sequence (%lld)", mode,
               (long long)e, (long long)mismatch);
      TU_CHECK(repeats > 0, "with replacement some samples repeat");
      for (int c = 0; c < K; c++) {
        double sd = sqrt(N * want[c] * (1 - want[c]));
        TU_CHECK(fabs(cnt[c] - N * want[c]) < 5 * sd, "mode %d epoch %lld class %d: %lld draws, expected %.0f", mode,
                 (long long)e, c, (long long)cnt[c], N * want[c]);
      }
    }
    // Deterministic from (seed, epoch); epochs differ.
    sampler h;
    sampler_init(&h, N, 0, 1, 1, 1, 11);
    sampler_set_classes(&h, mode, lab, K);
    sampler_set_epoch(&h, 2);
    TU_CHECK(!memcmp(h.perm, g.perm, N * sizeof(int64_t)), "same (seed, epoch), same draws");
    sampler_set_epoch(&h, 1);
    TU_CHECK(memcmp(h.perm, g.perm, N * sizeof(int64_t)) != 0, "another epoch, other draws");
    sampler_free(&g), sampler_free(&r0), sampler_free(&r1), sampler_free(&h);
  }
  free(lab);
}

// Logit adjustment: a model biased towards class 0 on imbalanced data; the
// tuned offsets must not lower macro-F1, should raise it here, and are centred.
static void test_logit_adjust(void) {
  const int64_t N = 600;
  const int C = 3;
  float *lg = malloc(N * C * sizeof(float));
  int32_t *y = malloc(N * sizeof(int32_t));
  dp_rng r = dp_rng_stream(3, 3);
  for (int64_t i = 0; i < N; i++) {
    y[i] = i % 6 < 4 ? 0 : (i % 6 == 4 ? 1 : 2);
    for (int c = 0; c < C; c++) lg[i * C + c] = (float)(dp_rng_normal(&r) + (c == y[i] ? 1.5 : 0.0) + (c == 0 ? 1.2 : 0.0));
  }
  double raw = macro_f1_of_logits(lg, y, N, C, NULL);
  // macro_f1_of_logits agrees with the confusion-matrix path.
  int64_t cm[9] = {0};
  confusion_add_logits(cm, C, y, lg, N);
  class_metrics m;
  class_metrics_compute(&m, cm, C);
  TU_CHECK(near(raw, m.macro_f1, 1e-12), "macro_f1_of_logits %g vs class_metrics %g", raw, m.macro_f1);
  class_metrics_free(&m);
  const int64_t prior[3] = {400, 100, 100};
  float b[3];
  double tuned = logit_adjust_tune(lg, y, N, C, prior, b);
  TU_CHECK(tuned > raw + 0.02, "tuned macro-F1 %g vs raw %g", tuned, raw);
  TU_CHECK(near(macro_f1_of_logits(lg, y, N, C, b), tuned, 1e-12), "returned F1 is that of the offsets");
  TU_CHECK(fabs(b[0] + b[1] + b[2]) < 1e-5 && b[0] < b[1] && b[0] < b[2], "offsets centred, class 0 lowered: %g %g %g",
           b[0], b[1], b[2]);
  free(lg);
  free(y);
}

int main(int argc, char **argv) {
  test_sampler_classes();
  test_logit_adjust();
  test_xent_plain();
  test_early_stop();
  test_defects_policy();
  test_policy_attribute(argc > 1 ? argv[1] : ".");
  return tu_finish("test_quality_unit");
}
