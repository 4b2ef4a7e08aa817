// Fuzz target: the option-table parser (core/opts.h) as `dptrain train`
// uses it. First byte even: the rest is a config file (`key = value` lines:
// NUL bytes, long lines, quotes, comments, BOM); odd: the rest is a command
// line, one argument per '\n'-separated piece. train_config_check runs on
// whatever parsed.
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "train/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_quiet_stdio();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  train_config c;
  train_config_defaults(&c);
  const char *text = (const char *)data + 1;
  size_t n = size - 1;
  if ((data[0] & 1) == 0) {
    if (train_config_read_text(&c, text, n, "fuzz.ini") == 0) train_config_check(&c);
    return 0;
  }
  // argv: pieces split at '\n' (NULs end a piece early, as in a real argv).
  char *buf = malloc(n + 1);
  memcpy(buf, text, n);
  buf[n] = 0;
  char *args[64];
  int argc = 0;
  args[argc++] = "train";
  for (char *p = buf, *q; p && argc < 63; p = q) {
    q = strchr(p, '\n');
    if (q) *q++ = 0;
    // --config would read the named file and --help prints pages: both are
    // exercised by the config-text mode and the unit tests instead.
    if (strstr(p, "--config") || !strcmp(p, "--help") || !strcmp(p, "-h")) continue;
    args[argc++] = p;
  }
  args[argc] = NULL;
  if (train_config_parse(&c, argc, args) == 0) train_config_check(&c);
  free(buf);
  return 0;
}
