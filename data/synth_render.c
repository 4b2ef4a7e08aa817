// Cheap procedural renderer for synth product photos. Integer/fixed-point
// math in the pixel loops (Q8 colours, Q16 product coordinates advanced by
// per-pixel increments); trig only once per image.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

static const synth_preset presets[] = {
    {"shopsight5", 5,
     {"ok", "blurry", "wrong_background", "watermark", "duplicate"},
     {DEF_NONE, DEF_BLURRY, DEF_BACKGROUND, DEF_WATERMARK, DEF_DUPLICATE},
     {62, 12, 10, 9, 7},
     0.05},
    {"shoplens12", 12,
     {"good_image", "blurry", "background_issue", "watermark", "low_light", "duplicate",
      "overexposed", "cropped_product", "noisy", "color_cast", "pixelated", "small_product"},
     {DEF_NONE, DEF_BLURRY, DEF_BACKGROUND, DEF_WATERMARK, DEF_LOW_LIGHT, DEF_DUPLICATE,
      DEF_OVEREXPOSED, DEF_CROPPED, DEF_NOISY, DEF_COLOR_CAST, DEF_PIXELATED, DEF_SMALL},
     {41, 9, 7, 6.5, 6, 5, 5, 4.5, 4.5, 4, 4, 3.5},
     0.07},
};

const synth_preset *synth_preset_find(const char *name) {
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
    if (!strcmp(presets[i].name, name)) return &presets[i];
  return NULL;
}

