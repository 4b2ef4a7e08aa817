// make_seeds DIR: writes the seed corpus of every fuzz target into
// DIR/<target>/ (safetensors, config, csv, decode, shard). Valid inputs of
// each kind, written by the project's own writers where it has one, plus a
// few near-misses, so mutation starts from every code path.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <zlib.h>

#include "core/check.h"
#include "core/safetensors.h"
#include "fuzz_model.h"
#include "input/shard.h"
#include "train/weights.h"

static char g_dir[900];

static void put(const char *target, const char *name, const void *data, size_t n) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", g_dir, target);
  mkdir(path, 0775);
  snprintf(path, sizeof path, "%s/%s/%s", g_dir, target, name);
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) DP_FATAL("writing a seed", "", "%s", path);
}

static void put_str(const char *target, const char *name, const char *s) { put(target, name, s, strlen(s)); }

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) DP_FATAL("reading a seed", "", "%s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = dp_malloc((size_t)len + 1, "seed");
  if (fread(b, 1, (size_t)len, f) != (size_t)len) DP_FATAL("reading a seed", "", "%s", path);
  fclose(f);
  *n = (size_t)len;
  return b;
}

static void pixels(uint8_t *p, int w, int h, int c, int seed) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++) p[((size_t)y * w + x) * c + k] = (uint8_t)(x * 7 + y * 3 + k * 50 + seed);
}

static uint8_t *jpeg(int w, int h, int pf, int samp, int flags, unsigned long *len) {
  int c = tjPixelSize[pf];
  uint8_t *px = dp_malloc((size_t)w * h * c, "pixels");
  pixels(px, w, h, c, pf);
  tjhandle t = tjInitCompress();
  unsigned char *out = NULL;
  *len = 0;
  if (tjCompress2(t, px, w, 0, h, pf, &out, len, samp, 85, flags) != 0) DP_FATAL("tjCompress2", "", "%s", tjGetErrorStr2(t));
  tjDestroy(t);
  free(px);
  return out;
}

// ---- decode seeds: 8-byte parameter block + record ----------------------------------
static void put_decode(const char *name, uint8_t flags, uint8_t size, uint8_t rh, uint8_t rw, const void *rec,
                       size_t n) {
  uint8_t *b = dp_malloc(n + 8, "seed");
  uint8_t hdr[8] = {flags, size, rh, rw, 1, 2, 3, 4};
  memcpy(b, hdr, 8);
  memcpy(b + 8, rec, n);
  put("decode", name, b, n + 8);
  free(b);
}

static void be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

// A minimal PNG: IHDR, (PLTE), one IDAT of filter-0 rows, IEND.
static size_t png(int w, int h, int ctype, uint8_t *out) {
  int ch = ctype == 0 ? 1 : ctype == 2 ? 3 : ctype == 3 ? 1 : ctype == 4 ? 2 : 4;
  size_t raw_n = (size_t)h * (1 + (size_t)w * ch);
  uint8_t *raw = dp_calloc(raw_n, 1, "png rows");
  for (int y = 0; y < h; y++) {
    raw[(size_t)y * (1 + w * ch)] = (uint8_t)(y % 5);   // every filter type
    pixels(raw + (size_t)y * (1 + w * ch) + 1, w, 1, ch, y);
  }
  uLongf zn = compressBound(raw_n);
  uint8_t *z = dp_malloc(zn, "png zlib");
  compress(z, &zn, raw, raw_n);
  size_t n = 0;
  memcpy(out, "\x89PNG\r\n\x1a\n", 8);
  n = 8;
#define CHUNK(type, data, len)                                                  \
  do {                                                                          \
    be32(out + n, (uint32_t)(len));                                             \
    memcpy(out + n + 4, type, 4);                                               \
    memcpy(out + n + 8, data, len);                                             \
    be32(out + n + 8 + (len), (uint32_t)crc32(0, out + n + 4, (uInt)(len) + 4)); \
    n += 12 + (len);                                                            \
  } while (0)
  uint8_t ihdr[13];
  be32(ihdr, (uint32_t)w);
  be32(ihdr + 4, (uint32_t)h);
  ihdr[8] = 8, ihdr[9] = (uint8_t)ctype, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0;
  CHUNK("IHDR", ihdr, 13);
  if (ctype == 3) {
    uint8_t pal[256 * 3];
    for (int i = 0; i < 256 * 3; i++) pal[i] = (uint8_t)(i * 13);
    CHUNK("PLTE", pal, sizeof pal);
  }
  CHUNK("IDAT", z, zn);
  CHUNK("IEND", "", 0);
#undef CHUNK
  free(raw);
  free(z);
  return n;
}

