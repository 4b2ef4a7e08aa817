// Host-side logic of the CUDA backend that needs no GPU: the fp16 loss-scaler
// state machine (GradScaler semantics on a scripted overflow sequence), the
// gradient bucket plan, the per-rank device choice, the optimizer segment
// table and the counter-based dropout stream. Runs in every build.
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_plan.h"
#include "backend/cuda/dropout_hash.h"
#include "nn/loss_scaler.h"
#include "testutil.h"

static void test_scaler(void) {
  loss_scaler s;
  loss_scaler_init(&s, 1);
  TU_CHECK(s.scale == 65536.0f, "initial scale %g", s.scale);
  TU_CHECK(loss_scaler_validate(&s) == 0, "fresh state invalid");
  // 1999 clean steps: no growth yet.
  for (int i = 0; i < 1999; i++) TU_CHECK(loss_scaler_update(&s, 0) == 1, "clean step %d skipped", i);
  TU_CHECK(s.scale == 65536.0f && s.growth_tracker == 1999, "scale %g tracker %lld", s.scale,
           (long long)s.growth_tracker);
  // The 2000th clean step grows x2 and resets the tracker.
  TU_CHECK(loss_scaler_update(&s, 0) == 1, "step 2000 skipped");
  TU_CHECK(s.scale == 131072.0f && s.growth_tracker == 0, "after growth: scale %g tracker %lld",
           s.scale, (long long)s.growth_tracker);
  // Overflow: skipped, backoff x0.5, tracker reset.
  for (int i = 0; i < 5; i++) loss_scaler_update(&s, 0);
  TU_CHECK(loss_scaler_update(&s, 1) == 0, "overflow step applied");
  TU_CHECK(s.scale == 65536.0f && s.growth_tracker == 0 && s.steps_skipped == 1,
           "after overflow: scale %g tracker %lld skipped %lld", s.scale, (long long)s.growth_tracker,
           (long long)s.steps_skipped);
  // Scripted sequence: overflow, overflow, 1999 clean, overflow, 2000 clean.
  TU_CHECK(loss_scaler_update(&s, 1) == 0, "overflow 2");
  TU_CHECK(loss_scaler_update(&s, 1) == 0, "overflow 3");
  TU_CHECK(s.scale == 16384.0f, "two backoffs: %g", s.scale);
  for (int i = 0; i < 1999; i++) loss_scaler_update(&s, 0);
  TU_CHECK(s.scale == 16384.0f, "1999 clean after backoff must not grow: %g", s.scale);
  TU_CHECK(loss_scaler_update(&s, 1) == 0, "overflow 4");
  TU_CHECK(s.scale == 8192.0f && s.growth_tracker == 0, "scale %g", s.scale);
  for (int i = 0; i < 2000; i++) loss_scaler_update(&s, 0);
  TU_CHECK(s.scale == 16384.0f, "regrowth: %g", s.scale);
  TU_CHECK(s.steps_skipped == 4 && s.steps_total == 1999 + 1 + 5 + 1 + 2 + 1999 + 1 + 2000,
           "skipped %lld total %lld", (long long)s.steps_skipped, (long long)s.steps_total);
  TU_CHECK(fabsf(loss_scaler_inv_scale(&s) * loss_scaler_scale(&s) - 1.0f) == 0.0f, "inverse");
  // Growth stops short of infinity (torch keeps the old scale).
  loss_scaler big;
  loss_scaler_init(&big, 1);
  big.scale = FLT_MAX / 1.5f;
  big.growth_interval = 1;
  loss_scaler_update(&big, 0);
  TU_CHECK(isfinite(big.scale) && big.scale == FLT_MAX / 1.5f, "scale grew to %g", big.scale);
  // Disabled: scale 1, nothing skipped even on overflow.
  loss_scaler off;
  loss_scaler_init(&off, 0);
  TU_CHECK(loss_scaler_update(&off, 1) == 1 && loss_scaler_scale(&off) == 1.0f, "disabled scaler");
  // A corrupt restored state is rejected.
  loss_scaler bad = s;
  bad.scale = NAN;
  TU_CHECK(loss_scaler_validate(&bad) == -1, "NaN scale accepted");
  bad = s;
  bad.growth_tracker = bad.growth_interval;
  TU_CHECK(loss_scaler_validate(&bad) == -1, "tracker past interval accepted");
}

