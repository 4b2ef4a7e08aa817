// Building the report's sentences: formatted text into fixed buffers where
// truncating a long source description is acceptable (it stays readable and
// NUL-terminated), without a warning per call.
#ifndef DP_STUDY_TEXT_H
#define DP_STUDY_TEXT_H
#include <stddef.h>

void tx_set(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tx_append(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