static void decode_seeds(void) {
  unsigned long n;
  uint8_t *j = jpeg(64, 48, TJPF_RGB, TJSAMP_420, 0, &n);
  put_decode("rgb420_train", 0x03, 56, 1, 1, j, n);
  put_decode("rgb420_eval_u8", 0x06 | 0x08, 32, 1, 1, j, n);
  put_decode("rgb420_truncated", 0x03, 32, 1, 1, j, n / 2);
  tjFree(j);
  j = jpeg(200, 150, TJPF_RGB, TJSAMP_444, TJFLAG_PROGRESSIVE, &n);
  put_decode("progressive_scaled", 0x83, 24, 1, 1, j, n);
  tjFree(j);
  j = jpeg(40, 40, TJPF_GRAY, TJSAMP_GRAY, 0, &n);
  put_decode("gray_to_rgb", 0x02, 16, 1, 1, j, n);
  put_decode("gray", 0x01, 16, 1, 1, j, n);
  tjFree(j);
  j = jpeg(32, 24, TJPF_CMYK, TJSAMP_420, 0, &n);   // TurboJPEG writes YCCK from CMYK pixels
  put_decode("ycck", 0x03, 16, 1, 1, j, n);
  tjFree(j);
  uint8_t raw[16 * 12 * 3];
  pixels(raw, 16, 12, 3, 9);
  put_decode("raw_rgb", 0x12 | 0x40, 16, 11, 15, raw, sizeof raw);   // h, w = 1 + byte
  put_decode("raw_gray_to_rgb", 0x12, 8, 11, 15, raw, 16 * 12);
  uint8_t *p = dp_malloc(1 << 20, "png");
  const int types[5] = {0, 2, 3, 4, 6};
  for (int k = 0; k < 5; k++) {
    size_t pn = png(13, 9, types[k], p);
    char nm[32];
    snprintf(nm, sizeof nm, "png_type%d", types[k]);
    put_decode(nm, 0x22 | (k & 1), 16, 1, 1, p, pn);
  }
  char ppm[64 + 10 * 8 * 3];
  int hl = snprintf(ppm, 64, "P6\n# c\n10 8\n255\n");
  pixels((uint8_t *)ppm + hl, 10, 8, 3, 1);
  put_decode("ppm", 0x23, 16, 1, 1, ppm, (size_t)hl + 240);
  hl = snprintf(ppm, 64, "P5 10 8 65535\n");
  pixels((uint8_t *)ppm + hl, 10, 8, 2, 1);
  put_decode("pgm16", 0x21, 16, 1, 1, ppm, (size_t)hl + 160);
  free(p);
}

// ---- safetensors seeds -----------------------------------------------------------------
static void safetensors_seeds(void) {
  char path[1200];
  model_cfg mc;
  nn_graph *g = fuzz_tiny_model(&mc);
  weights_meta wm;
  memset(&wm, 0, sizeof wm);
  wm.model = mc;
  wm.num_classes = 3;
  char *names[3] = {"ok", "blurry", "watermark"};
  wm.class_names = names;
  for (int c = 0; c < 3; c++) wm.mean[c] = 0.5f, wm.std[c] = 0.25f;
  snprintf(path, sizeof path, "%s/tmp_weights.safetensors", g_dir);
  char err[512];
  if (weights_save(path, g, &wm, err, sizeof err)) DP_FATAL("seed weights", "", "%s", err);
  size_t n;
  uint8_t *b = slurp(path, &n);
  put("safetensors", "tiny_cnn_weights", b, n);
  free(b);
  remove(path);
  nn_graph_destroy(g);
  double d[2] = {1, 2};
  int64_t q[3] = {1, 2, 3};
  uint16_t hf[4] = {1, 2, 3, 4};
  uint8_t u[5] = {1, 2, 3, 4, 5};
  st_entry e[5] = {{"a.f64", ST_F64, 1, {2}, d}, {"b.i64", ST_I64, 2, {1, 3}, q}, {"c.bf16", ST_BF16, 1, {4}, hf},
                   {"d.u8", ST_U8, 1, {5}, u}, {"e.empty", ST_F32, 2, {0, 3}, NULL}};
  const char *meta[4] = {"format", "pt", "k\xc3\xa9y", "v\\\"q"};
  snprintf(path, sizeof path, "%s/tmp_mixed.safetensors", g_dir);
  dp_err de;
  if (st_write(path, e, 5, meta, 2, &de)) DP_FATAL("seed safetensors", "", "%s", de.msg);
  b = slurp(path, &n);
  put("safetensors", "mixed_dtypes", b, n);
  free(b);
  remove(path);
  const char *hdrs[] = {
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
      "\"data_offsets\":[4,12]}}",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8.5]}}",
      "{\"__metadata__\":{\"dptrain.model\":\"cnn\",\"dptrain.image_size\":\"16\",\"dptrain.channels\":\"3\","
      "\"dptrain.classes\":\"3\",\"dptrain.class_names\":\"a\\nb\\nc\"}}",
      "{\"a\\ud83d\\ude00\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}",
  };
  const size_t data_len[4] = {12, 9, 0, 1};
  for (size_t k = 0; k < sizeof hdrs / sizeof hdrs[0]; k++) {
    size_t hl = strlen(hdrs[k]);
    uint8_t buf[1024] = {0};
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdrs[k], hl);
    char nm[32];
    snprintf(nm, sizeof nm, "crafted%zu", k);
    put("safetensors", nm, buf, 8 + hl + data_len[k]);
  }
}