static int irange(dp_rng *r, int lo, int hi) { return lo + (int)dp_rng_below(r, (uint64_t)(hi - lo + 1)); }
static double frange(dp_rng *r, double lo, double hi) { return dp_rng_range(r, lo, hi); }
static int clamp255(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

// Saturated-ish product colour from a hue wheel (no trig: piecewise linear).
static void hue_rgb(int hue, int sat, int val, int out[3]) {
  int h = hue % 360, x = (h % 60) * 255 / 60;
  int r, g, b;
  switch (h / 60) {
    case 0: r = 255, g = x, b = 0; break;
    case 1: r = 255 - x, g = 255, b = 0; break;
    case 2: r = 0, g = 255, b = x; break;
    case 3: r = 0, g = 255 - x, b = 255; break;
    case 4: r = x, g = 0, b = 255; break;
    default: r = 255, g = 0, b = 255 - x; break;
  }
  int c[3] = {r, g, b};
  for (int k = 0; k < 3; k++) out[k] = (val * (255 - sat + c[k] * sat / 255)) / 255;
}

void synth_draw_scene(dp_rng *r, synth_defect def, int size_min, int size_max, synth_scene *sc) {
  memset(sc, 0, sizeof *sc);
  sc->w = irange(r, size_min, size_max);
  sc->h = irange(r, size_min, size_max);
  // Background: studio sweep (light, near-neutral or pastel) or a clean tabletop.
  sc->bg_kind = dp_rng_uniform(r) < 0.75 ? 0 : 1;
  int base = irange(r, 205, 250), tint = irange(r, 0, 359), tsat = irange(r, 0, 40);
  hue_rgb(tint, tsat, base, sc->bg_top);
  int dark = irange(r, 10, 45);
  for (int k = 0; k < 3; k++) sc->bg_bot[k] = clamp255(sc->bg_top[k] - dark);
  hue_rgb(irange(r, 20, 40), irange(r, 90, 170), irange(r, 120, 200), sc->table);
  sc->horizon = (int)(sc->h * frange(r, 0.45, 0.7));
  sc->wood_period = irange(r, 3, 12);
  sc->side_light = irange(r, -60, 60);
  sc->clutter_seed = dp_rng_u64(r);
  // Product: shape family, texture, colours, pose.
  sc->shape = irange(r, 0, SYNTH_NSHAPES - 1);
  sc->texture = irange(r, 0, 4);
  sc->tex_period = irange(r, 2, 7);
  int hue = irange(r, 0, 359);
  hue_rgb(hue, irange(r, 80, 255), irange(r, 70, 235), sc->c1);
  hue_rgb(hue + irange(r, 60, 300), irange(r, 40, 255), irange(r, 60, 250), sc->c2);
  double scale = frange(r, 0.28, 0.42);   // half-size relative to the shorter side
  int side = sc->w < sc->h ? sc->w : sc->h;
  sc->a = side * scale * frange(r, 0.7, 1.0);
  sc->b = side * scale * frange(r, 0.7, 1.0);
  sc->angle = frange(r, -0.5, 0.5);
  sc->cx = sc->w * frange(r, 0.4, 0.6);
  sc->cy = sc->h * frange(r, 0.42, 0.6);
  sc->light_x = irange(r, -90, 90);
  sc->light_y = irange(r, -90, 40);
  sc->shadow = irange(r, 30, 110);
  // Camera: mild exposure / white-balance variation and sensor noise.
  int g = irange(r, 225, 285);
  for (int k = 0; k < 3; k++) sc->gain[k] = g + irange(r, -8, 8);
  sc->noise = irange(r, 1, 5);
  sc->noise_seed = (uint32_t)dp_rng_u32(r) | 1u;
  sc->quality = irange(r, 85, 95);
  sc->blur_passes = 0;
  sc->pixel_block = 1;
  // The defect, with a severity range that starts at subtle.
  switch (def) {
    case DEF_BLURRY:
      sc->blur_radius = irange(r, 1, 5);
      sc->blur_passes = sc->blur_radius == 1 ? irange(r, 1, 2) : irange(r, 2, 3);
      break;
    case DEF_BACKGROUND:
      sc->bg_kind = 2;
      sc->clutter_n = irange(r, 3, 28);
      sc->clutter_alpha = irange(r, 70, 256);
      break;
    case DEF_WATERMARK:
      sc->wm_kind = irange(r, 1, 3);
      sc->wm_word = irange(r, 0, 3);
      sc->wm_scale = sc->wm_kind == 1 ? irange(r, 2, 5) : irange(r, 4, 10);
      sc->wm_alpha = irange(r, 28, 140);
      sc->wm_white = dp_rng_uniform(r) < 0.6;
      sc->wm_x = irange(r, 0, sc->w / 2);
      sc->wm_y = irange(r, 0, sc->h / 2);
      break;
    case DEF_LOW_LIGHT: {
      int gl = irange(r, 60, 160);
      for (int k = 0; k < 3; k++) sc->gain[k] = gl + irange(r, -6, 6);
      sc->noise = irange(r, 4, 12);
      break;
    }
    case DEF_OVEREXPOSED: {
      int gh = irange(r, 330, 560);
      for (int k = 0; k < 3; k++) sc->gain[k] = gh + irange(r, -8, 8);
      break;
    }
    case DEF_CROPPED: {
      // Centre near an edge so 15-50 % of the product is out of frame.
      double out = frange(r, 0.3, 1.0);
      int edge = irange(r, 0, 3);
      if (edge == 0) sc->cx = sc->a * (1.0 - out);
      if (edge == 1) sc->cx = sc->w - sc->a * (1.0 - out);
      if (edge == 2) sc->cy = sc->b * (1.0 - out);
      if (edge == 3) sc->cy = sc->h - sc->b * (1.0 - out);
      sc->a *= 1.15;
      sc->b *= 1.15;
      break;
    }
    case DEF_NOISY: sc->noise = irange(r, 9, 32); break;
    case DEF_COLOR_CAST: {
      int s = irange(r, 22, 80), up = irange(r, 0, 2), down = (up + irange(r, 1, 2)) % 3;
      sc->gain[up] += s;
      sc->gain[down] -= s;
      break;
    }
    case DEF_PIXELATED: sc->pixel_block = irange(r, 2, 8); break;
    case DEF_SMALL: {
      double f = frange(r, 0.25, 0.5);
      sc->a *= f;
      sc->b *= f;
      sc->cx = sc->w * frange(r, 0.25, 0.75);
      sc->cy = sc->h * frange(r, 0.3, 0.75);
      break;
    }
    default: break;
  }
}

// ---- pixel stages -----------------------------------------------------------------
static void render_background(const synth_scene *sc, uint8_t *px) {
  int w = sc->w, h = sc->h;
  for (int y = 0; y < h; y++) {
    uint8_t *row = px + (size_t)y * w * 3;
    int col[3];
    int table = sc->bg_kind == 1 && y >= sc->horizon;
    for (int k = 0; k < 3; k++) {
      if (table) {
        col[k] = sc->table[k] - (sc->table[k] * (h - y) / (4 * h));   // darker far edge
      } else {
        int lim = sc->bg_kind == 1 ? sc->horizon : h;
        col[k] = sc->bg_top[k] + (sc->bg_bot[k] - sc->bg_top[k]) * y / (lim > 1 ? lim : 1);
      }
    }
    // Horizontal light falloff: f(x) = 256 + side_light * (x - w/2) / w, in Q8.
    int f = 256 - sc->side_light / 2, df_num = sc->side_light, acc = 0;
    for (int x = 0; x < w; x++) {
      int ff = f;
      if (table) {
        int t = ((x * 16 + y * 3) / sc->wood_period) & 31;
        ff += (t < 16 ? t : 31 - t) * 2 - 16;   // wood grain stripes
      }
      row[3 * x + 0] = (uint8_t)clamp255(col[0] * ff >> 8);
      row[3 * x + 1] = (uint8_t)clamp255(col[1] * ff >> 8);
      row[3 * x + 2] = (uint8_t)clamp255(col[2] * ff >> 8);
      acc += df_num;
      while (acc >= w) acc -= w, f++;
      while (acc <= -w) acc += w, f--;
    }
  }
}

static uint64_t xs64(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return *s = x;
}

// Busy background: random rectangles and discs in saturated colours.
static void render_clutter(const synth_scene *sc, uint8_t *px) {
  uint64_t s = sc->clutter_seed | 1;
  int w = sc->w, h = sc->h, al = sc->clutter_alpha;
  for (int i = 0; i < sc->clutter_n; i++) {
    int col[3];
    hue_rgb((int)(xs64(&s) % 360), 150 + (int)(xs64(&s) % 106), 80 + (int)(xs64(&s) % 176), col);
    int rw = 10 + (int)(xs64(&s) % (uint64_t)(w / 3)), rh = 10 + (int)(xs64(&s) % (uint64_t)(h / 3));
    int x0 = (int)(xs64(&s) % (uint64_t)w) - rw / 2, y0 = (int)(xs64(&s) % (uint64_t)h) - rh / 2;
    int disc = (int)(xs64(&s) & 1);
    for (int y = y0 < 0 ? 0 : y0; y < y0 + rh && y < h; y++) {
      uint8_t *row = px + (size_t)y * w * 3;
      for (int x = x0 < 0 ? 0 : x0; x < x0 + rw && x < w; x++) {
        if (disc) {
          int dx = 2 * (x - x0) - rw, dy = 2 * (y - y0) - rh;
          if ((int64_t)dx * dx * rh * rh + (int64_t)dy * dy * rw * rw > (int64_t)rw * rw * rh * rh) continue;
        }
        for (int k = 0; k < 3; k++) row[3 * x + k] = (uint8_t)(row[3 * x + k] + ((col[k] - row[3 * x + k]) * al >> 8));
      }
    }
  }
}

static void render_shadow(const synth_scene *sc, uint8_t *px) {
  // Soft elliptical contact shadow below the product.
  double sx = sc->cx + sc->a * 0.1, sy = sc->cy + sc->b * 0.85;
  int ra = (int)(fmax(sc->a, sc->b) * 1.1) + 1, rb = (int)(sc->b * 0.3) + 1;
  int x0 = (int)sx - ra, x1 = (int)sx + ra, y0 = (int)sy - rb, y1 = (int)sy + rb;
  for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < sc->h; y++) {
    uint8_t *row = px + (size_t)y * sc->w * 3;
    int64_t dy = (int64_t)((y - sy) * 65536.0 / rb);
    for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < sc->w; x++) {
      int64_t dx = ((int64_t)(x - (int)sx) * 65536) / ra;
      int64_t d = (dx * dx + dy * dy) >> 16;   // Q16
      if (d >= 65536) continue;
      int f = 256 - (int)(sc->shadow * (65536 - d) >> 16);
      for (int k = 0; k < 3; k++) row[3 * x + k] = (uint8_t)(row[3 * x + k] * f >> 8);
    }
  }
}

