// Fused crop + bilinear resize + flip + jitter + normalise. See augment.h.
// Resampling is separable: each source row the output needs is resampled
// horizontally once (a 2-row cache, since output rows walk the source rows
// monotonically), then two such rows are blended vertically and written with
// the normalisation in the same loop.
#include "input/augment.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

struct aug_scratch {
  int size, channels;
  int32_t *x0, *x1;      // (size) byte offsets of the left/right taps in a source row
  float *xw;             // (size) weight of the right tap
  int32_t *y0, *y1;      // (size) source rows of the top/bottom taps
  float *yw;             // (size)
  float *row[2];         // (size * C) horizontally resampled source rows
  int32_t tag[2];        // source row held by row[k], -1 = none
  float *ps, *pb;        // (size * C) per-element scale/bias pattern for (H, W, C) rows
  float *img;            // (size, size, C) pre-jitter image in [0, 1]
  int avx2;              // the CPU runs the AVX2 horizontal pass
};

void aug_out_init(aug_out *o, int size, int channels, int nchw, int u8, const float mean[3],
                  const float std[3]) {
  o->size = size;
  o->channels = channels;
  o->nchw = nchw;
  o->u8 = u8;
  for (int c = 0; c < 3; c++) {
    float sd = std[c] != 0 ? std[c] : 1.0f;
    o->scale[c] = 1.0f / (255.0f * sd);
    o->bias[c] = -mean[c] / sd;
  }
}

// Python's round() is round-half-even, which nearbyint gives in the default mode.
static int py_round(double x) { return (int)nearbyint(x); }

static void set_crop(aug_params *p, double x0, double y0, double cw, double ch) {
  p->x0 = x0;
  p->y0 = y0;
  p->cw = cw;
  p->ch = ch;
  // torchvision crops first, then resizes the crop: taps clamp at the crop edge.
  p->lo_x = x0;
  p->hi_x = x0 + cw - 1;
  p->lo_y = y0;
  p->hi_y = y0 + ch - 1;
}

void aug_train_params(dp_rng *r, int w, int h, const float scale[2], const float ratio[2],
                      float hflip_p, float jitter, aug_params *p) {
  memset(p, 0, sizeof(*p));
  double area = (double)w * h;
  double lr0 = log(ratio[0]), lr1 = log(ratio[1]);
  int found = 0;
  for (int attempt = 0; attempt < 10 && !found; attempt++) {
    double target = area * dp_rng_range(r, scale[0], scale[1]);
    double aspect = exp(dp_rng_range(r, lr0, lr1));
    int cw = py_round(sqrt(target * aspect));
    int ch = py_round(sqrt(target / aspect));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      int top = (int)dp_rng_below(r, (uint64_t)(h - ch + 1));
      int left = (int)dp_rng_below(r, (uint64_t)(w - cw + 1));
      set_crop(p, left, top, cw, ch);
      found = 1;
    }
  }
  if (!found) {   // fallback: center crop at the nearest allowed ratio
    double in_ratio = (double)w / h;
    int cw = w, ch = h;
    if (in_ratio < ratio[0]) {
      ch = py_round(cw / (double)ratio[0]);
    } else if (in_ratio > ratio[1]) {
      cw = py_round(ch * (double)ratio[1]);
    }
    set_crop(p, (w - cw) / 2, (h - ch) / 2, cw, ch);
  }
  p->flip = dp_rng_uniform(r) < hflip_p;
  p->bright = p->contrast = p->sat = 1.0f;
  if (jitter > 0) {
    double lo = jitter < 1 ? 1.0 - jitter : 0.0, hi = 1.0 + jitter;
    p->bright = (float)dp_rng_range(r, lo, hi);
    p->contrast = (float)dp_rng_range(r, lo, hi);
    p->sat = (float)dp_rng_range(r, lo, hi);
    p->jitter = 1;
  }
}

// Resize(S) geometry: shorter side -> S = int(out / ratio), longer side ->
// int(S * long / short); (sx, sy) = full-image pixels per resized pixel.
static void resize_geometry(int w, int h, int out, float resize_ratio, int *nw, int *nh, double *sx, double *sy) {
  int S = (int)((double)out / resize_ratio);
  if (w <= h) {
    *nw = S;
    *nh = (int)((double)S * h / w);
  } else {
    *nh = S;
    *nw = (int)((double)S * w / h);
  }
  *sx = (double)w / *nw;
  *sy = (double)h / *nh;
}

