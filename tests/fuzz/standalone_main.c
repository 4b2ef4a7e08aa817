// Runs a fuzz target over files without libFuzzer (gcc builds, ctest): each
// argument is a file or a directory of files (not recursive), fed to
// LLVMFuzzerTestOneInput in sorted order. A crash or sanitizer report fails
// the run, which is how the seed corpus and the reproducers of fixed bugs
// are replayed in the default test suite.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "standalone: cannot open %s\n", path);
    return -1;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *b = malloc(cap);
  size_t got;
  while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) b = realloc(b, cap *= 2);
  }
  fclose(f);
  if (!b) return -1;
  // An exact-size copy, so reads past the end are caught by ASan as they
  // would be under libFuzzer.
  uint8_t *exact = malloc(n ? n : 1);
  memcpy(exact, b, n);
  free(b);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  long count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "standalone: %s does not exist\n", argv[i]);
      return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (run_file(argv[i])) return 2;
      count++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    if (!d) return 2;
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
      if (e->d_name[0] == '.') continue;
      names = realloc(names, (size_t)(n + 1) * sizeof *names);
      names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp);
    for (int k = 0; k < n; k++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
      if (run_file(path)) return 2;
      count++;
      free(names[k]);
    }
    free(names);
  }
  // stdout may be redirected by the target; the verdict goes to fd 2.
  fprintf(fdopen(2, "w"), "standalone: %ld input(s) ran without a crash\n", count);
  return count > 0 ? 0 : 2;
}
