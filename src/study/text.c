#include "study/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void tx_set(char *buf, size_t n, const char *fmt, ...) {
  if (!n) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, n, fmt, ap);
  va_end(ap);
}

void tx_append(char *buf, size_t n, const char *fmt, ...) {
  size_t l = strnlen(buf, n);
  if (l + 1 >= n) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + l, n - l, fmt, ap);
  va_end(ap);
}