void aug_native_params(int w, int h, int out, float resize_ratio, int dx, int dy, int flip, aug_params *p) {
  memset(p, 0, sizeof(*p));
  int nw, nh;
  double sx, sy;
  resize_geometry(w, h, out, resize_ratio, &nw, &nh, &sx, &sy);
  p->x0 = dx * sx;
  p->y0 = dy * sy;
  p->cw = out * sx;
  p->ch = out * sy;
  // Resizing the whole image first: taps clamp at the image edge (which is
  // also the edge-replicating padding of a crop that reaches past it).
  p->lo_x = 0;
  p->hi_x = w - 1;
  p->lo_y = 0;
  p->hi_y = h - 1;
  p->flip = flip;
  p->bright = p->contrast = p->sat = 1.0f;
}

void aug_eval_params(int w, int h, int out, float resize_ratio, aug_params *p) {
  int nw, nh;
  double sx, sy;
  resize_geometry(w, h, out, resize_ratio, &nw, &nh, &sx, &sy);
  // CenterCrop(out): top = int(round((nh - out) / 2)).
  aug_native_params(w, h, out, resize_ratio, py_round((nw - out) / 2.0), py_round((nh - out) / 2.0), 0, p);
}

void aug_defects_params(dp_rng *r, int w, int h, int out, float resize_ratio, int pad, float hflip_p,
                        aug_params *p) {
  int nw, nh;
  double sx, sy;
  resize_geometry(w, h, out, resize_ratio, &nw, &nh, &sx, &sy);
  int slack_x = nw - out, slack_y = nh - out;   // >= 0 when resize_ratio <= 1
  int lo_x = slack_x < 0 ? slack_x / 2 : 0, lo_y = slack_y < 0 ? slack_y / 2 : 0;
  int span_x = (slack_x > 0 ? slack_x : 0) + 2 * pad, span_y = (slack_y > 0 ? slack_y : 0) + 2 * pad;
  int dy = lo_y - pad + (int)dp_rng_below(r, (uint64_t)span_y + 1);
  int dx = lo_x - pad + (int)dp_rng_below(r, (uint64_t)span_x + 1);
  int flip = dp_rng_uniform(r) < hflip_p;
  aug_native_params(w, h, out, resize_ratio, dx, dy, flip, p);
}

int aug_policy_parse(const char *name) {
  if (!strcmp(name, "imagenet")) return AUG_POLICY_IMAGENET;
  if (!strcmp(name, "defects")) return AUG_POLICY_DEFECTS;
  return -1;
}

const char *aug_policy_name(int policy) { return policy == AUG_POLICY_DEFECTS ? "defects" : "imagenet"; }

aug_scratch *aug_scratch_create(const aug_out *o) {
  DP_CHECK(o->size > 0 && (o->channels == 1 || o->channels == 3), "aug_scratch_create",
           "output size > 0 and 1 or 3 channels");
  aug_scratch *s = dp_calloc(1, sizeof(*s), "aug scratch");
  size_t n = (size_t)o->size, nc = n * o->channels;
  s->size = o->size;
  s->channels = o->channels;
#if defined(__GNUC__) && defined(__x86_64__) && !defined(AUG_NO_SIMD)
  s->avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  s->x0 = dp_malloc(n * sizeof(int32_t), "aug tables");
  s->x1 = dp_malloc(n * sizeof(int32_t), "aug tables");
  s->y0 = dp_malloc(n * sizeof(int32_t), "aug tables");
  s->y1 = dp_malloc(n * sizeof(int32_t), "aug tables");
  s->xw = dp_malloc(n * sizeof(float), "aug tables");
  s->yw = dp_malloc(n * sizeof(float), "aug tables");
  s->row[0] = dp_aligned_alloc(64, (nc + 4) * sizeof(float), "aug rows");
  s->row[1] = dp_aligned_alloc(64, (nc + 4) * sizeof(float), "aug rows");
  s->ps = dp_aligned_alloc(64, nc * sizeof(float), "aug pattern");
  s->pb = dp_aligned_alloc(64, nc * sizeof(float), "aug pattern");
  s->img = dp_aligned_alloc(64, nc * n * sizeof(float), "aug jitter image");
  for (size_t j = 0; j < n; j++)
    for (int c = 0; c < o->channels; c++) {
      s->ps[j * o->channels + c] = o->scale[c];
      s->pb[j * o->channels + c] = o->bias[c];
    }
  // Touched now, so the memory does not grow with the first jittered sample.
  memset(s->img, 0, nc * n * sizeof(float));
  memset(s->row[0], 0, (nc + 4) * sizeof(float));
  memset(s->row[1], 0, (nc + 4) * sizeof(float));
  return s;
}