#define ONE 65536
// Product silhouettes in normalised coordinates (Q16, unit = half-size).
static int shape_inside(int shape, int32_t u, int32_t v) {
  int64_t uu = (int64_t)u * u >> 16, vv = (int64_t)v * v >> 16;
  int32_t au = u < 0 ? -u : u, av = v < 0 ? -v : v;
  switch (shape) {
    case 0: return uu + vv < ONE;                                   // ball / round item
    case 1: {                                                      // box, rounded corners
      if (au >= ONE || av >= ONE) return 0;
      int32_t c = ONE - ONE / 5;
      if (au <= c || av <= c) return 1;
      int64_t du = au - c, dv = av - c;
      return ((du * du + dv * dv) >> 16) < (int64_t)(ONE / 5) * (ONE / 5) / ONE;
    }
    case 2: {                                                      // bottle: body, shoulder, neck
      if (av >= ONE) return 0;
      int32_t half;
      if (v > -ONE * 35 / 100) half = ONE * 55 / 100;
      else if (v > -ONE * 60 / 100) half = ONE * 22 / 100 + (int32_t)((int64_t)(v + ONE * 60 / 100) * 33 / 25);
      else half = ONE * 22 / 100;
      return au < half;
    }
    case 3: return av < ONE && au < (v + ONE) * 45 / 100;         // cone / lamp
    case 4: return uu + vv < ONE && uu + vv > ONE * 45 / 100;     // ring
    default: {                                                     // mug with a handle
      if (av < ONE * 9 / 10 && u > -ONE * 8 / 10 && u < ONE * 5 / 10) return 1;
      int64_t hu = u - ONE * 5 / 10, hh = (hu * hu >> 16) + (vv * 2);
      return hh < ONE * 16 / 100 && hh > ONE * 5 / 100 && u > ONE * 5 / 10;
    }
  }
}

