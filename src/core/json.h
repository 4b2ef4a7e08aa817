// Small streaming JSON writer: objects, arrays, scalars, with commas and
// indentation handled. Non-finite doubles are written as null.
#ifndef DP_CORE_JSON_H
#define DP_CORE_JSON_H
#include <stdint.h>
#include <stdio.h>

#define DP_JSON_MAX_DEPTH 32
typedef struct {
  FILE *f;
  int depth;
  int count[DP_JSON_MAX_DEPTH];   // items written at each depth
  int pretty;
  int after_key;
} dp_json;

void dp_json_init(dp_json *j, FILE *f, int pretty);
void dp_json_begin_object(dp_json *j);
void dp_json_end_object(dp_json *j);
void dp_json_begin_array(dp_json *j);
void dp_json_end_array(dp_json *j);
void dp_json_key(dp_json *j, const char *key);
void dp_json_string(dp_json *j, const char *s);
void dp_json_double(dp_json *j, double v);
void dp_json_int(dp_json *j, int64_t v);
void dp_json_bool(dp_json *j, int v);
void dp_json_null(dp_json *j);
// key + value shorthands
void dp_json_kv_string(dp_json *j, const char *k, const char *v);
void dp_json_kv_double(dp_json *j, const char *k, double v);
void dp_json_kv_int(dp_json *j, const char *k, int64_t v);
void dp_json_kv_bool(dp_json *j, const char *k, int v);
void dp_json_kv_double_array(dp_json *j, const char *k, const double *v, int64_t n);
void dp_json_kv_int_array(dp_json *j, const char *k, const int64_t *v, int64_t n);
// Escape s into out (always NUL-terminated).
void dp_json_escape(const char *s, char *out, size_t outsz);
#endif
