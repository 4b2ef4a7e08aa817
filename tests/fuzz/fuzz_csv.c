// Fuzz target: the RFC 4180 reader `dptrain data pack --csv` uses
// (data/csv.h): every record of the input, every field touched.
#include <string.h>

#include "data/csv.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_quiet_stdio();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  csv_reader r;
  csv_init(&r, (const char *)data, size);
  char **f;
  int n;
  size_t total = 0;
  long records = 0;
  while ((n = csv_next(&r, &f)) > 0) {
    if (n > CSV_MAX_FIELDS) __builtin_trap();
    for (int i = 0; i < n; i++) total += strlen(f[i]);
    // Unescaped text never exceeds the input.
    if (total > size) __builtin_trap();
    records++;
  }
  if (n < 0 && !r.err[0]) __builtin_trap();   // an error always has a message
  csv_free(&r);
  return 0;
}
