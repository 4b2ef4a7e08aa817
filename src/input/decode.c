// TurboJPEG 2.1 decode with header validation before allocation, DCT scaling,
// grayscale/CMYK handling, and the raw codec. See decode.h.
#include "input/decode.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

struct decoder {
  tjhandle tj;
  uint8_t *buf;     // decoded pixels (grows, never shrinks)
  size_t cap;
  tjscalingfactor *sf;
  int nsf;
};

decoder *decoder_create(void) {
  decoder *d = dp_calloc(1, sizeof(*d), "decoder");
  d->tj = tjInitDecompress();
  PTR_CHECK(d->tj, "tjInitDecompress");
  d->sf = tjGetScalingFactors(&d->nsf);
  PTR_CHECK(d->sf, "tjGetScalingFactors");
  return d;
}

void decoder_destroy(decoder *d) {
  if (!d) return;
  tjDestroy(d->tj);
  free(d->buf);
  free(d);
}

// TurboJPEG 2.1 leaves the libjpeg state mid-header after a failed call, so
// the next image on the same handle fails too ("two SOI markers"). A fresh
// handle after each failure keeps one corrupt record from poisoning the next.
static void decoder_reset(decoder *d) {
  tjDestroy(d->tj);
  d->tj = tjInitDecompress();
  PTR_CHECK(d->tj, "tjInitDecompress");
}

static uint8_t *decoder_reserve(decoder *d, size_t n) {
  if (n > d->cap) {
    free(d->buf);
    d->cap = n + n / 4;   // headroom so slightly larger images do not regrow
    d->buf = dp_malloc(d->cap, "decoder pixel buffer");
  }
  return d->buf;
}

void decoder_prepare(decoder *d, size_t n) {
  if (n <= d->cap) return;
  free(d->buf);
  d->cap = n;
  d->buf = dp_malloc(d->cap, "decoder pixel buffer");
  memset(d->buf, 0, d->cap);
}

int64_t decoder_worst_bytes(const img_header *hdr, int channels) {
  int64_t npx = (int64_t)hdr->w * hdr->h;
  int cmyk = hdr->colorspace == TJCS_CMYK || hdr->colorspace == TJCS_YCCK || hdr->colorspace == DECODE_CS_UNKNOWN;
  return npx * channels + (cmyk ? npx * 4 : 0);
}

int decoder_jpeg_header(decoder *d, const uint8_t *buf, int64_t len, img_header *hdr,
                        dp_err *err) {
  if (len <= 0) {
    dp_err_set(err, DECODE_ERR_EMPTY, "zero-length record");
    return -1;
  }
  if (len > 0x7fffffffLL) {
    dp_err_set(err, DECODE_ERR_HEADER, "record too large for TurboJPEG (%lld bytes)", (long long)len);
    return -1;
  }
  int w = 0, h = 0, ss = 0, cs = 0;
  if (tjDecompressHeader3(d->tj, buf, (unsigned long)len, &w, &h, &ss, &cs) != 0) {
    dp_err_set(err, DECODE_ERR_HEADER, "tjDecompressHeader3: %s", tjGetErrorStr2(d->tj));
    decoder_reset(d);
    return -1;
  }
  if (w <= 0 || h <= 0 || w > DECODE_MAX_SIDE || h > DECODE_MAX_SIDE ||
      (int64_t)w * h > DECODE_MAX_PIXELS) {
    dp_err_set(err, DECODE_ERR_DIMS, "absurd JPEG dimensions %dx%d (max side %d, max %lld px)",
               w, h, DECODE_MAX_SIDE, (long long)DECODE_MAX_PIXELS);
    return -1;
  }
  hdr->w = w;
  hdr->h = h;
  hdr->colorspace = cs;
  hdr->subsamp = ss;
  return 0;
}

void decoder_pick_scale(double crop_w, double crop_h, int need, int *num, int *denom) {
  *num = 1;
  *denom = 1;
  if (crop_w < 2.0 * need || crop_h < 2.0 * need) return;
  int nsf = 0;
  const tjscalingfactor *sf = tjGetScalingFactors(&nsf);
  double best = 1.0;
  for (int i = 0; sf && i < nsf; i++) {
    double f = (double)sf[i].num / sf[i].denom;
    if (f < best && crop_w * f >= need && crop_h * f >= need) {
      best = f;
      *num = sf[i].num;
      *denom = sf[i].denom;
    }
  }
}

