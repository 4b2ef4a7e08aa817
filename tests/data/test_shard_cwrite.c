// Writes shards with the C writer (read back here, then by h5py in
// data_h5py_read), and checks the reader: values, both read paths, many
// threads reading at once, shard_glob, and the writer's byte determinism.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "input/shard.h"
#include "testutil.h"

#define N 257
static int64_t rec_len(int64_t i) { return 5 + (i * 37) % 300; }
static uint8_t rec_byte(int64_t i, int64_t k) { return (uint8_t)((i * 13 + k * 7) & 255); }
static int32_t meta_val(int64_t i, int c) { return (i + c) % 9 == 0 ? -1 : (int32_t)(i * 10 + c); }

static void write_shard(const char *path) {
  const char *names[4] = {"ok", "blurry", "\xc3\xbc" "ber", "w m"};
  shard_writer_cfg cfg = {SHARD_CODEC_JPEG, 4, names, 0, 0, 0, NULL};
  dp_err err;
  shard_writer *w = shard_writer_create(path, &cfg, &err);
  TU_CHECK(w != NULL, "%s", err.msg);
  if (!w) return;
  uint8_t buf[400];
  for (int64_t i = 0; i < N; i++) {
    for (int64_t k = 0; k < rec_len(i); k++) buf[k] = rec_byte(i, k);
    int32_t meta[META_NCOLS];
    for (int c = 0; c < META_NCOLS; c++) meta[c] = meta_val(i, c);
    TU_CHECK(shard_writer_add(w, buf, rec_len(i), (int32_t)(i % 4), 5000000000LL + i, meta, &err) == 0, "%s", err.msg);
  }
  TU_CHECK(shard_writer_add(w, buf, 3, 4, 0, NULL, &err) != 0, "label 4 of 4 classes must be refused");
  TU_CHECK(shard_writer_count(w) == N, "count");
  TU_CHECK(shard_writer_close(w, &err) == 0, "%s", err.msg);
}

typedef struct {
  const shard *s;
  int tid, bad;
} th_arg;

static void *reader(void *p) {
  th_arg *a = p;
  uint8_t buf[400];
  dp_err err;
  for (int rep = 0; rep < 20; rep++)
    for (int64_t i = (a->tid * 7 + rep) % N, k = 0; k < N; k++, i = (i + 13) % N) {
      int64_t n = shard_read_record(a->s, i, buf, sizeof buf, &err);
      if (n != rec_len(i)) { a->bad++; continue; }
      for (int64_t j = 0; j < n; j++)
        if (buf[j] != rec_byte(i, j)) { a->bad++; break; }
    }
  return NULL;
}

static void check_shard(const char *path, int force_h5) {
  dp_err err;
  shard *s = shard_open(path, &err);
  TU_CHECK(s != NULL, "%s", err.msg);
  if (!s) return;
  if (force_h5) TU_CHECK(shard_force_h5dread(s, &err) == 0, "%s", err.msg);
  else TU_CHECK(s->fd >= 0 && s->blob_file_offset > 0, "contiguous blob must use pread");
  TU_CHECK(s->n == N && s->num_classes == 4 && s->codec == SHARD_CODEC_JPEG && s->schema_version == 1, "header");
  TU_CHECK(!strcmp(s->class_names[2], "\xc3\xbc" "ber") && !strcmp(s->class_names[3], "w m"), "class names");
  int bad = 0;
  for (int64_t i = 0; i < N; i++) {
    bad += s->labels[i] != i % 4 || s->ids[i] != 5000000000LL + i || shard_record_size(s, i) != rec_len(i);
    for (int c = 0; c < META_NCOLS; c++) bad += !s->meta[c] || s->meta[c][i] != meta_val(i, c);
  }
  TU_CHECK(bad == 0, "%d label/id/meta mismatches", bad);
  uint8_t small[4];
  TU_CHECK(shard_read_record_prefix(s, 10, small, 3, &err) == 3 && small[0] == rec_byte(10, 0) &&
               small[2] == rec_byte(10, 2), "prefix read");
  TU_CHECK(shard_read_record_prefix(s, 0, small, 4, &err) == 4, "prefix read capped by cap");
  TU_CHECK(shard_read_record(s, 1, small, sizeof small, &err) < 0 && strstr(err.msg, path), "small buffer refused");
  TU_CHECK(shard_read_record(s, N, small, sizeof small, &err) < 0, "index N refused");
  pthread_t th[6];
  th_arg args[6];
  for (int t = 0; t < 6; t++) {
    args[t] = (th_arg){s, t, 0};
    pthread_create(&th[t], NULL, reader, &args[t]);
  }
  for (int t = 0; t < 6; t++) {
    pthread_join(th[t], NULL);
    TU_CHECK(args[t].bad == 0, "thread %d (%s path): %d bad reads", t, force_h5 ? "H5Dread" : "pread", args[t].bad);
  }
  shard_close(s);
}

