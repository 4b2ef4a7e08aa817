// Mixup / cutmix on a finished batch. See mix.h.
#include "input/mix.h"

#include <math.h>
#include <string.h>

#include "core/rng.h"

#define MIX_STREAM 0x6d1c00ULL

static float lerp_u8(float lam, uint8_t a, uint8_t b) { return lam * a + (1 - lam) * b; }
static uint8_t round_u8(float v) { return (uint8_t)(v <= 0 ? 0 : (v >= 255 ? 255 : (int)(v + 0.5f))); }

// Pixel (y, x) channel c element offset inside one sample.
static int64_t elem(const aug_out *o, int y, int x, int c) {
  int64_t n = o->size;
  return o->nchw ? ((int64_t)c * n + y) * n + x : ((int64_t)y * n + x) * o->channels + c;
}

static void mixup_pair(const aug_out *o, void *images, int64_t i, int64_t j, float lam) {
  int64_t per = (int64_t)o->size * o->size * o->channels;
  if (o->u8) {
    uint8_t *a = (uint8_t *)images + i * per, *b = (uint8_t *)images + j * per;
    for (int64_t k = 0; k < per; k++) {
      uint8_t va = a[k], vb = b[k];
      a[k] = round_u8(lerp_u8(lam, va, vb));
      b[k] = round_u8(lerp_u8(lam, vb, va));
    }
  } else {
    float *a = (float *)images + i * per, *b = (float *)images + j * per;
    for (int64_t k = 0; k < per; k++) {
      float va = a[k], vb = b[k];
      a[k] = lam * va + (1 - lam) * vb;
      b[k] = lam * vb + (1 - lam) * va;
    }
  }
}

static void cutmix_pair(const aug_out *o, void *images, int64_t i, int64_t j, int y0, int y1,
                        int x0, int x1) {
  int64_t per = (int64_t)o->size * o->size * o->channels;
  size_t es = o->u8 ? 1 : sizeof(float);
  uint8_t *a = (uint8_t *)images + i * per * es, *b = (uint8_t *)images + j * per * es;
  for (int c = 0; c < o->channels; c++)
    for (int y = y0; y < y1; y++)
      for (int x = x0; x < x1; x++) {
        int64_t e = elem(o, y, x, c) * (int64_t)es;
        uint8_t t[sizeof(float)];
        memcpy(t, a + e, es);
        memcpy(a + e, b + e, es);
        memcpy(b + e, t, es);
      }
}

int mix_batch_apply(const mix_cfg *m, const aug_out *o, uint64_t seed, int64_t epoch,
                    int64_t batch_index, void *images, const int32_t *labels, int64_t n,
                    float *soft, float *lam_out) {
  if (!mix_enabled(m) || n <= 0) return 0;
  dp_rng r = dp_rng_stream3(seed ^ MIX_STREAM, (uint64_t)epoch, (uint64_t)batch_index);
  if (dp_rng_uniform(&r) >= m->prob) return 0;
  int cutmix = m->cutmix_alpha > 0 && (m->mixup_alpha <= 0 || dp_rng_uniform(&r) < 0.5);
  float alpha = cutmix ? m->cutmix_alpha : m->mixup_alpha;
  float lam = (float)dp_rng_beta(&r, alpha, alpha);
  if (cutmix) {
    // Box of side sqrt(1 - lam) * size around a uniform centre, clipped;
    // lambda is then corrected to the kept area.
    int S = o->size;
    double cut = sqrt(1.0 - lam);
    int ch = (int)(S * cut), cw = (int)(S * cut);
    int cy = (int)dp_rng_below(&r, (uint64_t)S), cx = (int)dp_rng_below(&r, (uint64_t)S);
    int y0 = cy - ch / 2, y1 = cy + ch / 2, x0 = cx - cw / 2, x1 = cx + cw / 2;
    y0 = y0 < 0 ? 0 : y0; x0 = x0 < 0 ? 0 : x0;
    y1 = y1 > S ? S : y1; x1 = x1 > S ? S : x1;
    for (int64_t i = 0; i < n / 2; i++) cutmix_pair(o, images, i, n - 1 - i, y0, y1, x0, x1);
    lam = 1.0f - (float)((double)(y1 - y0) * (x1 - x0) / ((double)S * S));
  } else {
    for (int64_t i = 0; i < n / 2; i++) mixup_pair(o, images, i, n - 1 - i, lam);
  }
  int K = m->num_classes;
  memset(soft, 0, (size_t)n * K * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    int32_t ya = labels[i], yb = labels[n - 1 - i];
    if (ya >= 0 && ya < K) soft[i * K + ya] += lam;
    if (yb >= 0 && yb < K) soft[i * K + yb] += 1.0f - lam;
  }
  if (lam_out) *lam_out = lam;
  return 1;
}
