// Validating safetensors reader and atomic writer. See safetensors.h.
#include "core/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/afile.h"
#include "core/json.h"
#include "core/jsonread.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies bytes as they are"
#endif

static const struct {
  const char *name;
  int size;
} dtypes[ST_NDTYPES] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_I16] = {"I16", 2},   [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_I32] = {"I32", 4},   [ST_U32] = {"U32", 4},   [ST_F32] = {"F32", 4},
    [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},   [ST_U64] = {"U64", 8},
};

int st_dtype_size(st_dtype t) { return t >= 0 && t < ST_NDTYPES ? dtypes[t].size : 0; }
const char *st_dtype_name(st_dtype t) { return t >= 0 && t < ST_NDTYPES ? dtypes[t].name : "?"; }
int st_dtype_parse(const char *name, st_dtype *t) {
  for (int i = 0; i < ST_NDTYPES; i++)
    if (!strcmp(dtypes[i].name, name)) {
      *t = (st_dtype)i;
      return 0;
    }
  return -1;
}

struct st_file {
  char path[1024];
  const uint8_t *buf;       // whole file
  size_t size;
  void *map;                // mmap'd region (st_open) or NULL
  size_t map_len;
  int64_t data_start;       // 8 + N
  jv *hdr;
  int n;
  st_tensor *t;             // (n) in offset order
  int *by_name;             // (n) indices into t, sorted by name
  int nmeta;
  const char **meta_k, **meta_v;
};

#define REFUSE(...)                                                   \
  do {                                                                \
    char m_[700];                                                     \
    snprintf(m_, sizeof m_, __VA_ARGS__);                             \
    dp_err_set(err, 1, "%s: not a valid safetensors file: %s", f->path, m_); \
    goto fail;                                                        \
  } while (0)

// UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
static int utf8_ok(const uint8_t *s, size_t n, size_t *bad_at) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    int k;
    uint32_t cp;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xC2 && c <= 0xDF) k = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) k = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) k = 3, cp = c & 0x07;
    else break;
    if (n - i <= (size_t)k) break;   // the k continuation bytes must be there
    int j;
    for (j = 1; j <= k; j++) {
      if ((s[i + j] & 0xC0) != 0x80) break;
      cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if (j <= k) break;
    if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      break;
    i += (size_t)k + 1;
  }
  *bad_at = i;
  return i == n;
}

// An integer from the header: a JSON integer literal within [0, 2^53].
static int header_int(const jv *v, int64_t *out) {
  if (!v || v->type != JV_NUM || !v->integral || !(v->num >= 0) || v->num > 9007199254740992.0) return -1;
  *out = (int64_t)v->num;
  return 0;
}

static const char *what_int(const jv *v) {
  if (!v) return "missing";
  if (v->type != JV_NUM) return "not a number";
  if (!v->integral) return "not an integer (fraction or exponent)";
  if (v->num < 0) return "negative";
  return "too large";
}