int64_t aug_scratch_bytes(const aug_out *o) {
  int64_t n = o->size, nc = n * o->channels;
  return 6 * n * 4 + 2 * (nc + 4) * 4 + 2 * nc * 4 + nc * n * 4;
}

void aug_scratch_destroy(aug_scratch *s) {
  if (!s) return;
  free(s->x0); free(s->x1); free(s->y0); free(s->y1); free(s->xw); free(s->yw);
  free(s->row[0]); free(s->row[1]); free(s->ps); free(s->pb); free(s->img);
  free(s);
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Tap table for one axis: output k samples the crop at u = (k + 0.5) * c / n - 0.5
// (full-image pixels), clamped, then mapped into the decoded (scaled) image.
static void axis_table(int n, double x0, double cw, double lo, double hi, double f, int src_n,
                       int flip, int mul, int32_t *i0, int32_t *i1, float *wt) {
  for (int k = 0; k < n; k++) {
    int kk = flip ? n - 1 - k : k;
    double x = clampd(x0 + (kk + 0.5) * cw / n - 0.5, lo, hi);
    double xs = clampd((x + 0.5) * f - 0.5, 0.0, src_n - 1);
    int a = (int)xs;
    int b = a + 1 < src_n ? a + 1 : a;
    i0[k] = a * mul;
    i1[k] = b * mul;
    wt[k] = (float)(xs - a);
  }
}

#if defined(__SSE2__) && !defined(AUG_NO_SIMD)
#include <emmintrin.h>
// One RGB pixel as 4 lanes (the 4th lane is the next pixel's red, ignored and
// overwritten): a bilinear tap is then one vector lerp, not three scalar ones.
static inline __m128 load_px(const uint8_t *p, __m128i zero) {
  int32_t v;
  memcpy(&v, p, 4);
  __m128i x = _mm_unpacklo_epi8(_mm_cvtsi32_si128(v), zero);
  return _mm_cvtepi32_ps(_mm_unpacklo_epi16(x, zero));
}
#define HAVE_SIMD 1
#endif

#if defined(HAVE_SIMD) && defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
// AVX2 variant, chosen at run time: two output pixels per iteration.
__attribute__((target("avx2,fma"))) static void hrow3_avx2(const aug_scratch *s,
                                                           const uint8_t *src, float *dst,
                                                           const aug_out *norm) {
  const int n = s->size;
  const int32_t *x0 = s->x0, *x1 = s->x1;
  const float *xw = s->xw;
  __m256 sc = _mm256_set1_ps(1.0f), bi = _mm256_setzero_ps();
  if (norm) {
    sc = _mm256_setr_ps(norm->scale[0], norm->scale[1], norm->scale[2], 0, norm->scale[0],
                        norm->scale[1], norm->scale[2], 0);
    bi = _mm256_setr_ps(norm->bias[0], norm->bias[1], norm->bias[2], 0, norm->bias[0],
                        norm->bias[1], norm->bias[2], 0);
  }
  int j = 0;
  for (; j + 1 < n; j += 2) {
    int32_t a0, a1, b0, b1;
    memcpy(&a0, src + x0[j], 4);
    memcpy(&a1, src + x0[j + 1], 4);
    memcpy(&b0, src + x1[j], 4);
    memcpy(&b1, src + x1[j + 1], 4);
    __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, a1, a0)));
    __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, b1, b0)));
    __m256 w = _mm256_setr_m128(_mm_set1_ps(xw[j]), _mm_set1_ps(xw[j + 1]));
    __m256 r = _mm256_fmadd_ps(_mm256_fmadd_ps(w, _mm256_sub_ps(b, a), a), sc, bi);
    _mm_storeu_ps(dst + 3 * j, _mm256_castps256_ps128(r));
    _mm_storeu_ps(dst + 3 * j + 3, _mm256_extractf128_ps(r, 1));
  }
  for (; j < n; j++) {
    const uint8_t *a = src + x0[j], *b = src + x1[j];
    for (int c = 0; c < 3; c++) {
      float v = a[c] + xw[j] * ((float)b[c] - a[c]);
      dst[3 * j + c] = norm ? v * norm->scale[c] + norm->bias[c] : v;
    }
  }
}
// Vertical lerp of two rows into the batch, compiled for AVX2. The batch is
// written with streaming stores when aligned: it is far larger than the
// caches and read later by the consumer, so keeping it out of the cache
// leaves the decoder's working set there.
__attribute__((target("avx2,fma"))) static void vlerp_avx2(float *restrict d,
                                                           const float *restrict r0,
                                                           const float *restrict r1, float w,
                                                           int64_t n) {
  int64_t k = 0;
  if (((uintptr_t)d & 31) == 0) {
    __m256 vw = _mm256_set1_ps(w);
    for (; k + 8 <= n; k += 8) {
      __m256 a = _mm256_loadu_ps(r0 + k), b = _mm256_loadu_ps(r1 + k);
      _mm256_stream_ps(d + k, _mm256_fmadd_ps(vw, _mm256_sub_ps(b, a), a));
    }
  }
  for (; k < n; k++) d[k] = r0[k] + w * (r1[k] - r0[k]);
}
#define HAVE_AVX2_PATH 1
#endif

