// The validating safetensors reader (core/safetensors.h): a file written by
// st_write reads back exactly, and every crafted violation of the format's
// rules is refused with a message naming the rule. Each case is a file on
// disk (st_open) and the same bytes in memory (st_open_mem).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "testutil.h"

static char g_dir[512];

// Bytes of a file: 8-byte LE length (declared, or the header's real length
// when declared == -1), the header text, then data_len data bytes (0x11).
static size_t craft(uint8_t **out, const char *hdr, int64_t declared, size_t data_len) {
  size_t h = strlen(hdr), n = 8 + h + data_len;
  uint8_t *b = malloc(n + 1);
  uint64_t d = declared == -1 ? (uint64_t)h : (uint64_t)declared;   // -2: 2^64 - 2
  for (int k = 0; k < 8; k++) b[k] = (uint8_t)(d >> (8 * k));
  memcpy(b + 8, hdr, h);
  memset(b + 8 + h, 0x11, data_len);
  *out = b;
  return n;
}

// Expects a refusal whose message contains `needle`, from disk and memory.
static void expect_bad(const char *what, const char *hdr, int64_t declared, size_t data_len, const char *needle) {
  uint8_t *b;
  size_t n = craft(&b, hdr, declared, data_len);
  char path[700];
  snprintf(path, sizeof path, "%s/case.safetensors", g_dir);
  FILE *f = fopen(path, "wb");
  TU_CHECK(f && fwrite(b, 1, n, f) == n && fclose(f) == 0, "writing %s", path);
  dp_err err;
  st_file *sf = st_open(path, &err);
  TU_CHECK(!sf, "%s: accepted (should be refused: %s)", what, needle);
  if (sf) st_close(sf);
  else TU_CHECK(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, needle);
  if (!sf) printf("refused %-28s %s\n", what, err.msg);
  sf = st_open_mem(b, n, "mem", &err);
  TU_CHECK(!sf, "%s: accepted from memory", what);
  if (sf) st_close(sf);
  free(b);
}

static void expect_good(const char *what, const char *hdr, size_t data_len) {
  uint8_t *b;
  size_t n = craft(&b, hdr, -1, data_len);
  dp_err err;
  st_file *sf = st_open_mem(b, n, "mem", &err);
  TU_CHECK(sf != NULL, "%s: refused: %s", what, sf ? "" : err.msg);
  st_close(sf);
  free(b);
}

static void test_roundtrip(void) {
  float w[6] = {1, -2, 3.5f, 4, 5, 6};
  int64_t ids[3] = {7, -8, 9};
  uint16_t h = 0x3c00;
  st_entry e[4] = {
      {"layer.weight", ST_F32, 2, {2, 3}, w},
      {"ids", ST_I64, 1, {3}, ids},
      {"half", ST_F16, 0, {0}, &h},
      {"empty", ST_F32, 2, {0, 4}, NULL},
  };
  const char *meta[4] = {"format", "pt", "note", "quote \" and \\ and \xc3\xa9"};
  char path[700];
  snprintf(path, sizeof path, "%s/good.safetensors", g_dir);
  dp_err err;
  TU_CHECK(st_write(path, e, 4, meta, 2, &err) == 0, "st_write: %s", err.msg);
  st_file *f = st_open(path, &err);
  TU_CHECK(f != NULL, "reading back: %s", f ? "" : err.msg);
  if (!f) return;
  TU_CHECK(st_count(f) == 4, "count %d", st_count(f));
  const st_tensor *t = st_find(f, "layer.weight");
  TU_CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6,
           "layer.weight descriptor");
  float got[6];
  if (t) st_copy(f, t, got);
  TU_CHECK(t && !memcmp(got, w, sizeof w), "layer.weight values");
  t = st_find(f, "ids");
  int64_t gi[3];
  if (t) st_copy(f, t, gi);
  TU_CHECK(t && t->dtype == ST_I64 && !memcmp(gi, ids, sizeof ids), "ids values");
  t = st_find(f, "half");
  TU_CHECK(t && t->ndim == 0 && t->numel == 1 && t->end - t->begin == 2, "scalar F16");
  t = st_find(f, "empty");
  TU_CHECK(t && t->numel == 0 && t->begin == t->end, "empty tensor");
  TU_CHECK(st_find(f, "nope") == NULL, "absent name");
  TU_CHECK(st_meta(f, "format") && !strcmp(st_meta(f, "format"), "pt"), "metadata format");
  TU_CHECK(st_meta(f, "note") && !strcmp(st_meta(f, "note"), meta[3]), "metadata escapes round-trip: %s",
           st_meta(f, "note") ? st_meta(f, "note") : "(none)");
  // Offsets are in file order: contiguous from 0.
  int64_t at = 0;
  for (int i = 0; i < st_count(f); i++) {
    TU_CHECK(st_at(f, i)->begin == at, "contiguous");
    at = st_at(f, i)->end;
  }
  st_close(f);
  // The data section starts 8-byte aligned (header padded with spaces).
  FILE *fp = fopen(path, "rb");
  uint8_t le[8] = {0};
  TU_CHECK(fp && fread(le, 1, 8, fp) == 8, "read length");
  if (fp) fclose(fp);
  uint64_t n = 0;
  for (int k = 7; k >= 0; k--) n = (n << 8) | le[k];
  TU_CHECK((8 + n) % 8 == 0, "data section at %llu, not 8-aligned", (unsigned long long)(8 + n));
  // torch/safetensors' own reader accepts the file (when installed).
  char cmd[1200];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import sys\ntry:\n import safetensors.numpy as s\nexcept ImportError:\n sys.exit(3)\n"
           "d = s.load_file('%s')\nsys.exit(0 if list(d['layer.weight'].ravel()) == [1,-2,3.5,4,5,6] else 1)\" 2>/dev/null",
           path);
  int rc = system(cmd);
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 3) printf("(python safetensors not installed: reference check skipped)\n");
  else TU_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "the safetensors package refuses our file (rc %d)", rc);
}

