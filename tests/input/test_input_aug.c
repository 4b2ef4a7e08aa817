// Sampler, decoder and augmentation unit tests:
//  - sampler: DistributedSampler coverage and padding rule;
//  - eval resize + center crop and train crop + resize against a two-step
//    reference (resize the whole image / the crop, then crop) computed here;
//  - RandomResizedCrop parameters within bounds; flip exact;
//  - grayscale / CMYK / progressive JPEGs decode to the right pixels;
//  - DCT scaling picks the right factor and stays close to full decode;
//  - mixup / cutmix soft targets sum to 1.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "input/augment.h"
#include "input/decode.h"
#include "input/mix.h"
#include "input/sampler.h"
#include "input_testutil.h"
#include "testutil.h"

static void test_sampler(void) {
  for (int world = 1; world <= 4; world++)
    for (int dl = 0; dl <= 1; dl++) {
      int64_t total = 37;
      int counts[37] = {0};
      int64_t got = 0;
      for (int r = 0; r < world; r++) {
        sampler s;
        sampler_init(&s, total, r, world, 1, dl, 7);
        sampler_set_epoch(&s, 3);
        for (int64_t k = 0; k < s.per_rank; k++) counts[sampler_get(&s, k)]++, got++;
        sampler_free(&s);
      }
      int64_t expect = dl ? (total / world) * world : ((total + world - 1) / world) * world;
      TU_CHECK(got == expect, "world %d dl %d: %lld samples, want %lld", world, dl,
               (long long)got, (long long)expect);
      int64_t dup = 0, missing = 0;
      for (int i = 0; i < total; i++) {
        if (counts[i] > 1) dup += counts[i] - 1;
        if (counts[i] == 0) missing++;
      }
      if (dl) TU_CHECK(dup == 0 && missing == total - expect, "drop_last: dup %lld", (long long)dup);
      else TU_CHECK(missing == 0 && dup == expect - total, "pad: missing %lld dup %lld",
                    (long long)missing, (long long)dup);
    }
  // Different epochs give different orders; same epoch the same order.
  sampler a, b;
  sampler_init(&a, 100, 0, 1, 1, 0, 5);
  sampler_init(&b, 100, 0, 1, 1, 0, 5);
  sampler_set_epoch(&a, 1);
  sampler_set_epoch(&b, 1);
  TU_CHECK(memcmp(a.perm, b.perm, 100 * sizeof(int64_t)) == 0, "same epoch same perm");
  sampler_set_epoch(&b, 2);
  TU_CHECK(memcmp(a.perm, b.perm, 100 * sizeof(int64_t)) != 0, "epochs differ");
  sampler_free(&a);
  sampler_free(&b);
}