static void vlerp(const aug_scratch *s, float *restrict d, const float *restrict r0,
                  const float *restrict r1, float w, int64_t n) {
#ifdef HAVE_AVX2_PATH
  if (s->avx2) {
    vlerp_avx2(d, r0, r1, w, n);
    return;
  }
#endif
  int64_t k = 0;
#ifdef HAVE_SIMD
  if (((uintptr_t)d & 15) == 0) {
    __m128 vw = _mm_set1_ps(w);
    for (; k + 4 <= n; k += 4) {
      __m128 a = _mm_loadu_ps(r0 + k), b = _mm_loadu_ps(r1 + k);
      _mm_stream_ps(d + k, _mm_add_ps(a, _mm_mul_ps(vw, _mm_sub_ps(b, a))));
    }
  }
#endif
  for (; k < n; k++) d[k] = r0[k] + w * (r1[k] - r0[k]);
}

// Horizontal pass of one source row into (size * C) floats. `tail_safe`:
// the 4-byte loads may read 1 byte past the row (true unless it is the last
// row of the buffer).
static void hrow(const aug_scratch *s, const uint8_t *src, float *dst, int tail_safe,
                 const aug_out *norm) {
  const int n = s->size;
  const int32_t *x0 = s->x0, *x1 = s->x1;
  const float *xw = s->xw;
  if (s->channels == 3) {
#ifdef HAVE_AVX2_PATH
    if (tail_safe && s->avx2) {
      hrow3_avx2(s, src, dst, norm);
      return;
    }
#endif
#ifdef HAVE_SIMD
    if (tail_safe) {
      const __m128i zero = _mm_setzero_si128();
      if (norm) {
        // Normalising here is exact enough and cheaper: the affine map
        // commutes with the vertical lerp, and there are fewer source rows.
        const __m128 sc = _mm_setr_ps(norm->scale[0], norm->scale[1], norm->scale[2], 0);
        const __m128 bi = _mm_setr_ps(norm->bias[0], norm->bias[1], norm->bias[2], 0);
        for (int j = 0; j < n; j++) {
          __m128 a = load_px(src + x0[j], zero), b = load_px(src + x1[j], zero);
          __m128 r = _mm_add_ps(a, _mm_mul_ps(_mm_set1_ps(xw[j]), _mm_sub_ps(b, a)));
          _mm_storeu_ps(dst + 3 * j, _mm_add_ps(_mm_mul_ps(r, sc), bi));
        }
        return;
      }
      for (int j = 0; j < n; j++) {
        __m128 a = load_px(src + x0[j], zero), b = load_px(src + x1[j], zero);
        __m128 r = _mm_add_ps(a, _mm_mul_ps(_mm_set1_ps(xw[j]), _mm_sub_ps(b, a)));
        _mm_storeu_ps(dst + 3 * j, r);   // row buffers have one float of slack
      }
      return;
    }
#endif
    for (int j = 0; j < n; j++) {
      const uint8_t *a = src + x0[j], *b = src + x1[j];
      float w = xw[j];
      float a0 = a[0], a1 = a[1], a2 = a[2];
      dst[3 * j] = a0 + w * ((float)b[0] - a0);
      dst[3 * j + 1] = a1 + w * ((float)b[1] - a1);
      dst[3 * j + 2] = a2 + w * ((float)b[2] - a2);
    }
  } else {
    for (int j = 0; j < n; j++) {
      float a0 = src[x0[j]];
      dst[j] = a0 + xw[j] * ((float)src[x1[j]] - a0);
    }
  }
  if (norm) {
    const int C = s->channels;
    for (int j = 0; j < n; j++)
      for (int c = 0; c < C; c++) dst[j * C + c] = dst[j * C + c] * norm->scale[c] + norm->bias[c];
  }
}

