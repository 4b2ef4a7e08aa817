#include "core/json.h"

#include <math.h>
#include <string.h>

#include "core/check.h"

void dp_json_init(dp_json *j, FILE *f, int pretty) {
  memset(j, 0, sizeof *j);
  j->f = f;
  j->pretty = pretty;
}

static void indent(dp_json *j) {
  if (!j->pretty) return;
  fputc('\n', j->f);
  for (int i = 0; i < j->depth; i++) fputs("  ", j->f);
}

// Called before every value or key: writes the separating comma and newline.
static void pre_item(dp_json *j) {
  if (j->after_key) {
    j->after_key = 0;
    return;
  }
  if (j->depth > 0) {
    if (j->count[j->depth]++ > 0) fputc(',', j->f);
    indent(j);
  }
}

static void open(dp_json *j, char c) {
  pre_item(j);
  fputc(c, j->f);
  if (j->depth + 1 >= DP_JSON_MAX_DEPTH) DP_FATAL("json", "flatten the document", "nesting deeper than %d", DP_JSON_MAX_DEPTH);
  j->depth++;
  j->count[j->depth] = 0;
}
static void close_(dp_json *j, char c) {
  int had = j->count[j->depth] > 0;
  j->depth--;
  if (had) indent(j);
  fputc(c, j->f);
  if (j->depth == 0 && j->pretty) fputc('\n', j->f);
}
void dp_json_begin_object(dp_json *j) { open(j, '{'); }
void dp_json_end_object(dp_json *j) { close_(j, '}'); }
void dp_json_begin_array(dp_json *j) { open(j, '['); }
void dp_json_end_array(dp_json *j) { close_(j, ']'); }

void dp_json_escape(const char *s, char *out, size_t outsz) {
  size_t o = 0;
  if (!outsz) return;
  for (; s && *s && o + 7 < outsz; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else if (c == '\t') {
      out[o++] = '\\';
      out[o++] = 't';
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, outsz - o, "\\u%04x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  out[o] = 0;
}

static void write_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c == '\n') fputs("\\n", f);
    else if (c == '\t') fputs("\\t", f);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

void dp_json_key(dp_json *j, const char *key) {
  pre_item(j);
  write_str(j->f, key);
  fputs(j->pretty ? ": " : ":", j->f);
  j->after_key = 1;
}
void dp_json_string(dp_json *j, const char *s) {
  pre_item(j);
  if (s) write_str(j->f, s);
  else fputs("null", j->f);
}
void dp_json_double(dp_json *j, double v) {
  pre_item(j);
  if (!isfinite(v)) fputs("null", j->f);
  else fprintf(j->f, "%.17g", v);
}
void dp_json_int(dp_json *j, int64_t v) {
  pre_item(j);
  fprintf(j->f, "%lld", (long long)v);
}
void dp_json_bool(dp_json *j, int v) {
  pre_item(j);
  fputs(v ? "true" : "false", j->f);
}
void dp_json_null(dp_json *j) {
  pre_item(j);
  fputs("null", j->f);
}
void dp_json_kv_string(dp_json *j, const char *k, const char *v) { dp_json_key(j, k); dp_json_string(j, v); }
void dp_json_kv_double(dp_json *j, const char *k, double v) { dp_json_key(j, k); dp_json_double(j, v); }
void dp_json_kv_int(dp_json *j, const char *k, int64_t v) { dp_json_key(j, k); dp_json_int(j, v); }
void dp_json_kv_bool(dp_json *j, const char *k, int v) { dp_json_key(j, k); dp_json_bool(j, v); }
void dp_json_kv_double_array(dp_json *j, const char *k, const double *v, int64_t n) {
  dp_json_key(j, k);
  dp_json_begin_array(j);
  int p = j->pretty;
  j->pretty = 0;
  for (int64_t i = 0; i < n; i++) dp_json_double(j, v[i]);
  j->depth--;
  fputc(']', j->f);
  j->pretty = p;
}
void dp_json_kv_int_array(dp_json *j, const char *k, const int64_t *v, int64_t n) {
  dp_json_key(j, k);
  dp_json_begin_array(j);
  int p = j->pretty;
  j->pretty = 0;
  for (int64_t i = 0; i < n; i++) dp_json_int(j, v[i]);
  j->depth--;
  fputc(']', j->f);
  j->pretty = p;
}
