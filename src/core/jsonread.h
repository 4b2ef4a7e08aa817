// A small JSON reader (whole document -> tree) for results.json files and
// safetensors headers. Strict RFC 8259 syntax: numbers follow the JSON
// grammar (no "+1", "01", ".5", NaN), strings may not hold raw control
// characters, \uXXXX escapes (surrogate pairs included) become UTF-8, and
// \u0000 is refused (it would cut a key short). Numbers are doubles; an
// integer literal (no fraction, no exponent) is flagged `integral`.
#ifndef DP_CORE_JSONREAD_H
#define DP_CORE_JSONREAD_H
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

typedef enum { JV_NULL = 0, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_type;

typedef struct jv {
  jv_type type;
  double num;               // JV_NUM, JV_BOOL (0/1)
  int integral;             // JV_NUM written without fraction or exponent
  char *str;                // JV_STR
  int n;                    // JV_ARR / JV_OBJ item count
  struct jv *items;         // (n) values
  char **keys;              // (n) for JV_OBJ
} jv;

// Parses text (length len). Returns NULL with err filled on a syntax error.
jv *jv_parse(const char *text, size_t len, char *err, int err_sz);
// Reads and parses a file; NULL with err filled on failure.
jv *jv_parse_file(const char *path, char *err, int err_sz);
// A file that may be absent. NULL with *rc = 1 when it does not exist, NULL
// with *rc = -1 and err set (code 2, bad input) when it cannot be read or
// parsed, else the tree with *rc = 0.
jv *jv_load_opt(const char *path, int *rc, dp_err *err);
void jv_free(jv *v);
const jv *jv_get(const jv *obj, const char *key);       // NULL if absent
// Dotted path lookup: "results.images_per_s".
const jv *jv_path(const jv *root, const char *path);
// Number at path, or dflt when absent / not a number (null).
double jv_num(const jv *root, const char *path, double dflt);
const char *jv_str(const jv *root, const char *path, const char *dflt);
// Copies the string at path into out (n bytes, cut), "" when absent.
void jv_copy_str(const jv *root, const char *path, char *out, size_t n);
#endif