static void test_refusals(void) {
  const char *ok1 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  expect_good("plain", ok1, 8);
  expect_good("trailing spaces in the header", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ", 8);
  expect_good("no tensors", "{}", 0);
  expect_good("metadata only", "{\"__metadata__\":{\"k\":\"v\"}}", 0);

  // Length field.
  expect_bad("header length > file", ok1, 100000, 8, "larger than the file");
  expect_bad("header length > 100 MB", ok1, 200000000, 8, "exceeds");
  expect_bad("header length 2^64-2", ok1, -2, 8, "exceeds");
  // Offsets.
  expect_bad("overlapping offsets",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", -1, 12, "overlaps");
  expect_bad("negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", -1, 8, "negative");
  expect_bad("fractional offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8.5]}}", -1, 9,
             "not an integer");
  expect_bad("exponent offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4e0]}}", -1, 4,
             "not an integer");
  expect_bad("misaligned offset",
             "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", -1, 6, "not aligned");
  expect_bad("end before begin", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", -1, 4, "END");
  expect_bad("offset past the data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", -1, 8,
             "past the");
  expect_bad("offsets not two", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", -1, 8,
             "data_offsets must be");
  expect_bad("offset as string", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", -1, 8,
             "not a number");
  // Shape vs bytes.
  expect_bad("shape x dtype != bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8,
             "shape needs 12 bytes");
  expect_bad("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8, "negative");
  expect_bad("fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", -1, 8,
             "not an integer");
  expect_bad("shape product overflow",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,0]}}", -1, 0,
             "overflow");
  expect_bad("unknown dtype", "{\"a\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
             "unknown dtype");
  // Coverage of the data section.
  expect_bad("trailing bytes", ok1, -1, 12, "trailing bytes");
  expect_bad("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8, "hole");
  // Names and metadata.
  expect_bad("duplicate name",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8, "appears twice");
  expect_bad("metadata not strings", "{\"__metadata__\":{\"k\":1}}", -1, 0, "not a string");
  expect_bad("unknown field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", -1, 8,
             "unknown field");
  expect_bad("not an object", "[1,2]", -1, 0, "does not start with '{'");
  expect_bad("bad JSON", "{\"a\":{\"dtype\":\"F32\",", -1, 0, "JSON");
  expect_bad("NUL escape in a name", "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", -1, 0,
             "\\u");
  expect_bad("invalid UTF-8", "{\"\xff\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", -1, 0, "UTF-8");
  expect_bad("too short", "", 0, 0, "");
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/dp_test_st_%d", (int)getpid());
  char cmd[600];
  snprintf(cmd, sizeof cmd, "mkdir -p %s", g_dir);
  if (system(cmd) != 0) tu_skip("cannot make a temp dir");
  test_roundtrip();
  test_refusals();
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  return tu_finish("test_safetensors");
}