// Bilinear sample (align_corners=False) of channel c at (y, x) of an image of
// size (H, W); coordinates clamped like torch F.interpolate.
static double bil(const uint8_t *p, int W, int H, int C, double y, double x, int c) {
  if (x < 0) x = 0;
  if (y < 0) y = 0;
  int x0 = (int)x, y0 = (int)y;
  if (x0 > W - 1) x0 = W - 1;
  if (y0 > H - 1) y0 = H - 1;
  int x1 = x0 + 1 < W ? x0 + 1 : x0, y1 = y0 + 1 < H ? y0 + 1 : y0;
  double wx = x - x0, wy = y - y0;
  if (x >= W - 1) wx = 0;
  if (y >= H - 1) wy = 0;
  double a = p[((size_t)y0 * W + x0) * C + c], b = p[((size_t)y0 * W + x1) * C + c];
  double d = p[((size_t)y1 * W + x0) * C + c], e = p[((size_t)y1 * W + x1) * C + c];
  return (a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy;
}

static const float MEAN[3] = {0.485f, 0.456f, 0.406f}, STD[3] = {0.229f, 0.224f, 0.225f};

static void test_eval_crop(int W, int H, int nchw) {
  const int C = 3, out = 64;
  uint8_t *img = it_make_image(W, H, C, 11);
  // Reference: Resize(int(64 / 0.875) = 73) of the whole image, then CenterCrop(64).
  int S = 73, nw, nh;
  if (W <= H) { nw = S; nh = (int)((double)S * H / W); } else { nh = S; nw = (int)((double)S * W / H); }
  int top = (int)nearbyint((nh - out) / 2.0), left = (int)nearbyint((nw - out) / 2.0);
  float *ref = malloc(sizeof(float) * out * out * C), *got = malloc(sizeof(float) * out * out * C);
  for (int i = 0; i < out; i++)
    for (int j = 0; j < out; j++)
      for (int c = 0; c < C; c++) {
        double y = (top + i + 0.5) * H / (double)nh - 0.5, x = (left + j + 0.5) * W / (double)nw - 0.5;
        double v = (bil(img, W, H, C, y, x, c) / 255.0 - MEAN[c]) / STD[c];
        size_t e = nchw ? ((size_t)c * out + i) * out + j : ((size_t)i * out + j) * C + c;
        ref[e] = (float)v;
      }
  aug_out o;
  aug_out_init(&o, out, C, nchw, 0, MEAN, STD);
  aug_scratch *s = aug_scratch_create(&o);
  aug_params p;
  aug_eval_params(W, H, out, 0.875f, &p);
  img_view v = {img, W, H, C, (int64_t)W * C};
  aug_render(&v, W, H, &p, &o, s, got);
  char name[64];
  snprintf(name, sizeof name, "eval crop %dx%d %s", W, H, nchw ? "NCHW" : "NHWC");
  TU_CHECK(tu_close(name, got, ref, (int64_t)out * out * C, 1e-5), "eval crop mismatch");
  aug_scratch_destroy(s);
  free(img); free(ref); free(got);
}

// Train crop: crop then resize, taps clamped at the crop edge; flip exact.
static void test_train_crop(void) {
  const int W = 120, H = 90, C = 3, out = 48;
  uint8_t *img = it_make_image(W, H, C, 5);
  aug_out o;
  aug_out_init(&o, out, C, 0, 0, MEAN, STD);
  aug_scratch *s = aug_scratch_create(&o);
  const float sc[2] = {0.08f, 1.0f}, ra[2] = {0.75f, 4.0f / 3.0f};
  int64_t nel = (int64_t)out * out * C;
  float *ref = malloc(sizeof(float) * nel), *got = malloc(sizeof(float) * nel),
        *fl = malloc(sizeof(float) * nel);
  img_view v = {img, W, H, C, (int64_t)W * C};
  for (int t = 0; t < 20; t++) {
    dp_rng r = dp_rng_stream(9, (uint64_t)t);
    aug_params p;
    aug_train_params(&r, W, H, sc, ra, 0.5f, 0.0f, &p);
    p.flip = 0;
    int cw = (int)p.cw, ch = (int)p.ch, x0 = (int)p.x0, y0 = (int)p.y0;
    for (int i = 0; i < out; i++)
      for (int j = 0; j < out; j++)
        for (int c = 0; c < C; c++) {
          double y = (i + 0.5) * ch / (double)out - 0.5, x = (j + 0.5) * cw / (double)out - 0.5;
          // bil() on the crop: shift into the crop's own coordinates.
          if (x < 0) x = 0;
          if (y < 0) y = 0;
          if (x > cw - 1) x = cw - 1;
          if (y > ch - 1) y = ch - 1;
          double val = bil(img, W, H, C, y0 + y, x0 + x, c);
          ref[((size_t)i * out + j) * C + c] = (float)((val / 255.0 - MEAN[c]) / STD[c]);
        }
    aug_render(&v, W, H, &p, &o, s, got);
    TU_CHECK(tu_close("train crop", got, ref, nel, 1e-5), "crop %d", t);
    p.flip = 1;
    aug_render(&v, W, H, &p, &o, s, fl);
    int exact = 1;
    for (int i = 0; i < out; i++)
      for (int j = 0; j < out; j++)
        exact &= memcmp(&fl[((size_t)i * out + j) * C], &got[((size_t)i * out + out - 1 - j) * C],
                        C * sizeof(float)) == 0;
    TU_CHECK(exact, "flip must mirror the unflipped output exactly (t %d)", t);
  }
  aug_scratch_destroy(s);
  free(img); free(ref); free(got); free(fl);
}

static void test_rrc_bounds(void) {
  const float sc[2] = {0.08f, 1.0f}, ra[2] = {0.75f, 4.0f / 3.0f};
  int flips = 0, n = 4000, fallback = 0;
  for (int t = 0; t < n; t++) {
    dp_rng r = dp_rng_stream(3, (uint64_t)t);
    int W = 20 + (int)dp_rng_below(&r, 500), H = 20 + (int)dp_rng_below(&r, 500);
    int extreme = t % 50 == 0;
    if (extreme) H = W * 40;   // no crop of area >= 8 % fits the ratio: fallback
    aug_params p;
    aug_train_params(&r, W, H, sc, ra, 0.5f, 0.4f, &p);
    flips += p.flip;
    TU_CHECK(p.x0 >= 0 && p.y0 >= 0 && p.x0 + p.cw <= W && p.y0 + p.ch <= H && p.cw >= 1 && p.ch >= 1,
             "crop %g,%g %gx%g outside %dx%d", p.x0, p.y0, p.cw, p.ch, W, H);
    // torchvision's fallback: center crop at the nearest allowed ratio.
    double in_ratio = (double)W / H;
    int fw = W, fh = H;
    if (in_ratio < 0.75) fh = (int)nearbyint(W / 0.75);
    else if (in_ratio > 4.0 / 3.0) fw = (int)nearbyint(H * 4.0 / 3.0);
    int is_fb = p.cw == fw && p.ch == fh && p.x0 == (W - fw) / 2 && p.y0 == (H - fh) / 2;
    if (extreme) TU_CHECK(is_fb, "fallback crop %gx%g at %g for %dx%d", p.cw, p.ch, p.y0, W, H);
    if (is_fb && (extreme || (fw * (double)fh) < 0.08 * W * H)) {
      fallback++;
      continue;
    }
    // The crop sides are the rounded sqrt(area * ratio), sqrt(area / ratio):
    // undo the rounding (+-0.5 px) to bound the drawn area and ratio.
    double A = (double)W * H;
    TU_CHECK((p.cw + 0.5) * (p.ch + 0.5) >= 0.08 * A && (p.cw - 0.5) * (p.ch - 0.5) <= A,
             "area of %gx%g outside scale on %dx%d", p.cw, p.ch, W, H);
    TU_CHECK((p.cw + 0.5) / (p.ch - 0.5) >= 0.75 - 1e-9 && (p.cw - 0.5) / (p.ch + 0.5) <= 4.0 / 3.0 + 1e-9,
             "ratio of %gx%g outside bounds", p.cw, p.ch);
    TU_CHECK(p.bright >= 0.6f && p.bright <= 1.4f && p.contrast >= 0.6f && p.sat <= 1.4f,
             "jitter factors out of range");
  }
  TU_CHECK(flips > n * 0.45 && flips < n * 0.55, "flip rate %d / %d", flips, n);
  TU_CHECK(fallback > 0, "the extreme-aspect images should use the fallback");
}

static void test_jitter(void) {
  const int out = 16, C = 3;
  uint8_t img[16 * 16 * 3];
  memset(img, 100, sizeof img);
  aug_out o;
  const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
  aug_out_init(&o, out, C, 0, 1, zero, one);
  aug_scratch *s = aug_scratch_create(&o);
  aug_params p;
  aug_eval_params(out, out, out, 1.0f, &p);
  p.bright = 1.2f; p.contrast = 0.5f; p.sat = 1.7f; p.jitter = 1;
  uint8_t got[16 * 16 * 3];
  img_view v = {img, out, out, C, out * C};
  aug_render(&v, out, out, &p, &o, s, got);
  // Constant gray: brightness -> 120; contrast/saturation keep a flat gray image.
  int ok = 1;
  for (int i = 0; i < out * out * C; i++) ok &= got[i] == 120;
  TU_CHECK(ok, "jitter on flat gray: got %d, want 120", got[0]);
  aug_scratch_destroy(s);
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] - b[i]);
  return s / n;
}