static void check_plan(int64_t n, int eb, int64_t bucket, int64_t first) {
  int64_t *lo, *hi;
  int nb = cuda_bucket_plan(n, eb, bucket, first, &lo, &hi);
  if (first <= 0) first = bucket;  // the planner's default
  int64_t p = 0;
  for (int b = 0; b < nb; b++) {
    TU_CHECK(lo[b] == p && hi[b] > lo[b], "n=%lld bucket %d [%lld,%lld) not contiguous", (long long)n,
             b, (long long)lo[b], (long long)hi[b]);
    if (b < nb - 1) TU_CHECK(hi[b] % 64 == 0, "boundary %lld not 64-aligned", (long long)hi[b]);
    if (b == 0 && nb > 1) TU_CHECK((hi[0] - lo[0]) * eb <= first + 64 * eb, "first bucket too big");
    if (b > 0 && b < nb - 1)
      TU_CHECK(llabs((hi[b] - lo[b]) * eb - bucket) <= 64 * eb, "bucket %d size %lld", b,
               (long long)(hi[b] - lo[b]));
    p = hi[b];
  }
  TU_CHECK(p == n, "plan covers %lld of %lld", (long long)p, (long long)n);
  free(lo);
  free(hi);
}

static void test_buckets(void) {
  check_plan(25557032, 4, 25 << 20, 1 << 20);   // ResNet-50 parameter count, fp32
  check_plan(25557032, 2, 25 << 20, 1 << 20);   // bf16 on the wire
  check_plan(10, 4, 25 << 20, 1 << 20);
  check_plan(1000003, 4, 1 << 20, 0);
  int64_t *lo, *hi;
  TU_CHECK(cuda_bucket_plan(0, 4, 1 << 20, 0, &lo, &hi) == 0, "empty buffer has buckets");
  free(lo);
  free(hi);
  int nb = cuda_bucket_plan(1 << 20, 4, 1 << 20, 1 << 16, &lo, &hi);
  // 4 MB of fp32: a 64 KB first bucket, then 1 MB ones (3.94 of them).
  TU_CHECK(nb == 5 && hi[0] == 16384 && hi[1] == 16384 + 262144, "first bucket small: nb %d hi0 %lld", nb, (long long)hi[0]);
  free(lo);
  free(hi);
}

static void test_pick_device(void) {
  char msg[256];
  TU_CHECK(cuda_pick_device(0, 4, 4, NULL, msg, sizeof msg) == 0, "%s", msg);
  TU_CHECK(cuda_pick_device(3, 4, 8, NULL, msg, sizeof msg) == 3, "%s", msg);
  TU_CHECK(cuda_pick_device(1, 2, 1, "3", msg, sizeof msg) == 0, "restricted visibility: %s", msg);
  TU_CHECK(cuda_pick_device(5, 8, 4, "0,1,2,3", msg, sizeof msg) == 1, "%s", msg);
  TU_CHECK(cuda_pick_device(1, 2, 1, NULL, msg, sizeof msg) == -1, "shared GPU accepted");
  TU_CHECK(strstr(msg, "2 ranks on this node but only 1 GPU") != NULL, "message: %s", msg);
  TU_CHECK(cuda_pick_device(0, 1, 0, NULL, msg, sizeof msg) == -1, "no device accepted");
  TU_CHECK(strstr(msg, "no CUDA device") != NULL, "message: %s", msg);
  TU_CHECK(cuda_pick_device(0, 1, 0, "", msg, sizeof msg) == -1 && strstr(msg, "CUDA_VISIBLE_DEVICES="),
           "message: %s", msg);
}

