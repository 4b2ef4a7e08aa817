// RFC 4180 CSV reader for `dptrain data pack --csv` (kept in its own file so
// the fuzz target can drive it alone).
//   * fields separated by ',', records by CRLF, LF or a lone CR;
//   * a field may be quoted: "a, b" keeps the comma, "say ""hi""" holds
//     quotes, and a quoted field may span lines;
//   * a UTF-8 byte-order mark at the start is skipped;
//   * refused with the line number: a NUL byte, a quote inside an unquoted
//     field, characters after a closing quote, an unterminated quoted field,
//     more than CSV_MAX_FIELDS fields in a record.
#ifndef DP_DATA_CSV_H
#define DP_DATA_CSV_H
#include <stddef.h>
#include <stdint.h>

#define CSV_MAX_FIELDS 4096

typedef struct {
  const char *buf;
  size_t len, pos;
  int64_t line;          // 1-based line where the current record started
  int64_t next_line;     // line the next record starts on
  char *text;            // unescaped fields, NUL-separated
  size_t text_len, text_cap;
  size_t *starts;        // (CSV_MAX_FIELDS) offsets into text
  char **fields;         // (CSV_MAX_FIELDS) pointers handed out
  char err[256];
} csv_reader;

void csv_init(csv_reader *r, const char *buf, size_t len);
// Next record: *fields points at its fields (valid until the next call).
// Returns the field count (>= 1), 0 at the end of the input, -1 on a syntax
// error (r->err names the line and the problem).
int csv_next(csv_reader *r, char ***fields);
void csv_free(csv_reader *r);
#endif