// Returns the horizontally resampled source row r, computing it into a cache
// slot not holding `keep` if needed.
static const float *cached_row(aug_scratch *s, const img_view *src, int32_t r, int32_t keep,
                               const aug_out *norm) {
  for (int k = 0; k < 2; k++)
    if (s->tag[k] == r) return s->row[k];
  int k = s->tag[0] == keep ? 1 : 0;
  hrow(s, src->pix + (int64_t)r * src->stride, s->row[k], r + 1 < src->h, norm);
  s->tag[k] = r;
  return s->row[k];
}

static float clamp01(float v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

// Brightness, contrast, saturation on a (size, size, C) image in [0, 1].
static void apply_jitter(float *img, int64_t npx, int C, const aug_params *p) {
  int64_t n = npx * C;
  if (p->bright != 1.0f)
    for (int64_t i = 0; i < n; i++) img[i] = clamp01(img[i] * p->bright);
  if (p->contrast != 1.0f) {
    double sum = 0;   // mean of the grayscale image (torchvision adjust_contrast)
    if (C == 3) {
      for (int64_t i = 0; i < npx; i++)
        sum += 0.299f * img[3 * i] + 0.587f * img[3 * i + 1] + 0.114f * img[3 * i + 2];
    } else {
      for (int64_t i = 0; i < npx; i++) sum += img[i];
    }
    float m = (float)(sum / (double)npx), c = p->contrast;
    for (int64_t i = 0; i < n; i++) img[i] = clamp01(c * img[i] + (1 - c) * m);
  }
  if (p->sat != 1.0f && C == 3) {
    float sa = p->sat;
    for (int64_t i = 0; i < npx; i++) {
      float *q = img + 3 * i;
      float g = 0.299f * q[0] + 0.587f * q[1] + 0.114f * q[2];
      q[0] = clamp01(sa * q[0] + (1 - sa) * g);
      q[1] = clamp01(sa * q[1] + (1 - sa) * g);
      q[2] = clamp01(sa * q[2] + (1 - sa) * g);
    }
  }
}

static uint8_t to_u8(float v) {
  return (uint8_t)(v <= 0 ? 0 : (v >= 255 ? 255 : (int)(v + 0.5f)));
}

// Writes one output row given the (size * C) row `v` of [0, 255] values.
static void write_row(const aug_scratch *s, const aug_out *o, const float *v, int i, void *dst) {
  const int n = o->size, C = o->channels;
  const int64_t nc = (int64_t)n * C, plane = (int64_t)n * n;
  if (o->u8) {
    uint8_t *d = dst;
    if (!o->nchw) {
      uint8_t *dr = d + i * nc;
      int64_t k = 0;
#ifdef HAVE_SIMD
      // Same rounding as to_u8: clamp to [0, 255], add 0.5, truncate.
      const __m128 lo = _mm_setzero_ps(), hi = _mm_set1_ps(255.0f), half = _mm_set1_ps(0.5f);
      for (; k + 16 <= nc; k += 16) {
        __m128i q[4];
        for (int u = 0; u < 4; u++) {
          __m128 x = _mm_min_ps(_mm_max_ps(_mm_loadu_ps(v + k + 4 * u), lo), hi);
          q[u] = _mm_cvttps_epi32(_mm_add_ps(x, half));
        }
        __m128i p16a = _mm_packs_epi32(q[0], q[1]), p16b = _mm_packs_epi32(q[2], q[3]);
        _mm_storeu_si128((__m128i *)(dr + k), _mm_packus_epi16(p16a, p16b));
      }
#endif
      for (; k < nc; k++) dr[k] = to_u8(v[k]);
    } else {
      for (int c = 0; c < C; c++)
        for (int j = 0; j < n; j++) d[c * plane + (int64_t)i * n + j] = to_u8(v[j * C + c]);
    }
    return;
  }
  float *d = dst;
  if (!o->nchw) {
    float *dr = d + i * nc;
    const float *ps = s->ps, *pb = s->pb;
    for (int64_t k = 0; k < nc; k++) dr[k] = v[k] * ps[k] + pb[k];
  } else {
    for (int c = 0; c < C; c++) {
      float sc = o->scale[c], bi = o->bias[c];
      float *dr = d + c * plane + (int64_t)i * n;
      for (int j = 0; j < n; j++) dr[j] = v[j * C + c] * sc + bi;
    }
  }
}

void aug_render(const img_view *src, int full_w, int full_h, const aug_params *p,
                const aug_out *o, aug_scratch *s, void *dst) {
  DP_CHECK(src->c == o->channels && s->channels == o->channels && s->size == o->size,
           "aug_render", "decoded channels and scratch must match the output");
  const int n = o->size, C = o->channels;
  double fx = (double)src->w / full_w, fy = (double)src->h / full_h;
  axis_table(n, p->x0, p->cw, p->lo_x, p->hi_x, fx, src->w, p->flip, C, s->x0, s->x1, s->xw);
  axis_table(n, p->y0, p->ch, p->lo_y, p->hi_y, fy, src->h, 0, 1, s->y0, s->y1, s->yw);
  s->tag[0] = s->tag[1] = -1;
  const int64_t nc = (int64_t)n * C;
  if (!p->jitter && !o->u8 && !o->nchw) {
    // Hot path: rows come out of the horizontal pass already normalised, so
    // the vertical pass is a plain lerp straight into the batch.
    for (int i = 0; i < n; i++) {
      const float *r0 = cached_row(s, src, s->y0[i], s->y1[i], o);
      const float *r1 = cached_row(s, src, s->y1[i], s->y0[i], o);
      float w = s->yw[i];
      vlerp(s, (float *)dst + i * nc, r0, r1, w, nc);
    }
#ifdef HAVE_SIMD
    _mm_sfence();   // order the streaming stores before the batch is handed over
#endif
    return;
  }
  if (!p->jitter) {
    float *v = s->img;   // one row of blended values
    for (int i = 0; i < n; i++) {
      const float *r0 = cached_row(s, src, s->y0[i], s->y1[i], NULL);
      const float *r1 = cached_row(s, src, s->y1[i], s->y0[i], NULL);
      float w = s->yw[i];
      for (int64_t k = 0; k < nc; k++) v[k] = r0[k] + w * (r1[k] - r0[k]);
      write_row(s, o, v, i, dst);
    }
    return;
  }
  // Jitter needs the whole image (contrast uses its mean): resample into
  // scratch in [0, 1], adjust, then normalise into dst.
  const float inv = 1.0f / 255.0f;
  for (int i = 0; i < n; i++) {
    const float *r0 = cached_row(s, src, s->y0[i], s->y1[i], NULL);
    const float *r1 = cached_row(s, src, s->y1[i], s->y0[i], NULL);
    float w = s->yw[i];
    float *v = s->img + i * nc;
    for (int64_t k = 0; k < nc; k++) v[k] = (r0[k] + w * (r1[k] - r0[k])) * inv;
  }
  apply_jitter(s->img, (int64_t)n * n, C, p);
  for (int64_t k = 0; k < nc * n; k++) s->img[k] *= 255.0f;
  for (int i = 0; i < n; i++) write_row(s, o, s->img + i * nc, i, dst);
}