static void test_segments(void) {
  // Registration order: conv.weight, bn.weight, bn.bias, fc.weight, fc.bias;
  // offsets are assigned in reverse (fc first), 64-element aligned like
  // nn_graph_finalize: fc.bias [0,10) fc.weight [64,384) bn.bias [384,416)
  // bn.weight [448,480) conv [512,1376).
  nn_param p[5];
  memset(p, 0, sizeof p);
  int64_t numel[5] = {864, 32, 32, 320, 10};
  nn_param_kind kind[5] = {NN_PARAM_WEIGHT, NN_PARAM_NORM, NN_PARAM_NORM, NN_PARAM_WEIGHT, NN_PARAM_BIAS};
  int64_t off = 0;
  for (int i = 4; i >= 0; i--) {
    off = nn_param_align(off);
    p[i].numel = numel[i];
    p[i].kind = kind[i];
    p[i].offset = off;
    p[i].is_head = i >= 3;
    off += numel[i];
  }
  dp_optim_segment s[5];
  int n = cuda_optim_segments(p, 5, NULL, 0.05f, 1, 0.1f, s);
  // fc.bias head nodecay | fc.weight head decay | bn (both, padding between) nodecay 0.1 | conv decay 0.1
  TU_CHECK(n == 4, "segments %d", n);
  if (n == 4) {
    TU_CHECK(s[0].lo == 0 && s[0].hi == 10 && s[0].weight_decay == 0.f && s[0].lr_mult == 1.f && s[0].param0 == 4,
             "seg0");
    TU_CHECK(s[1].lo == 64 && s[1].hi == 384 && s[1].weight_decay == 0.05f && s[1].param0 == 3, "seg1");
    TU_CHECK(s[2].lo == 384 && s[2].hi == 480 && s[2].weight_decay == 0.f && s[2].lr_mult == 0.1f && s[2].param0 == 2,
             "seg2 merged bn across the padding [%lld,%lld)", (long long)s[2].lo, (long long)s[2].hi);
    TU_CHECK(s[3].lo == 512 && s[3].hi == 1376 && s[3].weight_decay == 0.05f, "seg3");
  }
  p[0].frozen = 1;
  n = cuda_optim_segments(p, 5, NULL, 0.05f, 0, 1.0f, s);
  // No per-group differences except frozen conv: [0,480) one segment, conv frozen.
  TU_CHECK(n == 2 && s[0].hi == 480 && s[1].frozen == 1, "with decay everywhere: %d segments", n);
  // Different AdamW step counts (bn unfrozen later than the head) never merge,
  // and each segment's bias corrections come from its own count.
  p[0].frozen = 0;
  int64_t steps[5] = {0, 2, 2, 7, 7};
  n = cuda_optim_segments(p, 5, steps, 0.05f, 0, 1.0f, s);
  TU_CHECK(n == 3 && s[0].hi == 384 && s[1].lo == 384 && s[1].hi == 480 && s[2].lo == 512,
           "split by step count: %d segments", n);
  if (n == 3) {
    cuda_adamw_corrections(s, n, steps, 0.9f, 0.999f);
    TU_CHECK(fabsf(s[0].bc1 - (float)(1 - pow((double)0.9f, 8))) < 1e-7f, "head bc1 %.9g (step 8)", s[0].bc1);
    TU_CHECK(fabsf(s[1].sqrt_bc2 - (float)sqrt(1 - pow((double)0.999f, 3))) < 1e-7f, "bn sqrt(bc2) %.9g (step 3)", s[1].sqrt_bc2);
    TU_CHECK(fabsf(s[2].bc1 - (float)(1 - (double)0.9f)) < 1e-7f, "conv bc1 %.9g (its first step)", s[2].bc1);
  }
  // A gap larger than padding never merges (conv moved 128 elements up).
  p[0].offset += 2 * NN_PARAM_ALIGN;
  n = cuda_optim_segments(p, 5, NULL, 0.05f, 0, 1.0f, s);
  TU_CHECK(n == 2, "non-adjacent tensors merged: %d segments", n);
}