// ---- config seeds (first byte 0: file text, 1: argv lines) ------------------------------
#define PUT_LIT(target, name, lit) put(target, name, lit, sizeof(lit) - 1)   // literals may hold NULs
static void config_seeds(void) {
  PUT_LIT("config", "file_basic", "\x00model = resnet18\nimage-size = 32\nbatch = 8\nlr = 0.05  # comment\n"
                                  "[section]\nclass_weights = \"1,2,3\"\nseed = 18446744073709551615\n");
  PUT_LIT("config", "file_bom_crlf", "\x00\xef\xbb\xbf; c\r\nsteps = 10\r\nmax-skip-rate = 0.05\r\n");
  PUT_LIT("config", "file_bad", "\x00threads = 4294967299\nlr = nan\nx\x00y = 1\n");
  PUT_LIT("config", "argv_basic", "\x01--model\ncnn\n--train\nx-*.h5\n--batch=4\n--small-stem\n--lr\n1e-3");
  PUT_LIT("config", "argv_bad", "\x01--channels\n4294967299\n--max-skip-rate\ninf\n--steps\n-1");
}

// ---- csv seeds ---------------------------------------------------------------------------------
static void csv_seeds(void) {
  put_str("csv", "plain", "path,label,width\na.jpg,ok,10\nb.jpg,blurry,\n");
  put_str("csv", "quoted", "\xef\xbb\xbfpath,label\r\n\"dir, x/a \"\"1\"\".jpg\",\"multi\nline\"\r\n\"\",\"\"\r\n");
  put_str("csv", "bad", "path,label\n\"open,x\nmid\"quote,y\n");
}

// ---- shard seeds ---------------------------------------------------------------------------------
static void shard_one(const char *name, shard_codec codec, int h, int w, int c, int n, int with_meta) {
  char path[1200];
  snprintf(path, sizeof path, "%s/tmp_%s.h5", g_dir, name);
  const char *names[3] = {"ok", "blurry", "x"};
  shard_writer_cfg cfg = {codec, 3, names, h, w, c, NULL};
  dp_err err;
  shard_writer *wr = shard_writer_create(path, &cfg, &err);
  if (!wr) DP_FATAL("seed shard", "", "%s", err.msg);
  unsigned long jn = 0;
  uint8_t *j = codec == SHARD_CODEC_JPEG ? jpeg(16, 12, TJPF_RGB, TJSAMP_420, 0, &jn) : NULL;
  uint8_t *raw = dp_malloc((size_t)(h * w * c + 1), "raw");
  pixels(raw, w, h, c, 3);
  for (int i = 0; i < n; i++) {
    int32_t meta[META_NCOLS] = {i % 6, 1, -1, 2, 16, 12};
    const uint8_t *rec = j ? j : raw;
    int64_t len = j ? (int64_t)jn : h * w * c;
    if (i == 1) len = 0;   // a corrupt (empty) record
    if (shard_writer_add(wr, rec, len, i % 3, 100 + i, with_meta ? meta : NULL, &err))
      DP_FATAL("seed shard", "", "%s", err.msg);
  }
  if (shard_writer_close(wr, &err)) DP_FATAL("seed shard", "", "%s", err.msg);
  size_t sz;
  uint8_t *b = slurp(path, &sz);
  put("shard", name, b, sz);
  free(b);
  remove(path);
  if (j) tjFree(j);
  free(raw);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
  dp_err err;
  (void)err;
  char cmd[1000];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", g_dir);
  if (system(cmd) != 0) return 1;
  decode_seeds();
  safetensors_seeds();
  config_seeds();
  csv_seeds();
  shard_one("jpeg_meta", SHARD_CODEC_JPEG, 0, 0, 0, 4, 1);
  shard_one("raw_gray", SHARD_CODEC_RAW, 6, 5, 1, 3, 0);
  shard_one("raw_rgb", SHARD_CODEC_RAW, 4, 4, 3, 2, 1);
  shard_one("empty", SHARD_CODEC_RAW, 4, 4, 3, 0, 0);
  printf("make_seeds: seed corpus in %s/{decode,safetensors,config,csv,shard}\n", g_dir);
  return 0;
}
