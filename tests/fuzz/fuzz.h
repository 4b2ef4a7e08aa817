// libFuzzer entry points of the fuzz targets (tests/fuzz/fuzz_*.c). Built
// with clang -fsanitize=fuzzer,address,undefined by tests/fuzz/run_fuzz.sh,
// or with standalone_main.c in the default build, where ctest replays the
// seed corpus and the saved reproducers (tests/fuzz/regress/<target>/).
#ifndef DP_FUZZ_H
#define DP_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

// The code under test reports bad input on stderr/stdout (that is its job);
// one line per input would drown the fuzzer. Sanitizer and libFuzzer reports
// write to file descriptor 2 directly (or through their own FILE), so only
// stdio's streams are redirected.
// FUZZ_VERBOSE=1 keeps them (to see why a seed is refused).
static inline void fuzz_quiet_stdio(void) {
  if (getenv("FUZZ_VERBOSE")) return;
  FILE *nul = fopen("/dev/null", "w");
  if (nul) {
    stderr = nul;
    stdout = nul;
  }
}
#endif
