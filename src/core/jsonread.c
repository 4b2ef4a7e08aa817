#include "core/jsonread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"

typedef struct {
  const char *s, *end;
  char *err;
  int err_sz;
  int failed;
  int depth;
} jparser;

static void fail(jparser *p, const char *msg) {
  if (!p->failed) snprintf(p->err, p->err_sz, "%s", msg);
  p->failed = 1;
}

static void skip_ws(jparser *p) {
  while (p->s < p->end && (*p->s == ' ' || *p->s == '\n' || *p->s == '\r' || *p->s == '\t')) p->s++;
}

// Four hex digits of a \u escape; -1 if they are not hex.
static long hex4(jparser *p) {
  if (p->end - p->s < 4) return -1;
  long v = 0;
  for (int k = 0; k < 4; k++) {
    char h = *p->s++;
    int d = h >= '0' && h <= '9' ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

static char *parse_string(jparser *p) {
  if (p->s >= p->end || *p->s != '"') {
    fail(p, "expected string");
    return NULL;
  }
  p->s++;
  size_t cap = 16, n = 0;
  char *out = dp_malloc(cap, "json");
  while (p->s < p->end && *p->s != '"') {
    unsigned char c = (unsigned char)*p->s++;
    char enc[4];
    int ne = 1;
    enc[0] = (char)c;
    if (c < 0x20) {   // JSON forbids raw control characters in strings
      fail(p, "control character in a string");
      free(out);
      return NULL;
    }
    if (c == '\\') {
      if (p->s >= p->end) break;
      char e = *p->s++;
      switch (e) {
        case 'n': enc[0] = '\n'; break;
        case 't': enc[0] = '\t'; break;
        case 'r': enc[0] = '\r'; break;
        case 'b': enc[0] = '\b'; break;
        case 'f': enc[0] = '\f'; break;
        case '"': case '\\': case '/': enc[0] = e; break;
        case 'u': {
          long v = hex4(p);
          if (v >= 0xD800 && v <= 0xDBFF) {   // surrogate pair -> one code point
            long lo = p->end - p->s >= 2 && p->s[0] == '\\' && p->s[1] == 'u' ? (p->s += 2, hex4(p)) : -1;
            v = lo >= 0xDC00 && lo <= 0xDFFF ? 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00) : -1;
          } else if (v >= 0xDC00 && v <= 0xDFFF) {
            v = -1;
          }
          // A NUL would cut the C string short (two different keys could
          // then compare equal): refused like a bad escape.
          if (v <= 0) {
            fail(p, "bad \\u escape (not hex, a lone surrogate, or \\u0000)");
            free(out);
            return NULL;
          }
          if (v < 0x80) enc[0] = (char)v;
          else if (v < 0x800) enc[0] = (char)(0xC0 | (v >> 6)), enc[1] = (char)(0x80 | (v & 63)), ne = 2;
          else if (v < 0x10000)
            enc[0] = (char)(0xE0 | (v >> 12)), enc[1] = (char)(0x80 | ((v >> 6) & 63)), enc[2] = (char)(0x80 | (v & 63)), ne = 3;
          else
            enc[0] = (char)(0xF0 | (v >> 18)), enc[1] = (char)(0x80 | ((v >> 12) & 63)),
            enc[2] = (char)(0x80 | ((v >> 6) & 63)), enc[3] = (char)(0x80 | (v & 63)), ne = 4;
          break;
        }
        default:
          fail(p, "bad escape in a string");
          free(out);
          return NULL;
      }
    }
    if (n + (size_t)ne + 1 > cap) {
      while (n + (size_t)ne + 1 > cap) cap *= 2;
      out = dp_realloc(out, cap, "json");
    }
    memcpy(out + n, enc, (size_t)ne);
    n += (size_t)ne;
  }
  if (p->s >= p->end) {
    fail(p, "unterminated string");
    free(out);
    return NULL;
  }
  p->s++;
  out[n] = 0;
  return out;
}

// JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
// Sets *integral when there is neither a fraction nor an exponent.
static int number_ok(const char *b, int *integral) {
  const char *q = b;
  if (*q == '-') q++;
  if (*q == '0') q++;
  else if (*q >= '1' && *q <= '9') while (*q >= '0' && *q <= '9') q++;
  else return 0;
  *integral = 1;
  if (*q == '.') {
    *integral = 0;
    q++;
    if (!(*q >= '0' && *q <= '9')) return 0;
    while (*q >= '0' && *q <= '9') q++;
  }
  if (*q == 'e' || *q == 'E') {
    *integral = 0;
    q++;
    if (*q == '+' || *q == '-') q++;
    if (!(*q >= '0' && *q <= '9')) return 0;
    while (*q >= '0' && *q <= '9') q++;
  }
  return *q == 0;
}

static void parse_value(jparser *p, jv *v);

static void push_item(jv *v, int *cap) {
  if (v->n == *cap) {
    *cap = *cap ? 2 * *cap : 8;
    v->items = dp_realloc(v->items, (size_t)*cap * sizeof(jv), "json");
    if (v->type == JV_OBJ) v->keys = dp_realloc(v->keys, (size_t)*cap * sizeof(char *), "json");
  }
  memset(&v->items[v->n], 0, sizeof(jv));
  if (v->type == JV_OBJ) v->keys[v->n] = NULL;
  v->n++;
}

static void parse_value(jparser *p, jv *v) {
  memset(v, 0, sizeof *v);
  skip_ws(p);
  if (p->s >= p->end) return fail(p, "unexpected end");
  if (++p->depth > 64) return fail(p, "nesting too deep");
  char c = *p->s;
  if (c == '{' || c == '[') {
    v->type = c == '{' ? JV_OBJ : JV_ARR;
    char close = c == '{' ? '}' : ']';
    p->s++;
    int cap = 0;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
      p->s++;
      p->depth--;
      return;
    }
    while (!p->failed) {
      push_item(v, &cap);
      if (v->type == JV_OBJ) {
        skip_ws(p);
        v->keys[v->n - 1] = parse_string(p);
        if (p->failed) break;
        skip_ws(p);
        if (p->s >= p->end || *p->s != ':') return fail(p, "expected ':'");
        p->s++;
      }
      parse_value(p, &v->items[v->n - 1]);
      if (p->failed) break;
      skip_ws(p);
      if (p->s < p->end && *p->s == ',') {
        p->s++;
        continue;
      }
      if (p->s < p->end && *p->s == close) {
        p->s++;
        break;
      }
      return fail(p, "expected ',' or closing bracket");
    }
  } else if (c == '"') {
    v->type = JV_STR;
    v->str = parse_string(p);
  } else if (p->end - p->s >= 4 && !strncmp(p->s, "true", 4)) {
    v->type = JV_BOOL, v->num = 1, p->s += 4;
  } else if (p->end - p->s >= 5 && !strncmp(p->s, "false", 5)) {
    v->type = JV_BOOL, v->num = 0, p->s += 5;
  } else if (p->end - p->s >= 4 && !strncmp(p->s, "null", 4)) {
    v->type = JV_NULL, p->s += 4;
  } else {
    char buf[64];
    size_t k = 0;
    while (p->s < p->end && k < sizeof buf - 1 && *p->s && strchr("+-0123456789.eE", *p->s)) buf[k++] = *p->s++;
    buf[k] = 0;
    char *end;
    errno = 0;
    v->type = JV_NUM;
    if (!k || !number_ok(buf, &v->integral)) return fail(p, "bad value");
    v->num = strtod(buf, &end);
    if (*end) return fail(p, "bad value");
  }
  p->depth--;
}

