#include "data/csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

void csv_init(csv_reader *r, const char *buf, size_t len) {
  memset(r, 0, sizeof *r);
  r->buf = buf;
  r->len = len;
  if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) r->pos = 3;
  r->next_line = 1;
  r->starts = dp_calloc(CSV_MAX_FIELDS, sizeof(size_t), "csv fields");
  r->fields = dp_calloc(CSV_MAX_FIELDS, sizeof(char *), "csv fields");
}

void csv_free(csv_reader *r) {
  free(r->text);
  free(r->starts);
  free(r->fields);
  memset(r, 0, sizeof *r);
}

static void put(csv_reader *r, char c) {
  if (r->text_len + 1 >= r->text_cap) {
    r->text_cap = r->text_cap ? 2 * r->text_cap : 256;
    r->text = dp_realloc(r->text, r->text_cap, "csv field text");
  }
  r->text[r->text_len++] = c;
}

static int fail(csv_reader *r, const char *msg) {
  snprintf(r->err, sizeof r->err, "line %lld: %s", (long long)r->next_line, msg);
  return -1;
}

// Consumes a record terminator at pos (CRLF, LF or CR); returns 1 if one was there.
static int eat_eol(csv_reader *r) {
  if (r->pos < r->len && r->buf[r->pos] == '\r') {
    r->pos++;
    if (r->pos < r->len && r->buf[r->pos] == '\n') r->pos++;
    r->next_line++;
    return 1;
  }
  if (r->pos < r->len && r->buf[r->pos] == '\n') {
    r->pos++;
    r->next_line++;
    return 1;
  }
  return 0;
}

int csv_next(csv_reader *r, char ***fields) {
  if (r->pos >= r->len) return 0;
  r->line = r->next_line;
  r->text_len = 0;
  int n = 0;
  for (;;) {   // one field per iteration
    if (n >= CSV_MAX_FIELDS) return fail(r, "too many fields in one record");
    r->starts[n++] = r->text_len;
    if (r->pos < r->len && r->buf[r->pos] == '"') {
      r->pos++;
      for (;;) {
        if (r->pos >= r->len) return fail(r, "unterminated quoted field");
        char c = r->buf[r->pos++];
        if (c == 0) return fail(r, "NUL byte");
        if (c == '"') {
          if (r->pos < r->len && r->buf[r->pos] == '"') {   // "" = one quote
            put(r, '"');
            r->pos++;
            continue;
          }
          break;
        }
        if (c == '\n' || (c == '\r' && !(r->pos < r->len && r->buf[r->pos] == '\n'))) r->next_line++;
        put(r, c);
      }
      if (r->pos < r->len && r->buf[r->pos] != ',' && r->buf[r->pos] != '\n' && r->buf[r->pos] != '\r')
        return fail(r, "characters after a closing quote");
    } else {
      while (r->pos < r->len) {
        char c = r->buf[r->pos];
        if (c == ',' || c == '\n' || c == '\r') break;
        if (c == 0) return fail(r, "NUL byte");
        if (c == '"') return fail(r, "quote inside an unquoted field (quote the whole field)");
        put(r, c);
        r->pos++;
      }
    }
    put(r, 0);
    if (r->pos < r->len && r->buf[r->pos] == ',') {
      r->pos++;
      continue;
    }
    eat_eol(r);   // or the end of the input
    break;
  }
  for (int i = 0; i < n; i++) r->fields[i] = r->text + r->starts[i];
  *fields = r->fields;
  return n;
}
