// Fuzz target: the safetensors loader. Every input goes through the
// validating reader (st_open_mem: header length, JSON, dtypes, offsets,
// coverage), every tensor and metadata entry it accepts is read, and the
// same bytes are loaded as model weights (weights_read_meta + weights_load
// into a tiny CNN: metadata integers, shapes vs the model, NaN checks).
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "fuzz.h"
#include "fuzz_model.h"
#include "train/weights.h"

static nn_graph *g_model;
static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_quiet_stdio();
  model_cfg mc;
  g_model = fuzz_tiny_model(&mc);
  // The weights API takes a path: a memfd gives one without touching a disk.
  g_fd = memfd_create("fuzz_safetensors", 0);
  snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dp_err err;
  st_file *f = st_open_mem(data, size, "fuzz", &err);
  if (!f) fprintf(stderr, "refused: %s\n", err.msg);
  if (f) {
    uint64_t sum = 0;
    for (int i = 0; i < st_count(f); i++) {
      const st_tensor *t = st_at(f, i);
      // Everything the reader accepted must lie inside the buffer: touch
      // the first and last byte of each tensor (ASan checks the rest).
      if (t->end > t->begin) {
        const uint8_t *p = st_data(f, t);
        sum += p[0] + p[t->end - t->begin - 1];
      }
      if (st_find(f, t->name) != t) abort();   // lookup must find the same entry
    }
    for (int m = 0; m < st_meta_count(f); m++) sum += strlen(st_meta_key(f, m)) + strlen(st_meta_value(f, m));
    st_close(f);
    if (sum == 1) write(-1, "", 0);   // keep sum alive
  }
  if (g_fd >= 0 && ftruncate(g_fd, 0) == 0 && pwrite(g_fd, data, size, 0) == (ssize_t)size) {
    char e[512];
    weights_meta wm;
    if (weights_read_meta(g_path, &wm, e, sizeof e) == 0) weights_meta_free(&wm);
    if (weights_load(g_path, g_model, 0, e, sizeof e) == 0) fprintf(stderr, "weights loaded\n");
    else fprintf(stderr, "weights refused: %s\n", e);
  }
  return 0;
}
