// Minimal decoders for `pack` re-encoding: binary PPM/PGM (P6/P5) and PNG
// (zlib inflate + scanline unfiltering). PNG support: non-interlaced,
// bit depth 8 or 16 (16 keeps the high byte), colour types gray, RGB,
// palette (8-bit), gray+alpha, RGBA; alpha is composited over white.
// Anything else is rejected with a reason so pack can report and skip it.
#include "img_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int bad(char *why, size_t cap, const char *msg) {
  snprintf(why, cap, "%s", msg);
  return -1;
}

// ---- PPM / PGM -------------------------------------------------------------
static int ppm_int(const uint8_t *b, int64_t len, int64_t *pos, int64_t *out) {
  while (*pos < len) {
    if (b[*pos] == '#') {
      while (*pos < len && b[*pos] != '\n') (*pos)++;
    } else if (b[*pos] == ' ' || b[*pos] == '\t' || b[*pos] == '\r' || b[*pos] == '\n') {
      (*pos)++;
    } else {
      break;
    }
  }
  int64_t v = 0, nd = 0;
  while (*pos < len && b[*pos] >= '0' && b[*pos] <= '9' && nd < 9) v = v * 10 + (b[(*pos)++] - '0'), nd++;
  if (nd == 0) return -1;
  *out = v;
  return 0;
}

static int decode_ppm(const uint8_t *b, int64_t len, img_u8 *out, char *why, size_t cap) {
  int c = b[1] == '6' ? 3 : 1;
  int64_t pos = 2, w, h, maxv;
  if (ppm_int(b, len, &pos, &w) || ppm_int(b, len, &pos, &h) || ppm_int(b, len, &pos, &maxv))
    return bad(why, cap, "PPM/PGM header unreadable");
  pos++;   // the single whitespace before the raster
  if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || maxv < 1 || maxv > 65535)
    return bad(why, cap, "PPM/PGM dimensions or maxval out of range");
  int bps = maxv > 255 ? 2 : 1;
  int64_t need = w * h * c * bps;
  if (pos + need > len) return bad(why, cap, "PPM/PGM raster truncated");
  out->w = (int)w, out->h = (int)h, out->c = c;
  out->px = malloc((size_t)(w * h * c));
  if (!out->px) return bad(why, cap, "out of memory");
  for (int64_t i = 0; i < w * h * c; i++) {
    int64_t v = bps == 2 ? (b[pos + 2 * i] << 8) | b[pos + 2 * i + 1] : b[pos + i];
    out->px[i] = (uint8_t)(v * 255 / maxv);
  }
  return 0;
}