static void test_decode_variants(void) {
  const int W = 96, H = 64;
  decoder *d = decoder_create();
  uint8_t *rgb = it_make_image(W, H, 3, 21);
  img_header hdr;
  img_view v;
  dp_err err;
  // Baseline and progressive decode to ~ the source.
  for (int prog = 0; prog <= 1; prog++) {
    int64_t len;
    uint8_t *j = it_jpeg_encode(rgb, W, H, TJPF_RGB, TJSAMP_444, 95, prog ? TJFLAG_PROGRESSIVE : 0, &len);
    dp_err_clear(&err);
    int rc = decoder_jpeg_header(d, j, len, &hdr, &err) ||
             decoder_jpeg_decode(d, j, len, &hdr, 3, 1, 1, &v, &err);
    TU_CHECK(rc == 0 && v.w == W && v.h == H && v.c == 3, "%s decode: %s", prog ? "progressive" : "baseline", err.msg);
    if (rc == 0) TU_CHECK(mean_abs_diff(v.pix, rgb, (int64_t)W * H * 3) < 2.0, "jpeg fidelity");
    free(j);
  }
  // Grayscale JPEG -> 3 channels (replicated) and -> 1 channel.
  uint8_t *gray = it_make_image(W, H, 1, 4);
  int64_t glen;
  uint8_t *gj = it_jpeg_encode(gray, W, H, TJPF_GRAY, TJSAMP_GRAY, 95, 0, &glen);
  int rc = decoder_jpeg_header(d, gj, glen, &hdr, &err) ||
           decoder_jpeg_decode(d, gj, glen, &hdr, 3, 1, 1, &v, &err);
  TU_CHECK(rc == 0 && v.c == 3, "gray -> rgb: %s", err.msg);
  if (rc == 0) {
    int same = 1;
    double diff = 0;
    for (int i = 0; i < W * H; i++) {
      same &= v.pix[3 * i] == v.pix[3 * i + 1] && v.pix[3 * i] == v.pix[3 * i + 2];
      diff += fabs((double)v.pix[3 * i] - gray[i]);
    }
    TU_CHECK(same && diff / (W * H) < 2.0, "gray replicated to RGB (diff %g)", diff / (W * H));
  }
  rc = decoder_jpeg_decode(d, gj, glen, &hdr, 1, 1, 1, &v, &err);
  TU_CHECK(rc == 0 && v.c == 1 && mean_abs_diff(v.pix, gray, (int64_t)W * H) < 2.0, "gray -> gray");
  // CMYK (Adobe inverted convention): R = C * K / 255.
  uint8_t *cmyk = malloc((size_t)W * H * 4);
  for (int i = 0; i < W * H; i++) {
    int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
    int k = r > g ? (r > b ? r : b) : (g > b ? g : b);
    if (k == 0) k = 1;
    cmyk[4 * i] = (uint8_t)(r * 255 / k);
    cmyk[4 * i + 1] = (uint8_t)(g * 255 / k);
    cmyk[4 * i + 2] = (uint8_t)(b * 255 / k);
    cmyk[4 * i + 3] = (uint8_t)k;
  }
  int64_t clen;
  uint8_t *cj = it_jpeg_encode(cmyk, W, H, TJPF_CMYK, TJSAMP_444, 98, 0, &clen);
  dp_err_clear(&err);
  rc = decoder_jpeg_header(d, cj, clen, &hdr, &err);
  TU_CHECK(rc == 0 && (hdr.colorspace == TJCS_YCCK || hdr.colorspace == TJCS_CMYK), "CMYK header");
  rc = rc || decoder_jpeg_decode(d, cj, clen, &hdr, 3, 1, 1, &v, &err);
  TU_CHECK(rc == 0, "CMYK decode: %s", err.msg);
  if (rc == 0) {
    double md = mean_abs_diff(v.pix, rgb, (int64_t)W * H * 3);
    TU_CHECK(md < 3.0, "CMYK -> RGB mean abs diff %g", md);
  }
  free(cmyk); free(cj); free(gray); free(gj); free(rgb);
  decoder_destroy(d);
}