static int cmp_off(const void *a, const void *b) {
  const st_tensor *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

static int cmp_name(const void *a, const void *b, void *ctx) {
  const st_tensor *t = ctx;
  return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

static int parse_tensor(st_file *f, const char *name, const jv *e, st_tensor *t, int64_t data_size, dp_err *err) {
  t->name = name;
  if (!name[0]) REFUSE("a tensor has an empty name");
  if (e->type != JV_OBJ) REFUSE("tensor '%.200s': entry is not an object", name);
  for (int k = 0; k < e->n; k++)
    if (strcmp(e->keys[k], "dtype") && strcmp(e->keys[k], "shape") && strcmp(e->keys[k], "data_offsets"))
      REFUSE("tensor '%.200s': unknown field '%.60s'", name, e->keys[k]);
  const jv *dt = jv_get(e, "dtype"), *sh = jv_get(e, "shape"), *of = jv_get(e, "data_offsets");
  if (!dt || dt->type != JV_STR) REFUSE("tensor '%.200s': dtype missing or not a string", name);
  if (st_dtype_parse(dt->str, &t->dtype)) REFUSE("tensor '%.200s': unknown dtype '%.40s'", name, dt->str);
  if (!sh || sh->type != JV_ARR) REFUSE("tensor '%.200s': shape missing or not a list", name);
  if (sh->n > ST_MAX_DIMS) REFUSE("tensor '%.200s': %d dimensions, at most %d", name, sh->n, ST_MAX_DIMS);
  t->ndim = sh->n;
  // Element and byte counts with overflow checks: a shape whose product
  // wraps around could otherwise match a small byte range.
  int64_t numel = 1;
  for (int d = 0; d < sh->n; d++) {
    int64_t x;
    if (header_int(&sh->items[d], &x))
      REFUSE("tensor '%.200s': shape[%d] is %s", name, d, what_int(&sh->items[d]));
    t->shape[d] = x;
    if (__builtin_mul_overflow(numel, x, &numel)) REFUSE("tensor '%.200s': shape product overflows", name);
  }
  t->numel = numel;
  int64_t bytes;
  if (__builtin_mul_overflow(numel, (int64_t)st_dtype_size(t->dtype), &bytes))
    REFUSE("tensor '%.200s': byte size overflows", name);
  if (!of || of->type != JV_ARR || of->n != 2) REFUSE("tensor '%.200s': data_offsets must be [BEGIN, END]", name);
  if (header_int(&of->items[0], &t->begin))
    REFUSE("tensor '%.200s': data_offsets BEGIN is %s", name, what_int(&of->items[0]));
  if (header_int(&of->items[1], &t->end))
    REFUSE("tensor '%.200s': data_offsets END is %s", name, what_int(&of->items[1]));
  if (t->end < t->begin) REFUSE("tensor '%.200s': END %lld < BEGIN %lld", name, (long long)t->end, (long long)t->begin);
  if (t->end > data_size)
    REFUSE("tensor '%.200s': bytes [%lld, %lld) run past the %lld-byte data section", name, (long long)t->begin,
           (long long)t->end, (long long)data_size);
  if (t->begin % st_dtype_size(t->dtype))
    REFUSE("tensor '%.200s': BEGIN %lld is not aligned to its %s size (%d bytes)", name, (long long)t->begin,
           dt->str, st_dtype_size(t->dtype));
  if (t->end - t->begin != bytes)
    REFUSE("tensor '%.200s': shape needs %lld bytes of %s, data_offsets give %lld", name, (long long)bytes, dt->str,
           (long long)(t->end - t->begin));
  return 0;
fail:
  return -1;
}

static st_file *parse(st_file *f, dp_err *err) {
  if (f->size < 8) REFUSE("%zu bytes, shorter than the 8-byte header length", f->size);
  uint64_t n = 0;
  for (int k = 7; k >= 0; k--) n = (n << 8) | f->buf[k];
  // Both limits before anything is allocated from n.
  if (n > (uint64_t)ST_MAX_HEADER)
    REFUSE("header length %llu exceeds the %lld-byte limit", (unsigned long long)n, ST_MAX_HEADER);
  if (n > f->size - 8)
    REFUSE("header length %llu is larger than the file (%zu bytes after the length)", (unsigned long long)n,
           f->size - 8);
  if (n < 2 || f->buf[8] != '{') REFUSE("the header does not start with '{'");
  size_t bad;
  if (!utf8_ok(f->buf + 8, (size_t)n, &bad)) REFUSE("the header is not UTF-8 (byte %zu)", bad);
  f->data_start = 8 + (int64_t)n;
  int64_t data_size = (int64_t)f->size - f->data_start;
  char jerr[256];
  f->hdr = jv_parse((const char *)f->buf + 8, (size_t)n, jerr, sizeof jerr);
  if (!f->hdr) REFUSE("header: %s", jerr);
  if (f->hdr->type != JV_OBJ) REFUSE("the header is not a JSON object");
  const jv *h = f->hdr;
  f->t = dp_calloc((size_t)h->n + 1, sizeof(st_tensor), "safetensors tensors");
  f->by_name = dp_calloc((size_t)h->n + 1, sizeof(int), "safetensors index");
  int have_meta = 0;
  for (int i = 0; i < h->n; i++) {
    const char *k = h->keys[i];
    const jv *e = &h->items[i];
    if (!strcmp(k, "__metadata__")) {
      if (have_meta++) REFUSE("__metadata__ appears twice");
      if (e->type != JV_OBJ) REFUSE("__metadata__ is not an object");
      f->meta_k = dp_calloc((size_t)e->n + 1, sizeof(char *), "safetensors metadata");
      f->meta_v = dp_calloc((size_t)e->n + 1, sizeof(char *), "safetensors metadata");
      for (int m = 0; m < e->n; m++) {
        if (e->items[m].type != JV_STR)
          REFUSE("__metadata__ value of '%.100s' is not a string (the format allows strings only)", e->keys[m]);
        for (int q = 0; q < m; q++)
          if (!strcmp(e->keys[q], e->keys[m])) REFUSE("__metadata__ key '%.100s' appears twice", e->keys[m]);
        f->meta_k[m] = e->keys[m];
        f->meta_v[m] = e->items[m].str;
      }
      f->nmeta = e->n;
      continue;
    }
    if (parse_tensor(f, k, e, &f->t[f->n], data_size, err)) goto fail;
    f->n++;
  }
  // Unique names: sort an index by name, compare neighbours.
  for (int i = 0; i < f->n; i++) f->by_name[i] = i;
  qsort(f->t, (size_t)f->n, sizeof(st_tensor), cmp_off);
  qsort_r(f->by_name, (size_t)f->n, sizeof(int), cmp_name, f->t);
  for (int i = 1; i < f->n; i++)
    if (!strcmp(f->t[f->by_name[i]].name, f->t[f->by_name[i - 1]].name))
      REFUSE("tensor '%.200s' appears twice", f->t[f->by_name[i]].name);
  // Contiguous, non-overlapping, covering the data section exactly.
  int64_t at = 0;
  for (int i = 0; i < f->n; i++) {
    const st_tensor *t = &f->t[i];
    if (t->begin < at)
      REFUSE("tensor '%.200s' (bytes [%lld, %lld)) overlaps the previous tensor '%.200s', which ends at %lld", t->name,
             (long long)t->begin, (long long)t->end, f->t[i - 1].name, (long long)at);
    if (t->begin > at)
      REFUSE("hole of %lld bytes before tensor '%.200s' (the data must be fully indexed)",
             (long long)(t->begin - at), t->name);
    at = t->end;
  }
  if (at != data_size)
    REFUSE("%lld trailing bytes after the last tensor (data section %lld bytes, tensors cover %lld)",
           (long long)(data_size - at), (long long)data_size, (long long)at);
  return f;
fail:
  st_close(f);
  return NULL;
}

st_file *st_open_mem(const void *buf, size_t size, const char *name, dp_err *err) {
  dp_err_clear(err);
  st_file *f = dp_calloc(1, sizeof *f, "safetensors file");
  snprintf(f->path, sizeof f->path, "%s", name ? name : "(memory)");
  f->buf = buf;
  f->size = size;
  return parse(f, err);
}

st_file *st_open(const char *path, dp_err *err) {
  dp_err_clear(err);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    dp_err_set(err, 1, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    dp_err_set(err, 1, "'%s' is not a regular file", path);
    close(fd);
    return NULL;
  }
  st_file *f = dp_calloc(1, sizeof *f, "safetensors file");
  snprintf(f->path, sizeof f->path, "%s", path);
  f->size = (size_t)st.st_size;
  if (f->size > 0) {
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      dp_err_set(err, 1, "cannot map '%s': %s", path, strerror(errno));
      close(fd);
      free(f);
      return NULL;
    }
    f->map = m;
    f->map_len = f->size;
    f->buf = m;
  } else {
    f->buf = (const uint8_t *)"";
  }
  close(fd);
  return parse(f, err);
}

void st_close(st_file *f) {
  if (!f) return;
  if (f->map) munmap(f->map, f->map_len);
  jv_free(f->hdr);
  free(f->t);
  free(f->by_name);
  free(f->meta_k);
  free(f->meta_v);
  free(f);
}

int st_count(const st_file *f) { return f->n; }
const st_tensor *st_at(const st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }
const char *st_path(const st_file *f) { return f->path; }

const st_tensor *st_find(const st_file *f, const char *name) {
  int lo = 0, hi = f->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(f->t[f->by_name[mid]].name, name);
    if (!c) return &f->t[f->by_name[mid]];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

const void *st_data(const st_file *f, const st_tensor *t) { return f->buf + f->data_start + t->begin; }
void st_copy(const st_file *f, const st_tensor *t, void *dst) {
  if (t->end > t->begin) memcpy(dst, st_data(f, t), (size_t)(t->end - t->begin));
}
int st_meta_count(const st_file *f) { return f->nmeta; }
const char *st_meta_key(const st_file *f, int i) { return i >= 0 && i < f->nmeta ? f->meta_k[i] : NULL; }
const char *st_meta_value(const st_file *f, int i) { return i >= 0 && i < f->nmeta ? f->meta_v[i] : NULL; }
const char *st_meta(const st_file *f, const char *key) {
  for (int i = 0; i < f->nmeta; i++)
    if (!strcmp(f->meta_k[i], key)) return f->meta_v[i];
  return NULL;
}

// ---- writer -------------------------------------------------------------------
int st_write(const char *path, const st_entry *e, int n, const char *const *meta, int nmeta, dp_err *err) {
  dp_err_clear(err);
  int64_t *bytes = dp_calloc((size_t)n + 1, sizeof(int64_t), "safetensors sizes");
  for (int i = 0; i < n; i++) {
    if (!e[i].name || !e[i].name[0] || !strcmp(e[i].name, "__metadata__") || e[i].ndim < 0 ||
        e[i].ndim > ST_MAX_DIMS || st_dtype_size(e[i].dtype) == 0) {
      dp_err_set(err, 1, "writing %s: tensor %d has a bad name, dtype or rank", path, i);
      free(bytes);
      return -1;
    }
    int64_t b = st_dtype_size(e[i].dtype);
    for (int d = 0; d < e[i].ndim; d++)
      if (e[i].shape[d] < 0 || __builtin_mul_overflow(b, e[i].shape[d], &b)) {
        dp_err_set(err, 1, "writing %s: tensor '%s' has a bad shape", path, e[i].name);
        free(bytes);
        return -1;
      }
    bytes[i] = b;
    for (int k = 0; k < i; k++)
      if (!strcmp(e[k].name, e[i].name)) {
        dp_err_set(err, 1, "writing %s: tensor '%s' given twice", path, e[i].name);
        free(bytes);
        return -1;
      }
  }
  char *hdr = NULL;
  size_t hdr_len = 0;
  FILE *hf = open_memstream(&hdr, &hdr_len);
  if (!hf) {
    dp_err_set(err, 1, "writing %s: open_memstream: %s", path, strerror(errno));
    free(bytes);
    return -1;
  }
  dp_json j;
  dp_json_init(&j, hf, 0);
  dp_json_begin_object(&j);
  if (nmeta > 0) {
    dp_json_key(&j, "__metadata__");
    dp_json_begin_object(&j);
    for (int m = 0; m < nmeta; m++) dp_json_kv_string(&j, meta[2 * m], meta[2 * m + 1] ? meta[2 * m + 1] : "");
    dp_json_end_object(&j);
  }
  // Order: dtype size descending, the caller's order within a size. Every
  // byte count is a multiple of its dtype size, so each offset is then a
  // multiple of the next tensor's dtype size (the reference writer orders
  // by alignment for the same reason).
  int *ord = dp_calloc((size_t)n + 1, sizeof(int), "safetensors order");
  int no = 0;
  for (int sz = 8; sz >= 1; sz /= 2)
    for (int i = 0; i < n; i++)
      if (st_dtype_size(e[i].dtype) == sz) ord[no++] = i;
  int64_t off = 0;
  for (int q = 0; q < n; q++) {
    int i = ord[q];
    dp_json_key(&j, e[i].name);
    dp_json_begin_object(&j);
    dp_json_kv_string(&j, "dtype", st_dtype_name(e[i].dtype));
    dp_json_kv_int_array(&j, "shape", e[i].shape, e[i].ndim);
    int64_t range[2] = {off, off + bytes[i]};
    dp_json_kv_int_array(&j, "data_offsets", range, 2);
    dp_json_end_object(&j);
    off += bytes[i];
  }
  dp_json_end_object(&j);
  if (fclose(hf) != 0 || !hdr) {
    dp_err_set(err, 1, "writing %s: building the header failed", path);
    free(hdr);
    free(bytes);
    free(ord);
    return -1;
  }
  // Spaces after the JSON so the data section starts 8-byte aligned (as the
  // reference writer does): tensors can then be mapped in place.
  size_t padded = (hdr_len + 7) / 8 * 8;
  dp_afile *af = dp_afile_open(path, err);
  if (!af) {
    free(hdr);
    free(bytes);
    free(ord);
    return -1;
  }
  FILE *o = dp_afile_stream(af);
  uint8_t le[8];
  for (int k = 0; k < 8; k++) le[k] = (uint8_t)((uint64_t)padded >> (8 * k));
  int ok = fwrite(le, 1, 8, o) == 8 && fwrite(hdr, 1, hdr_len, o) == hdr_len;
  for (size_t k = hdr_len; ok && k < padded; k++) ok = fputc(' ', o) != EOF;
  free(hdr);
  for (int q = 0; ok && q < n; q++) {
    int i = ord[q];
    if (bytes[i] > 0) ok = fwrite(e[i].data, 1, (size_t)bytes[i], o) == (size_t)bytes[i];
  }
  free(bytes);
  free(ord);
  if (!ok) {
    dp_err_set(err, 1, "writing %s: %s", path, strerror(errno ? errno : EIO));
    dp_afile_abort(af);
    return -1;
  }
  return dp_afile_commit(af, err);
}