// ---- PNG ------------------------------------------------------------------
static int paeth(int a, int b, int c) {
  int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

static int decode_png(const uint8_t *b, int64_t len, img_u8 *out, char *why, size_t cap) {
  int64_t pos = 8, w = 0, h = 0;
  int depth = 0, ctype = -1, interlace = 0, npal = 0;
  uint8_t pal[256 * 3];
  uint8_t *idat = NULL;
  int64_t idat_len = 0, idat_cap = 0;
  int rc = -1;
  uint8_t *raw = NULL;
  while (pos + 12 <= len) {
    uint32_t cl = be32(b + pos);
    const uint8_t *type = b + pos + 4, *data = b + pos + 8;
    if ((int64_t)cl > len - pos - 12) { bad(why, cap, "PNG chunk runs past the end (truncated)"); goto done; }
    if (crc32(crc32(0, type, 4), data, cl) != be32(data + cl)) { bad(why, cap, "PNG chunk CRC mismatch"); goto done; }
    if (!memcmp(type, "IHDR", 4) && cl >= 13) {
      w = be32(data), h = be32(data + 4), depth = data[8], ctype = data[9], interlace = data[12];
    } else if (!memcmp(type, "PLTE", 4)) {
      npal = (int)(cl / 3 > 256 ? 256 : cl / 3);
      memcpy(pal, data, (size_t)npal * 3);
    } else if (!memcmp(type, "IDAT", 4)) {
      if (idat_len + cl > idat_cap) {
        idat_cap = (idat_len + cl) * 2;
        uint8_t *n = realloc(idat, (size_t)idat_cap);
        if (!n) { bad(why, cap, "out of memory"); goto done; }
        idat = n;
      }
      memcpy(idat + idat_len, data, cl);
      idat_len += cl;
    } else if (!memcmp(type, "IEND", 4)) {
      break;
    }
    pos += 12 + cl;
  }
  if (ctype < 0) { bad(why, cap, "PNG without IHDR"); goto done; }
  if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE) { bad(why, cap, "PNG dimensions out of range"); goto done; }
  if (interlace) { bad(why, cap, "interlaced (Adam7) PNG is not supported"); goto done; }
  int chans = ctype == 0 ? 1 : ctype == 2 ? 3 : ctype == 3 ? 1 : ctype == 4 ? 2 : ctype == 6 ? 4 : 0;
  if (!chans) { bad(why, cap, "unknown PNG colour type"); goto done; }
  if (!(depth == 8 || (depth == 16 && ctype != 3))) {
    snprintf(why, cap, "PNG bit depth %d with colour type %d is not supported", depth, ctype);
    goto done;
  }
  if (ctype == 3 && npal == 0) { bad(why, cap, "palette PNG without PLTE"); goto done; }
  int bpp = chans * depth / 8;
  int64_t stride = w * bpp, rawlen = h * (stride + 1);
  raw = malloc((size_t)rawlen);
  if (!raw) { bad(why, cap, "out of memory"); goto done; }
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit(&zs) != Z_OK) { bad(why, cap, "zlib init failed"); goto done; }
  zs.next_in = idat, zs.avail_in = (uInt)idat_len, zs.next_out = raw, zs.avail_out = (uInt)rawlen;
  int zr = inflate(&zs, Z_FINISH);
  int64_t produced = rawlen - zs.avail_out;
  inflateEnd(&zs);
  if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR && zr != Z_OK) || produced != rawlen) {
    bad(why, cap, "PNG image data is truncated or corrupt");
    goto done;
  }
  // Unfilter in place, one scanline at a time.
  for (int64_t y = 0; y < h; y++) {
    uint8_t *line = raw + y * (stride + 1), *cur = line + 1;
    const uint8_t *prev = y ? raw + (y - 1) * (stride + 1) + 1 : NULL;
    int f = line[0];
    for (int64_t i = 0; i < stride; i++) {
      int a = i >= bpp ? cur[i - bpp] : 0, up = prev ? prev[i] : 0, c = prev && i >= bpp ? prev[i - bpp] : 0;
      switch (f) {
        case 0: break;
        case 1: cur[i] = (uint8_t)(cur[i] + a); break;
        case 2: cur[i] = (uint8_t)(cur[i] + up); break;
        case 3: cur[i] = (uint8_t)(cur[i] + ((a + up) >> 1)); break;
        case 4: cur[i] = (uint8_t)(cur[i] + paeth(a, up, c)); break;
        default: bad(why, cap, "PNG scanline with an unknown filter"); goto done;
      }
    }
  }
  int oc = (ctype == 0 || ctype == 4) ? 1 : 3;
  out->w = (int)w, out->h = (int)h, out->c = oc;
  out->px = malloc((size_t)(w * h * oc));
  if (!out->px) { bad(why, cap, "out of memory"); goto done; }
  int step = depth / 8;   // 16-bit: keep the high (first) byte
  for (int64_t y = 0; y < h; y++) {
    const uint8_t *src = raw + y * (stride + 1) + 1;
    uint8_t *dst = out->px + y * w * oc;
    for (int64_t x = 0; x < w; x++) {
      const uint8_t *p = src + x * bpp;
      int v[4];
      for (int k = 0; k < chans; k++) v[k] = p[k * step];
      if (ctype == 3) {
        int ix = v[0] < npal ? v[0] : 0;
        for (int k = 0; k < 3; k++) dst[x * 3 + k] = pal[ix * 3 + k];
      } else if (ctype == 0) {
        dst[x] = (uint8_t)v[0];
      } else if (ctype == 4) {
        dst[x] = (uint8_t)((v[0] * v[1] + 255 * (255 - v[1])) / 255);
      } else if (ctype == 2) {
        for (int k = 0; k < 3; k++) dst[x * 3 + k] = (uint8_t)v[k];
      } else {
        for (int k = 0; k < 3; k++) dst[x * 3 + k] = (uint8_t)((v[k] * v[3] + 255 * (255 - v[3])) / 255);
      }
    }
  }
  rc = 0;
done:
  free(idat);
  free(raw);
  return rc;
}

img_format img_detect(const uint8_t *b, int64_t len) {
  if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return IMG_JPEG;
  if (len >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return IMG_PNG;
  if (len >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return IMG_PNM;
  return IMG_UNKNOWN;
}

int img_decode(const uint8_t *b, int64_t len, img_u8 *out, char *why, size_t cap) {
  memset(out, 0, sizeof *out);
  switch (img_detect(b, len)) {
    case IMG_PNG: return decode_png(b, len, out, why, cap);
    case IMG_PNM: return decode_ppm(b, len, out, why, cap);
    default: return bad(why, cap, "unknown image format (not JPEG, PNG, PPM or PGM)");
  }
}
