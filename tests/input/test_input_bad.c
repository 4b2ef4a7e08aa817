// Bad-input corpus, generated here. Documented behaviour for each case:
//   decoder level                      expected
//   valid baseline / progressive       decode ok
//   grayscale, CMYK (YCCK)             decode ok (see test_input_aug for pixels)
//   1x1 JPEG                           decode ok, renders to the output size
//   truncated JPEG                     rejected: DECODE_ERR_DATA (STOPONWARNING)
//   bit flips                          ok or rejected with a reason, never a crash
//   zero-length record                 rejected: DECODE_ERR_EMPTY
//   PNG bytes in a JPEG record         rejected: DECODE_ERR_HEADER
//   65535x65535 / 20000x16 SOF header  rejected: DECODE_ERR_DIMS (before allocation)
//   raw record of the wrong size       rejected: DECODE_ERR_RAW
//   shard level (shard_open / loader_create error naming the file)
//   offsets past the blob, label out of range, missing /labels, truncated file
//   loader level: corrupt records in a shard are skipped, counted with their
//   ids, and the batches stay full.
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input/augment.h"
#include "input/decode.h"
#include "input/loader.h"
#include "input/shard.h"
#include "input_testutil.h"
#include "testutil.h"

// Decodes like the loader does; returns 0 or the dp_err code.
static int try_decode(decoder *d, aug_scratch *as, const aug_out *o, const uint8_t *b,
                      int64_t len, dp_err *err) {
  img_header h;
  img_view v;
  dp_err_clear(err);
  if (decoder_jpeg_header(d, b, len, &h, err)) return err->code;
  aug_params p;
  aug_eval_params(h.w, h.h, o->size, 0.875f, &p);
  int num, den;
  decoder_pick_scale(p.cw, p.ch, o->size, &num, &den);
  if (decoder_jpeg_decode(d, b, len, &h, 3, num, den, &v, err)) return err->code;
  static float dst[32 * 32 * 3];
  aug_render(&v, h.w, h.h, &p, o, as, dst);
  return 0;
}

// Offset of the SOF segment's height field, or -1.
static int64_t sof_dims_at(const uint8_t *b, int64_t len) {
  for (int64_t i = 2; i + 9 < len; i++)
    if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC1 || b[i + 1] == 0xC2)) return i + 5;
  return -1;
}

static uint8_t *patched_dims(const uint8_t *j, int64_t len, int w, int h) {
  uint8_t *b = malloc((size_t)len);
  memcpy(b, j, (size_t)len);
  int64_t at = sof_dims_at(b, len);
  if (at >= 0) {
    b[at] = (uint8_t)(h >> 8);
    b[at + 1] = (uint8_t)h;
    b[at + 2] = (uint8_t)(w >> 8);
    b[at + 3] = (uint8_t)w;
  }
  return b;
}

static const uint8_t PNG_BYTES[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
                                    'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0,
                                    0x90, 0x77, 0x53, 0xde};