static int tj_fail(decoder *d, dp_err *err, const char *what) {
  dp_err_set(err, DECODE_ERR_DATA, "%s: %s", what, tjGetErrorStr2(d->tj));
  decoder_reset(d);
  return -1;
}

int decoder_jpeg_decode(decoder *d, const uint8_t *buf, int64_t len, const img_header *hdr,
                        int channels, int num, int denom, img_view *out, dp_err *err) {
  if (channels != 1 && channels != 3) {
    dp_err_set(err, DECODE_ERR_COLORSPACE, "unsupported output channels %d", channels);
    return -1;
  }
  tjscalingfactor f = {num, denom};
  int sw = TJSCALED(hdr->w, f), sh = TJSCALED(hdr->h, f);
  const int flags = TJFLAG_STOPONWARNING;
  int cmyk = hdr->colorspace == TJCS_CMYK || hdr->colorspace == TJCS_YCCK;
  if (!cmyk) {
    int pf = channels == 3 ? TJPF_RGB : TJPF_GRAY;
    uint8_t *px = decoder_reserve(d, (size_t)sw * sh * channels);
    if (tjDecompress2(d->tj, buf, (unsigned long)len, px, sw, 0, sh, pf, flags) != 0)
      return tj_fail(d, err, "tjDecompress2");
    *out = (img_view){px, sw, sh, channels, (int64_t)sw * channels};
    return 0;
  }
  // libjpeg-turbo cannot convert CMYK/YCCK to RGB itself: decode to CMYK in
  // the back half of the buffer and convert forward into the front half.
  size_t npx = (size_t)sw * sh;
  uint8_t *px = decoder_reserve(d, npx * 4 + npx * channels);
  uint8_t *cm = px + npx * channels;
  if (tjDecompress2(d->tj, buf, (unsigned long)len, cm, sw, 0, sh, TJPF_CMYK, flags) != 0)
    return tj_fail(d, err, "tjDecompress2 (CMYK)");
  for (size_t i = 0; i < npx; i++) {
    const uint8_t *q = cm + 4 * i;
    unsigned k = q[3];
    unsigned r = (q[0] * k + 127) / 255, g = (q[1] * k + 127) / 255, b = (q[2] * k + 127) / 255;
    if (channels == 3) {
      px[3 * i] = (uint8_t)r;
      px[3 * i + 1] = (uint8_t)g;
      px[3 * i + 2] = (uint8_t)b;
    } else {
      px[i] = (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
    }
  }
  *out = (img_view){px, sw, sh, channels, (int64_t)sw * channels};
  return 0;
}

int decoder_raw(decoder *d, const uint8_t *buf, int64_t len, int h, int w, int c,
                int channels, img_view *out, dp_err *err) {
  if (len <= 0) {
    dp_err_set(err, DECODE_ERR_EMPTY, "zero-length record");
    return -1;
  }
  if (h <= 0 || w <= 0 || (c != 1 && c != 3) || (channels != 1 && channels != 3)) {
    dp_err_set(err, DECODE_ERR_RAW, "bad raw shape %dx%dx%d -> %d channels", h, w, c, channels);
    return -1;
  }
  int64_t npx = (int64_t)h * w;
  if (len != npx * c) {
    dp_err_set(err, DECODE_ERR_RAW, "raw record has %lld bytes, shape %dx%dx%d needs %lld",
               (long long)len, h, w, c, (long long)(npx * c));
    return -1;
  }
  if (c == channels) {
    *out = (img_view){buf, w, h, c, (int64_t)w * c};
    return 0;
  }
  uint8_t *px = decoder_reserve(d, (size_t)npx * channels);
  if (c == 1) {   // gray -> RGB
    for (int64_t i = 0; i < npx; i++) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = buf[i];
  } else {        // RGB -> gray (ITU-R 601 luma, as PIL's convert("L"))
    for (int64_t i = 0; i < npx; i++)
      px[i] = (uint8_t)((299 * buf[3 * i] + 587 * buf[3 * i + 1] + 114 * buf[3 * i + 2] + 500) / 1000);
  }
  *out = (img_view){px, w, h, channels, (int64_t)w * channels};
  return 0;
}