static void render_product(const synth_scene *sc, uint8_t *px) {
  int w = sc->w, h = sc->h;
  double ca = cos(sc->angle), sa = sin(sc->angle);
  double rad = sqrt(sc->a * sc->a + sc->b * sc->b) + 2;
  int x0 = (int)(sc->cx - rad), x1 = (int)(sc->cx + rad), y0 = (int)(sc->cy - rad), y1 = (int)(sc->cy + rad);
  if (x0 < 0) x0 = 0;
  if (y0 < 0) y0 = 0;
  if (x1 > w - 1) x1 = w - 1;
  if (y1 > h - 1) y1 = h - 1;
  // u = (dx cos + dy sin) / a, v = (-dx sin + dy cos) / b, in Q16.
  int32_t du = (int32_t)(ca / sc->a * ONE), dv = (int32_t)(-sa / sc->b * ONE);
  int per = sc->tex_period;
  for (int y = y0; y <= y1; y++) {
    double dx0 = x0 - sc->cx, dy = y - sc->cy;
    int32_t u = (int32_t)((dx0 * ca + dy * sa) / sc->a * ONE);
    int32_t v = (int32_t)((-dx0 * sa + dy * ca) / sc->b * ONE);
    uint8_t *row = px + (size_t)y * w * 3;
    for (int x = x0; x <= x1; x++, u += du, v += dv) {
      if (!shape_inside(sc->shape, u, v)) continue;
      int use2 = 0, mixq = -1;
      switch (sc->texture) {
        case 1: use2 = ((u * per) >> 16) & 1; break;                                   // stripes
        case 2: use2 = (((u * per) >> 16) ^ ((v * per) >> 16)) & 1; break;             // checker
        case 3: mixq = (v + ONE) >> 9; break;                                           // gradient, Q8
        case 4: {                                                                       // dots
          int32_t fu = ((u * per) & 0xFFFF) - 0x8000, fv = ((v * per) & 0xFFFF) - 0x8000;
          use2 = ((int64_t)fu * fu + (int64_t)fv * fv) < (int64_t)0x5000 * 0x5000;
          break;
        }
        default: break;
      }
      int64_t r2 = ((int64_t)u * u + (int64_t)v * v) >> 16;
      int s = 256 - (int)(((int64_t)u * sc->light_x + (int64_t)v * sc->light_y) >> 16) - (int)(r2 * 60 >> 16);
      if (s < 50) s = 50;
      if (s > 330) s = 330;
      for (int k = 0; k < 3; k++) {
        int c = mixq >= 0 ? (sc->c1[k] * (256 - (mixq > 256 ? 256 : mixq)) + sc->c2[k] * (mixq > 256 ? 256 : mixq)) >> 8
                          : (use2 ? sc->c2[k] : sc->c1[k]);
        row[3 * x + k] = (uint8_t)clamp255(c * s >> 8);
      }
    }
  }
}