static void test_decoder_corpus(void) {
  decoder *d = decoder_create();
  aug_out o;
  const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
  aug_out_init(&o, 32, 3, 0, 0, mean, std);
  aug_scratch *as = aug_scratch_create(&o);
  dp_err err;
  int64_t len;
  uint8_t *j = it_jpeg_make(120, 90, 1, 0, &len);
  TU_CHECK(try_decode(d, as, &o, j, len, &err) == 0, "valid: %s", err.msg);
  int64_t plen;
  uint8_t *pj = it_jpeg_make(120, 90, 1, TJFLAG_PROGRESSIVE, &plen);
  TU_CHECK(try_decode(d, as, &o, pj, plen, &err) == 0, "progressive: %s", err.msg);
  int64_t tlen;
  uint8_t *tiny = it_jpeg_make(1, 1, 2, 0, &tlen);
  TU_CHECK(try_decode(d, as, &o, tiny, tlen, &err) == 0, "1x1: %s", err.msg);
  // Truncations at several points: header-only cuts fail in the header,
  // data cuts raise "premature end" which STOPONWARNING turns into an error.
  for (int k = 1; k <= 9; k++) {
    int64_t cut = len * k / 10;
    int rc = try_decode(d, as, &o, j, cut, &err);
    TU_CHECK(rc == DECODE_ERR_DATA || rc == DECODE_ERR_HEADER || rc == DECODE_ERR_DIMS, "truncated at %lld: rc %d", (long long)cut, rc);
  }
  TU_CHECK(try_decode(d, as, &o, j, 0, &err) == DECODE_ERR_EMPTY, "zero-length: %s", err.msg);
  TU_CHECK(try_decode(d, as, &o, PNG_BYTES, sizeof PNG_BYTES, &err) == DECODE_ERR_HEADER,
           "PNG bytes: %s", err.msg);
  printf("PNG bytes rejected: %s\n", err.msg);
  uint8_t *big = patched_dims(j, len, 65535, 65535);
  // libjpeg itself stops at 65500 in the header; either way before allocation.
  int rc = try_decode(d, as, &o, big, len, &err);
  TU_CHECK((rc == DECODE_ERR_DIMS || rc == DECODE_ERR_HEADER) && strstr(err.msg, "dimension"),
           "65535x65535: rc %d %s", err.code, err.msg);
  printf("65535x65535 rejected: %s\n", err.msg);
  free(big);
  big = patched_dims(j, len, 20000, 16);
  TU_CHECK(try_decode(d, as, &o, big, len, &err) == DECODE_ERR_DIMS, "20000x16: %s", err.msg);
  printf("20000x16 rejected: %s\n", err.msg);
  free(big);
  big = patched_dims(j, len, 0, 0);
  TU_CHECK(try_decode(d, as, &o, big, len, &err) != 0, "0x0 header must be rejected");
  free(big);
  // Bit flips anywhere (header included): ok or rejected, never a crash.
  int ok = 0, rejected = 0;
  uint8_t *f = malloc((size_t)len);
  for (int t = 0; t < 200; t++) {
    memcpy(f, j, (size_t)len);
    dp_rng r = dp_rng_stream(77, (uint64_t)t);
    int nflip = 1 + (int)dp_rng_below(&r, 8);
    for (int k = 0; k < nflip; k++) {
      int64_t at = (int64_t)dp_rng_below(&r, (uint64_t)len);
      f[at] ^= (uint8_t)(1u << dp_rng_below(&r, 8));
    }
    rc = try_decode(d, as, &o, f, len, &err);
    if (rc == 0) ok++; else rejected++;
    TU_CHECK(rc == 0 || err.msg[0], "a rejection must carry a reason");
  }
  printf("bit flips: %d decoded, %d rejected with a reason\n", ok, rejected);
  TU_CHECK(rejected > 0 && ok > 0, "bit flips: some decode (entropy data), some are rejected");
  // A failure must not poison the handle: a valid image right after decodes.
  TU_CHECK(try_decode(d, as, &o, j, len, &err) == 0, "valid after failures: %s", err.msg);
  // Raw records of the wrong size.
  img_view v;
  uint8_t raw[12] = {0};
  TU_CHECK(decoder_raw(d, raw, 12, 2, 2, 3, 3, &v, &err) == 0, "raw ok");
  TU_CHECK(decoder_raw(d, raw, 11, 2, 2, 3, 3, &v, &err) == DECODE_ERR_RAW * 0 - 1 &&
           err.code == DECODE_ERR_RAW, "raw short: %s", err.msg);
  TU_CHECK(decoder_raw(d, raw, 0, 2, 2, 3, 3, &v, &err) == -1 && err.code == DECODE_ERR_EMPTY, "raw empty");
  free(f); free(j); free(pj); free(tiny);
  aug_scratch_destroy(as);
  decoder_destroy(d);
}

// ---- shard-level corruption (patched with HDF5 after a valid write) ---------
static void write_valid(const char *path, int n) {
  uint8_t *recs[16];
  int64_t lens[16], ids[16];
  int32_t labels[16];
  for (int i = 0; i < n; i++) {
    recs[i] = it_jpeg_make(40, 30, (uint32_t)i, 0, &lens[i]);
    labels[i] = i % 3;
    ids[i] = 500 + i;
  }
  it_shard_write(path, SHARD_CODEC_JPEG, 3, 0, 0, 0, n, recs, lens, labels, ids);
  for (int i = 0; i < n; i++) free(recs[i]);
}