static void test_dct_scaling(void) {
  const int W = 640, H = 480, out = 100;
  int num, den;
  decoder_pick_scale(639, 479, 224, &num, &den);
  TU_CHECK(num * 2 == den || (double)num / den >= 0.35, "640x480 crop for 224: scale %d/%d", num, den);
  TU_CHECK(639.0 * num / den >= 224 && 479.0 * num / den >= 224, "scaled crop must cover 224");
  decoder_pick_scale(300, 300, 224, &num, &den);
  TU_CHECK(num == 1 && den == 1, "crop < 2x target: no scaling");
  decoder_pick_scale(1000, 900, 100, &num, &den);
  TU_CHECK(num == 1 && den == 8, "1000x900 for 100: want 1/8, got %d/%d", num, den);

  int64_t len;
  uint8_t *j = it_jpeg_make(W, H, 8, 0, &len);
  decoder *d = decoder_create();
  img_header hdr;
  img_view v;
  dp_err err;
  dp_err_clear(&err);
  TU_CHECK(decoder_jpeg_header(d, j, len, &hdr, &err) == 0, "header");
  aug_params p;
  aug_eval_params(W, H, out, 0.875f, &p);
  decoder_pick_scale(p.cw, p.ch, out, &num, &den);
  TU_CHECK(num == 1 && den == 4, "eval 640x480 -> 100: want 1/4, got %d/%d", num, den);
  aug_out o;
  const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
  aug_out_init(&o, out, 3, 0, 1, zero, one);
  aug_scratch *s = aug_scratch_create(&o);
  uint8_t *a = malloc(out * out * 3), *b = malloc(out * out * 3);
  TU_CHECK(decoder_jpeg_decode(d, j, len, &hdr, 3, num, den, &v, &err) == 0, "scaled decode");
  TU_CHECK(v.w == 160 && v.h == 120, "scaled size %dx%d", v.w, v.h);
  aug_render(&v, W, H, &p, &o, s, a);
  TU_CHECK(decoder_jpeg_decode(d, j, len, &hdr, 3, 1, 1, &v, &err) == 0, "full decode");
  aug_render(&v, W, H, &p, &o, s, b);
  double md = mean_abs_diff(a, b, out * out * 3);
  TU_CHECK(md < 3.0, "DCT-scaled vs full decode: mean abs diff %g", md);
  free(a); free(b); free(j);
  aug_scratch_destroy(s);
  decoder_destroy(d);
}