// Box blur (radius r) along rows then columns; a few passes approximate a gaussian.
static void blur_pass(uint8_t *px, int w, int h, int r, int32_t *colsum) {
  int n = 2 * r + 1;
  uint8_t line[SYNTH_MAX_SIDE * 3];
  for (int y = 0; y < h; y++) {
    uint8_t *row = px + (size_t)y * w * 3;
    memcpy(line, row, (size_t)w * 3);
    for (int k = 0; k < 3; k++) {
      int sum = 0;
      for (int i = -r; i <= r; i++) sum += line[3 * (i < 0 ? 0 : i >= w ? w - 1 : i) + k];
      for (int x = 0; x < w; x++) {
        row[3 * x + k] = (uint8_t)(sum / n);
        int xa = x + r + 1, xr = x - r;
        sum += line[3 * (xa >= w ? w - 1 : xa) + k] - line[3 * (xr < 0 ? 0 : xr) + k];
      }
    }
  }
  // Columns: running sums over rows of a copy of the row-blurred image.
  size_t rb = (size_t)w * 3;
  uint8_t *src = malloc(rb * (size_t)h);
  if (!src) return;   // out of memory: leave the image row-blurred only
  memcpy(src, px, rb * (size_t)h);
  for (size_t j = 0; j < rb; j++) colsum[j] = 0;
  for (int i = -r; i <= r; i++) {
    const uint8_t *s = src + (size_t)(i < 0 ? 0 : i >= h ? h - 1 : i) * rb;
    for (size_t j = 0; j < rb; j++) colsum[j] += s[j];
  }
  for (int y = 0; y < h; y++) {
    uint8_t *dst = px + (size_t)y * rb;
    for (size_t j = 0; j < rb; j++) dst[j] = (uint8_t)(colsum[j] / n);
    int ya = y + r + 1, yr = y - r;
    const uint8_t *add = src + (size_t)(ya >= h ? h - 1 : ya) * rb;
    const uint8_t *sub = src + (size_t)(yr < 0 ? 0 : yr) * rb;
    for (size_t j = 0; j < rb; j++) colsum[j] += add[j] - sub[j];
  }
  free(src);
}

static void finish_pass(const synth_scene *sc, uint8_t *px) {
  uint32_t s = sc->noise_seed;
  int amp = sc->noise;
  size_t n = (size_t)sc->w * sc->h;
  for (size_t i = 0; i < n; i++) {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    int nz = (((int)(s & 255) + (int)((s >> 8) & 255) - 255) * amp) >> 7;   // triangular noise
    uint8_t *p = px + 3 * i;
    p[0] = (uint8_t)clamp255((p[0] * sc->gain[0] >> 8) + nz);
    p[1] = (uint8_t)clamp255((p[1] * sc->gain[1] >> 8) + nz);
    p[2] = (uint8_t)clamp255((p[2] * sc->gain[2] >> 8) + nz);
  }
}

static void pixelate(uint8_t *px, int w, int h, int k) {
  for (int by = 0; by < h; by += k)
    for (int bx = 0; bx < w; bx += k) {
      int ey = by + k < h ? by + k : h, ex = bx + k < w ? bx + k : w, cnt = (ey - by) * (ex - bx);
      int sum[3] = {0, 0, 0};
      for (int y = by; y < ey; y++)
        for (int x = bx; x < ex; x++)
          for (int c = 0; c < 3; c++) sum[c] += px[((size_t)y * w + x) * 3 + c];
      for (int y = by; y < ey; y++)
        for (int x = bx; x < ex; x++)
          for (int c = 0; c < 3; c++) px[((size_t)y * w + x) * 3 + c] = (uint8_t)(sum[c] / cnt);
    }
}