static void patch_i64(const char *path, const char *ds, int64_t idx, int64_t val, int is32) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
  hid_t fs = H5Dget_space(d);
  hsize_t start = (hsize_t)idx, count = 1;
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
  hid_t ms = H5Screate_simple(1, &count, NULL);
  int32_t v32 = (int32_t)val;
  herr_t rc = H5Dwrite(d, is32 ? H5T_NATIVE_INT32 : H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT,
                       is32 ? (void *)&v32 : (void *)&val);
  TU_CHECK(rc >= 0, "patching %s", ds);
  H5Sclose(ms); H5Sclose(fs); H5Dclose(d); H5Fclose(f);
}

static void expect_open_fails(const char *path, const char *what, const char *needle) {
  dp_err err;
  dp_err_clear(&err);
  shard *s = shard_open(path, &err);
  TU_CHECK(s == NULL, "%s: shard_open must fail", what);
  if (s) shard_close(s);
  TU_CHECK(strstr(err.msg, path) != NULL, "%s: error must name the file: %s", what, err.msg);
  if (needle) TU_CHECK(strstr(err.msg, needle) != NULL, "%s: error should mention '%s': %s", what, needle, err.msg);
  printf("%s -> %s\n", what, err.msg);
  // The loader turns it into a config error naming the file.
  loader_cfg c;
  loader_cfg_defaults(&c);
  char *paths[1] = {(char *)path};
  c.shards = paths;
  c.nshards = 1;
  c.threads = 1;
  dp_err_clear(&err);
  loader *l = loader_create(&c, &err);
  TU_CHECK(l == NULL && strstr(err.msg, path) != NULL, "%s: loader_create must fail naming the file", what);
  if (l) loader_destroy(l);
}

static void test_shard_corpus(void) {
  char p[1024];
  snprintf(p, sizeof p, "%s", it_path("bad_offsets.h5"));
  write_valid(p, 6);
  patch_i64(p, "/images/offsets", 6, 1LL << 40, 0);
  expect_open_fails(p, "offsets past the blob", NULL);

  snprintf(p, sizeof p, "%s", it_path("bad_offsets_order.h5"));
  write_valid(p, 6);
  patch_i64(p, "/images/offsets", 3, 1, 0);
  expect_open_fails(p, "non-monotone offsets", NULL);

  snprintf(p, sizeof p, "%s", it_path("bad_label.h5"));
  write_valid(p, 6);
  patch_i64(p, "/labels", 4, 3, 1);
  expect_open_fails(p, "label out of range", NULL);

  snprintf(p, sizeof p, "%s", it_path("missing_labels.h5"));
  write_valid(p, 6);
  hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  TU_CHECK(H5Ldelete(f, "/labels", H5P_DEFAULT) >= 0, "delete /labels");
  H5Fclose(f);
  expect_open_fails(p, "missing /labels", "labels");

  snprintf(p, sizeof p, "%s", it_path("truncated.h5"));
  write_valid(p, 6);
  FILE *fp = fopen(p, "rb");
  fseek(fp, 0, SEEK_END);
  long sz = ftell(fp);
  fclose(fp);
  TU_CHECK(truncate(p, sz / 2) == 0, "truncate");
  expect_open_fails(p, "truncated HDF5 file", NULL);

  snprintf(p, sizeof p, "%s", it_path("not_there.h5"));
  unlink(p);
  expect_open_fails(p, "missing file", NULL);
}