jv *jv_parse(const char *text, size_t len, char *err, int err_sz) {
  jparser p = {text, text + len, err, err_sz, 0, 0};
  jv *v = dp_calloc(1, sizeof *v, "json");
  parse_value(&p, v);
  if (!p.failed) {
    skip_ws(&p);
    if (p.s != p.end) fail(&p, "trailing characters");
  }
  if (p.failed) {
    char what[128];
    snprintf(what, sizeof what, "%s", err);
    snprintf(err, err_sz, "JSON syntax error near byte %ld: %s", (long)(p.s - text), what);
    jv_free(v);
    return NULL;
  }
  return v;
}

jv *jv_parse_file(const char *path, char *err, int err_sz) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, err_sz, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = dp_malloc(cap, "json file");
  size_t got;
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) cap *= 2, buf = dp_realloc(buf, cap, "json file");
  }
  fclose(f);
  jv *v = jv_parse(buf, n, err, err_sz);
  if (!v) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", err);
    snprintf(err, err_sz, "%s: %s", path, tmp);
  }
  free(buf);
  return v;
}

static void jv_free_inner(jv *v) {
  if (v->type == JV_STR) free(v->str);
  for (int i = 0; i < v->n; i++) {
    jv_free_inner(&v->items[i]);
    if (v->type == JV_OBJ) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
}

void jv_free(jv *v) {
  if (!v) return;
  jv_free_inner(v);
  free(v);
}

const jv *jv_get(const jv *obj, const char *key) {
  if (!obj || obj->type != JV_OBJ) return NULL;
  for (int i = 0; i < obj->n; i++)
    if (obj->keys[i] && !strcmp(obj->keys[i], key)) return &obj->items[i];
  return NULL;
}

const jv *jv_path(const jv *root, const char *path) {
  char key[128];
  const jv *cur = root;
  while (cur && *path) {
    const char *dot = strchr(path, '.');
    size_t k = dot ? (size_t)(dot - path) : strlen(path);
    if (k >= sizeof key) return NULL;
    memcpy(key, path, k);
    key[k] = 0;
    cur = jv_get(cur, key);
    path += k + (dot ? 1 : 0);
  }
  return cur;
}

double jv_num(const jv *root, const char *path, double dflt) {
  const jv *v = jv_path(root, path);
  return v && (v->type == JV_NUM || v->type == JV_BOOL) ? v->num : dflt;
}

const char *jv_str(const jv *root, const char *path, const char *dflt) {
  const jv *v = jv_path(root, path);
  return v && v->type == JV_STR ? v->str : dflt;
}

void jv_copy_str(const jv *root, const char *path, char *out, size_t n) {
  snprintf(out, n, "%s", jv_str(root, path, ""));
}

jv *jv_load_opt(const char *path, int *rc, dp_err *err) {
  *rc = 1;
  if (access(path, F_OK) != 0 && errno == ENOENT) return NULL;
  char e[512];
  jv *v = jv_parse_file(path, e, sizeof e);
  *rc = v ? 0 : -1;
  if (!v) dp_err_set(err, 2, "%s", e);
  return v;
}
