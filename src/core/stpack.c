#include "core/stpack.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void st_pack_init(st_pack *p) { memset(p, 0, sizeof *p); }

void st_pack_free(st_pack *p) {
  for (int i = 0; i < p->nowned; i++) free(p->owned[i]);
  free(p->owned);
  free(p->e);
  free(p->kv);
  memset(p, 0, sizeof *p);
}

static char *own(st_pack *p, char *s) {
  if (p->nowned == p->owncap) {
    p->owncap = p->owncap ? 2 * p->owncap : 64;
    p->owned = dp_realloc(p->owned, (size_t)p->owncap * sizeof(char *), "safetensors pack");
  }
  p->owned[p->nowned++] = s;
  return s;
}

static int64_t entry_bytes(const st_entry *e) {
  int64_t n = 1;
  for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
  return n * st_dtype_size(e->dtype);
}

void st_pack_add(st_pack *p, const char *name, st_dtype dt, int ndim, const int64_t *shape, const void *data) {
  if (ndim < 0 || ndim > ST_MAX_DIMS) DP_FATAL("building a safetensors file", "internal error", "tensor %s has %d dims", name, ndim);
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 64;
    p->e = dp_realloc(p->e, (size_t)p->cap * sizeof(st_entry), "safetensors pack");
  }
  st_entry *e = &p->e[p->n++];
  memset(e, 0, sizeof *e);
  e->name = own(p, dp_strdup(name));
  e->dtype = dt;
  e->ndim = ndim;
  for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
  e->data = data;
}

void st_pack_add_copy(st_pack *p, const char *name, st_dtype dt, int ndim, const int64_t *shape, const void *data) {
  st_pack_add(p, name, dt, ndim, shape, NULL);
  st_entry *e = &p->e[p->n - 1];
  int64_t b = entry_bytes(e);
  char *c = own(p, dp_malloc((size_t)(b > 0 ? b : 1), "safetensors snapshot"));
  if (b > 0) memcpy(c, data, (size_t)b);
  e->data = c;
}

void st_pack_meta_str(st_pack *p, const char *key, const char *value) {
  if (p->nmeta == p->metacap) {
    p->metacap = p->metacap ? 2 * p->metacap : 32;
    p->kv = dp_realloc(p->kv, (size_t)p->metacap * 2 * sizeof(char *), "safetensors metadata");
  }
  p->kv[2 * p->nmeta] = own(p, dp_strdup(key));
  p->kv[2 * p->nmeta + 1] = own(p, dp_strdup(value));
  p->nmeta++;
}

void st_pack_meta(st_pack *p, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) DP_FATAL("building safetensors metadata", "out of memory?", "vasprintf failed for %s", key);
  va_end(ap);
  st_pack_meta_str(p, key, s);
  free(s);
}

int64_t st_pack_data_bytes(const st_pack *p) {
  int64_t b = 0;
  for (int i = 0; i < p->n; i++) b += entry_bytes(&p->e[i]);
  return b;
}

static int cmp_entry_name(const void *a, const void *b) {
  return strcmp((*(const st_entry *const *)a)->name, (*(const st_entry *const *)b)->name);
}

uint32_t st_pack_data_crc32(const st_pack *p) {
  const st_entry **v = dp_calloc((size_t)p->n + 1, sizeof *v, "checksum order");
  for (int i = 0; i < p->n; i++) v[i] = &p->e[i];
  qsort(v, (size_t)p->n, sizeof *v, cmp_entry_name);
  uLong crc = crc32(0L, Z_NULL, 0);
  for (int i = 0; i < p->n; i++) {
    const unsigned char *d = v[i]->data;
    for (int64_t left = entry_bytes(v[i]); left > 0;) {
      uInt c = left > (1 << 30) ? (1u << 30) : (uInt)left;
      crc = crc32(crc, d, c);
      d += c;
      left -= c;
    }
  }
  free(v);
  return (uint32_t)crc;
}

int st_pack_write(const st_pack *p, const char *path, dp_err *err) {
  return st_write(path, p->e, p->n, p->kv, p->nmeta, err);
}