// Corrupt records inside a valid shard go through the loader: skipped,
// counted with their ids, batches filled.
static void test_loader_skips(void) {
  enum { N = 24 };
  uint8_t *recs[N];
  int64_t lens[N], ids[N];
  int32_t labels[N];
  for (int i = 0; i < N; i++) {
    recs[i] = it_jpeg_make(48 + i, 40, (uint32_t)i, i % 4 == 1 ? TJFLAG_PROGRESSIVE : 0, &lens[i]);
    labels[i] = i % 3;
    ids[i] = 9000 + i;
  }
  // Records 5 (grayscale) and 13 (CMYK) are valid and must decode.
  {
    uint8_t *g = it_make_image(50, 40, 1, 5);
    free(recs[5]);
    recs[5] = it_jpeg_encode(g, 50, 40, TJPF_GRAY, TJSAMP_GRAY, 90, 0, &lens[5]);
    free(g);
    uint8_t *c4 = it_make_image(50, 40, 4, 13);
    free(recs[13]);
    recs[13] = it_jpeg_encode(c4, 50, 40, TJPF_CMYK, TJSAMP_420, 90, 0, &lens[13]);
    free(c4);
  }
  // Record 3: truncated; 7: zero-length; 11: PNG; 15: absurd header; 19: garbage.
  lens[3] /= 2;
  lens[7] = 0;
  free(recs[11]);
  recs[11] = malloc(sizeof PNG_BYTES);
  memcpy(recs[11], PNG_BYTES, sizeof PNG_BYTES);
  lens[11] = sizeof PNG_BYTES;
  uint8_t *b = patched_dims(recs[15], lens[15], 65535, 65535);
  free(recs[15]);
  recs[15] = b;
  for (int64_t k = 0; k < lens[19]; k++) recs[19][k] = (uint8_t)(k * 131 + 7);
  char p[1024];
  snprintf(p, sizeof p, "%s", it_path("corrupt_records.h5"));
  it_shard_write(p, SHARD_CODEC_JPEG, 3, 0, 0, 0, N, recs, lens, labels, ids);
  for (int i = 0; i < N; i++) free(recs[i]);

  loader_cfg c;
  loader_cfg_defaults(&c);
  char *paths[1] = {p};
  c.shards = paths;
  c.nshards = 1;
  c.batch = 6;
  c.threads = 2;
  c.out_size = 32;
  c.drop_last = 0;
  dp_err err;
  dp_err_clear(&err);
  loader *l = loader_create(&c, &err);
  TU_CHECK(l != NULL, "loader_create: %s", err.msg);
  if (!l) return;
  loader_start_epoch(l, 0);
  const loader_batch *bt;
  int64_t nb = 0, seen_bad = 0, seen_special = 0;
  while ((bt = loader_next_batch(l))) {
    nb++;
    TU_CHECK(bt->n == 6, "batches stay full (n %lld)", (long long)bt->n);
    for (int64_t i = 0; i < bt->n; i++) {
      TU_CHECK(bt->labels[i] >= 0 && bt->labels[i] < 3, "filled slot has a real label");
      int64_t r = bt->ids[i] - 9000;
      if (r == 3 || r == 7 || r == 11 || r == 15 || r == 19) seen_bad++;
      if (r == 5 || r == 13) seen_special++;
      TU_CHECK(bt->labels[i] == (int32_t)(r % 3), "label matches the id");
    }
  }
  loader_stats st = loader_get_stats(l);
  TU_CHECK(nb == 4, "4 batches (got %lld)", (long long)nb);
  TU_CHECK(seen_bad == 0, "corrupt records must not appear in batches");
  TU_CHECK(seen_special >= 2, "grayscale and CMYK records decode through the loader");
  TU_CHECK(st.skipped == 5 && st.decoded == 19, "skipped %lld decoded %lld", (long long)st.skipped,
           (long long)st.decoded);
  int64_t want[5] = {9003, 9007, 9011, 9015, 9019}, found = 0;
  for (int64_t k = 0; k < st.nskipped_ids; k++)
    for (int m = 0; m < 5; m++) found += st.skipped_ids[k] == want[m];
  TU_CHECK(st.nskipped_ids == 5 && found == 5, "skipped ids reported");
  TU_CHECK(st.last_error[0] != 0 && strstr(st.last_error, "id 90") != NULL, "reason: %s", st.last_error);
  printf("loader skip reason: %s\n", st.last_error);
  loader_destroy(l);
}

int main(void) {
  mkdir(tu_fixture_dir(), 0755);
  test_decoder_corpus();
  test_shard_corpus();
  test_loader_skips();
  return tu_finish("test_input_bad");
}