// 5x7 glyphs, one row per byte (bit 4 = leftmost).
static const char font_chars[] = "SAMPLEHOTCK";
static const uint8_t font_rows[11][7] = {
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}, {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}, {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}, {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}, {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}};
static const char *const wm_words[4] = {"SAMPLE", "SHOP", "STOCK", "PHOTO"};

static void blend_px(uint8_t *p, int target, int alpha) {
  for (int k = 0; k < 3; k++) p[k] = (uint8_t)(p[k] + ((target - p[k]) * alpha >> 8));
}

static void draw_text(uint8_t *px, int w, int h, const char *word, int x0, int y0, int s, int target, int alpha) {
  for (int ci = 0; word[ci]; ci++) {
    const char *f = strchr(font_chars, word[ci]);
    if (!f) continue;
    const uint8_t *g = font_rows[f - font_chars];
    int gx = x0 + ci * 6 * s;
    for (int ry = 0; ry < 7; ry++)
      for (int rx = 0; rx < 5; rx++) {
        if (!(g[ry] & (0x10 >> rx))) continue;
        for (int y = y0 + ry * s; y < y0 + (ry + 1) * s; y++) {
          if (y < 0 || y >= h) continue;
          for (int x = gx + rx * s; x < gx + (rx + 1) * s; x++)
            if (x >= 0 && x < w) blend_px(px + ((size_t)y * w + x) * 3, target, alpha);
        }
      }
  }
}

static void render_watermark(const synth_scene *sc, uint8_t *px) {
  int w = sc->w, h = sc->h, s = sc->wm_scale, tg = sc->wm_white ? 255 : 0, al = sc->wm_alpha;
  const char *word = wm_words[sc->wm_word & 3];
  int tw = (int)strlen(word) * 6 * s, th = 7 * s;
  if (sc->wm_kind == 1) {   // tiled, staggered rows
    int row = 0;
    for (int y = -(sc->wm_y % (th * 3)); y < h; y += th * 3, row++)
      for (int x = -(sc->wm_x % (tw + 8 * s)) - (row & 1) * tw / 2; x < w; x += tw + 8 * s)
        draw_text(px, w, h, word, x, y, s, tg, al);
    return;
  }
  int x0 = (w - tw) / 2, y0 = (h - th) / 2;
  if (sc->wm_kind == 3) {   // logo ring + word in a corner
    s = s / 2 > 1 ? s / 2 : 2;
    tw = (int)strlen(word) * 6 * s;
    th = 7 * s;
    x0 = sc->wm_x % (w - tw > 1 ? w - tw : 1);
    y0 = h - th - 4 - sc->wm_y % (h / 3 > 1 ? h / 3 : 1);
    int cr = th, ccx = x0 - cr - 2 * s, ccy = y0 + th / 2;
    if (ccx < cr) { ccx = cr; x0 = 2 * cr + 2 * s; }
    for (int y = ccy - cr; y <= ccy + cr; y++)
      for (int x = ccx - cr; x <= ccx + cr; x++) {
        int d = (x - ccx) * (x - ccx) + (y - ccy) * (y - ccy);
        if (x < 0 || y < 0 || x >= w || y >= h || d > cr * cr || d < (cr - s) * (cr - s)) continue;
        blend_px(px + ((size_t)y * w + x) * 3, tg, al);
      }
  }
  if (tw > w) s = s * w / (tw + 1) > 1 ? s * w / (tw + 1) : 1;
  draw_text(px, w, h, word, x0, y0, s, tg, al);
}

void synth_render(const synth_scene *sc, uint8_t *px, int32_t *tmp) {
  render_background(sc, px);
  if (sc->bg_kind == 2) render_clutter(sc, px);
  render_shadow(sc, px);
  render_product(sc, px);
  for (int p = 0; p < sc->blur_passes; p++) blur_pass(px, sc->w, sc->h, sc->blur_radius, tmp);
  finish_pass(sc, px);
  if (sc->pixel_block > 1) pixelate(px, sc->w, sc->h, sc->pixel_block);
  if (sc->wm_kind) render_watermark(sc, px);
}
