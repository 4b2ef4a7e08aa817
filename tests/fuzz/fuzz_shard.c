// Fuzz target: the shard reader (HDF5 metadata + records). The input is an
// HDF5 file, written to a file in /dev/shm (shard_open takes a path; HDF5
// does not open a memfd's /proc/self/fd path). shard_open must
// validate it (schema, attributes, offsets, labels, ids, metadata columns)
// or refuse it with a message; when it opens, every record is read through
// the same path the loader uses (pread or H5Dread) and its size checked.
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <hdf5.h>

#include "fuzz.h"
#include "input/shard.h"

static int g_fd = -1;
static char g_path[600];

static void cleanup(void) { unlink(g_path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_quiet_stdio();
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(g_path, sizeof g_path, "%s/dp_fuzz_shard_%d.h5", dir, (int)getpid());
  g_fd = open(g_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (g_fd < 0 || ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != (ssize_t)size) return 0;
  dp_err err;
  shard *s = shard_open(g_path, &err);
  if (!s) {
    if (!err.msg[0]) __builtin_trap();   // a refusal always says why
    fprintf(stderr, "refused: %s\n", err.msg);
    // A refused file leaves no HDF5 object open (a leaked id is a leaked file handle per shard).
    ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_ids != 0) {
      fprintf(stderr, "%zd HDF5 objects left open after a refusal\n", open_ids);
      __builtin_trap();
    }
    return 0;
  }
  fprintf(stderr, "opened: %lld records\n", (long long)s->n);
  int64_t cap = 1 << 20;
  uint8_t *buf = malloc((size_t)cap);
  for (int64_t i = 0; i < s->n; i++) {
    int64_t n = shard_record_size(s, i);
    if (n < 0 || n > s->blob_size) __builtin_trap();   // validated offsets
    if (n <= cap && shard_read_record(s, i, buf, cap, &err) != n) {
      if (!err.msg[0]) __builtin_trap();
    }
    shard_read_record_prefix(s, i, buf, 16, &err);
    if (s->labels[i] < 0 || s->labels[i] >= s->num_classes) __builtin_trap();
  }
  for (int c = 0; c < s->num_classes; c++)
    if (!s->class_names || !s->class_names[c]) __builtin_trap();
  free(buf);
  shard_close(s);
  if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) __builtin_trap();   // nor a closed shard
  return 0;
}