static void test_subbuf_plan(void) {
  // Sub-buffers of one allocation: each on a 256-byte boundary, in order,
  // non-overlapping, the total covering the last one.
  int64_t bytes[5] = {20, 0, 2 * 1001, 256, 7}, off[5];
  int64_t total = cuda_subbuf_plan(bytes, 5, off);
  for (int i = 0; i < 5; i++) {
    TU_CHECK(off[i] % CUDA_SUBBUF_ALIGN == 0, "sub-buffer %d at %lld", i, (long long)off[i]);
    if (i > 0) TU_CHECK(off[i] >= off[i - 1] + bytes[i - 1], "sub-buffer %d overlaps %d", i, i - 1);
  }
  TU_CHECK(off[4] + bytes[4] <= total && total % CUDA_SUBBUF_ALIGN == 0, "total %lld", (long long)total);
  TU_CHECK(off[2] == 256 && off[3] == 256 + 2048 && total == 256 + 2048 + 256 + 256, "offsets %lld %lld total %lld",
           (long long)off[2], (long long)off[3], (long long)total);
}

static void test_dropout_stream(void) {
  const int64_t n = 200000;
  const float p = 0.3f;
  int64_t kept = 0, same = 0;
  for (int64_t i = 0; i < n; i++) {
    int k = dp_dropout_keep(42, 7, (uint64_t)i, p);
    kept += k;
    same += k == dp_dropout_keep(42, 8, (uint64_t)i, p);
    TU_CHECK(k == dp_dropout_keep(42, 7, (uint64_t)i, p), "not reproducible at %lld", (long long)i);
    if (tu_failures > 5) return;
  }
  double frac = (double)kept / (double)n;
  TU_CHECK(fabs(frac - 0.7) < 0.005, "kept fraction %.4f, want 0.7", frac);
  // Independent streams agree on about p^2 + (1-p)^2 = 58 % of elements.
  double agree = (double)same / (double)n;
  TU_CHECK(fabs(agree - 0.58) < 0.01, "streams 7 and 8 agree on %.4f", agree);
  TU_CHECK(dp_dropout_keep(1, 1, 1, 0.0f) == 1, "p=0 dropped an element");
}

static void test_algo_choice(void) {
  // cuDNN order (fastest first): failed, too big, non-deterministic, fits.
  cuda_algo_candidate c[4] = {{0, 0, 1}, {1, 1 << 30, 1}, {1, 1 << 20, 0}, {1, 1 << 22, 1}};
  TU_CHECK(cuda_choose_algo(c, 4, 256 << 20, 0) == 2, "fastest fitting: %d", cuda_choose_algo(c, 4, 256 << 20, 0));
  TU_CHECK(cuda_choose_algo(c, 4, 256 << 20, 1) == 3, "deterministic: %d", cuda_choose_algo(c, 4, 256 << 20, 1));
  TU_CHECK(cuda_choose_algo(c, 4, 2LL << 30, 1) == 1, "bigger workspace allowed: %d", cuda_choose_algo(c, 4, 2LL << 30, 1));
  TU_CHECK(cuda_choose_algo(c, 4, 1 << 10, 0) == -1, "nothing fits 1 KB");
  TU_CHECK(cuda_choose_algo(c, 0, 1 << 30, 0) == -1, "empty list");
}

int main(void) {
  test_algo_choice();
  test_scaler();
  test_buckets();
  test_pick_device();
  test_segments();
  test_subbuf_plan();
  test_dropout_stream();
  return tu_finish("test_scaler");
}