static int same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int same = fa && fb;
  while (same) {
    int ca = fgetc(fa), cb = fgetc(fb);
    if (ca != cb) same = 0;
    if (ca == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

int main(void) {
  char dir[1024], p1[1100], p2[1100], p3[1100];
  snprintf(dir, sizeof dir, "%s/data", tu_fixture_dir());
  mkdir(dir, 0777);
  snprintf(p1, sizeof p1, "%s/c_written.h5", dir);
  snprintf(p2, sizeof p2, "%s/c_written_again.h5", dir);
  write_shard(p1);
  write_shard(p2);
  TU_CHECK(same_file(p1, p2), "same content must give the same file bytes");
  remove(p2);
  check_shard(p1, 0);
  check_shard(p1, 1);
  printf("HDF5 library thread-safe: %s\n", shard_h5_threadsafe() ? "yes" : "no");

  // Raw codec shard (also read by h5py_read.py).
  snprintf(p3, sizeof p3, "%s/c_written_raw.h5", dir);
  shard_writer_cfg rc = {SHARD_CODEC_RAW, 2, NULL, 3, 4, 1, NULL};
  dp_err err;
  shard_writer *w = shard_writer_create(p3, &rc, &err);
  TU_CHECK(w != NULL, "%s", err.msg);
  uint8_t px[12];
  for (int i = 0; w && i < 10; i++) {
    for (int k = 0; k < 12; k++) px[k] = (uint8_t)((i + k) & 255);
    shard_writer_add(w, px, 12, i % 2, i, NULL, &err);
  }
  if (w) TU_CHECK(shard_writer_close(w, &err) == 0, "%s", err.msg);
  shard *s = shard_open(p3, &err);
  TU_CHECK(s && s->codec == SHARD_CODEC_RAW && s->raw_h == 3 && s->raw_w == 4 && s->raw_c == 1 && s->n == 10 &&
               s->meta[0] == NULL && !strcmp(s->class_names[1], "class_1"),
           "raw shard header: %s", s ? "" : err.msg);
  shard_close(s);

  // An empty shard (a split with no records) is valid.
  char p4[1100];
  snprintf(p4, sizeof p4, "%s/c_written_empty.h5", dir);
  w = shard_writer_create(p4, &rc, &err);
  TU_CHECK(w && shard_writer_close(w, &err) == 0, "empty shard: %s", err.msg);
  s = shard_open(p4, &err);
  TU_CHECK(s && s->n == 0 && s->blob_size == 0, "empty shard open: %s", s ? "" : err.msg);
  shard_close(s);
  remove(p4);

  // Glob: pattern, comma list, duplicates removed, sorted; nothing matched = 0.
  char pat[2400], **paths = NULL;
  snprintf(pat, sizeof pat, "%s/c_written*.h5,%s", dir, p1);
  int n = shard_glob(pat, &paths);
  TU_CHECK(n == 2 && !strcmp(paths[0], p1) && !strcmp(paths[1], p3), "glob gave %d", n);
  shard_paths_free(paths, n);
  snprintf(pat, sizeof pat, "%s/nothing-*.h5", dir);
  TU_CHECK(shard_glob(pat, &paths) == 0 && paths == NULL, "empty glob");
  // Writer refuses what it cannot create.
  TU_CHECK(shard_writer_create("/nonexistent-dir/x.h5", &rc, &err) == NULL && strstr(err.msg, "/nonexistent-dir/x.h5"),
           "writer error names the file");
  return tu_finish("test_shard_cwrite");
}