static void test_mix(void) {
  const int B = 7, K = 5, S = 8, C = 3;
  aug_out o;
  aug_out_init(&o, S, C, 0, 0, MEAN, STD);
  float *img = malloc(sizeof(float) * B * S * S * C), *soft = malloc(sizeof(float) * B * K);
  int32_t labels[7] = {0, 1, 2, 3, 4, 0, 1};
  for (int mode = 0; mode < 3; mode++) {
    mix_cfg m = {mode != 1 ? 0.4f : 0, mode >= 1 ? 1.0f : 0, 1.0f, K};
    for (int64_t bi = 0; bi < 20; bi++) {
      for (int i = 0; i < B * S * S * C; i++) img[i] = (float)(i / (S * S * C));   // sample id
      float lam = -1;
      int mixed = mix_batch_apply(&m, &o, 3, 0, bi, img, labels, B, soft, &lam);
      TU_CHECK(mixed == 1, "batch must be mixed with prob 1");
      TU_CHECK(lam >= 0 && lam <= 1, "lambda %g", lam);
      for (int i = 0; i < B; i++) {
        double sum = 0;
        for (int k = 0; k < K; k++) sum += soft[i * K + k];
        TU_CHECK(fabs(sum - 1.0) < 1e-6, "soft targets sum %g (mode %d)", sum, mode);
        // Each image's mean equals lam * own + (1 - lam) * partner (both modes).
        double mean = 0;
        for (int e = 0; e < S * S * C; e++) mean += img[i * S * S * C + e];
        mean /= S * S * C;
        double want = lam * i + (1 - lam) * (B - 1 - i);
        TU_CHECK(fabs(mean - want) < 1e-4, "mixed image mean %g want %g", mean, want);
      }
    }
  }
  mix_cfg off = {0, 0, 1.0f, K};
  TU_CHECK(mix_batch_apply(&off, &o, 3, 0, 0, img, labels, B, soft, NULL) == 0, "off by default");
  free(img); free(soft);
}

int main(void) {
  test_sampler();
  test_eval_crop(300, 260, 0);
  test_eval_crop(200, 333, 1);
  test_eval_crop(64, 64, 0);
  test_train_crop();
  test_rrc_bounds();
  test_jitter();
  test_decode_variants();
  test_dct_scaling();
  test_mix();
  return tu_finish("test_input_aug");
}
