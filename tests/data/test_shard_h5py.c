// Reads shards h5py wrote to the spec (h5py_write.py): contiguous (pread),
// chunked+gzip (H5Dread fallback), fixed/variable string ids; and checks that
// every bad shard is refused with a message naming the file and, where the
// fault is in a record, that record.
#include <stdio.h>
#include <string.h>

#include "input/shard.h"
#include "testutil.h"

#define N 40
static char dir[1024];

static void check_good(const char *name, int want_pread, int string_ids) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  dp_err err;
  shard *s = shard_open(path, &err);
  TU_CHECK(s != NULL, "%s: %s", name, err.msg);
  if (!s) return;
  TU_CHECK(s->n == N && s->num_classes == 3 && s->codec == SHARD_CODEC_JPEG, "%s header", name);
  TU_CHECK(!strcmp(s->class_names[0], "alpha") && !strcmp(s->class_names[2], "gamma"), "%s names", name);
  TU_CHECK((s->fd >= 0) == want_pread, "%s: read path %s", name, s->fd >= 0 ? "pread" : "H5Dread");
  uint8_t buf[256];
  int bad = 0;
  for (int64_t i = 0; i < N; i++) {
    int64_t n = shard_read_record(s, i, buf, sizeof buf, &err);
    if (n != 10 + 3 * i) { bad++; continue; }
    for (int64_t k = 0; k < n; k++) bad += buf[k] != (uint8_t)((7 * i + k) & 255);
    bad += s->labels[i] != i % 3;
    char id[16];
    snprintf(id, sizeof id, "rec%lld", (long long)i);
    bad += s->ids[i] != (string_ids ? shard_hash_id(id, strlen(id)) : 1000 + i);
    bad += s->meta[META_CATEGORY][i] != (i % 4 == 0 ? -1 : i % 5);
    bad += s->meta[META_WIDTH][i] != 100 + i;
  }
  TU_CHECK(s->meta[META_HEIGHT] == NULL && s->meta[META_SELLER_TIER] == NULL, "%s: absent columns NULL", name);
  TU_CHECK(bad == 0, "%s: %d mismatches", name, bad);
  shard_close(s);
}

static void check_bad(const char *name, const char *want1, const char *want2) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  dp_err err;
  dp_err_clear(&err);
  shard *s = shard_open(path, &err);
  TU_CHECK(s == NULL, "%s must be refused", name);
  TU_CHECK(err.code != 0 && strstr(err.msg, path), "%s: message must name the file: '%s'", name, err.msg);
  TU_CHECK(strstr(err.msg, want1), "%s: message '%s' lacks '%s'", name, err.msg, want1);
  if (want2) TU_CHECK(strstr(err.msg, want2), "%s: message '%s' lacks '%s'", name, err.msg, want2);
  printf("%-26s -> %s\n", name, err.msg);
  shard_close(s);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/data", tu_fixture_dir());
  char probe[1200];
  snprintf(probe, sizeof probe, "%s/good_contig.h5", dir);
  if (!tu_file_exists(probe)) {
    fprintf(stderr, "fixture %s missing (data_h5py_write did not run)\n", probe);
    return 1;
  }
  check_good("good_contig.h5", 1, 0);
  check_good("good_chunked.h5", 0, 1);
  check_good("good_vlen_ids.h5", 1, 1);
  check_bad("bad_truncated.h5", "HDF5", NULL);
  check_bad("bad_not_hdf5.h5", "not an HDF5 file", NULL);
  check_bad("bad_empty.h5", "not an HDF5 file", NULL);
  check_bad("bad_offsets_past.h5", "record 12 ", "past the end");
  check_bad("bad_offsets_nonmono.h5", "record 7 ", "not monotone");
  check_bad("bad_label.h5", "record 21 ", "label 3");
  check_bad("bad_missing_labels.h5", "'labels' is missing", NULL);
  check_bad("bad_missing_bytes.h5", "'/images/bytes' is missing", NULL);
  check_bad("bad_schema.h5", "unknown schema_version 7", NULL);
  check_bad("bad_codec.h5", "unknown codec 'webp'", NULL);
  char missing[1200];
  snprintf(missing, sizeof missing, "%s/does_not_exist.h5", dir);
  dp_err err;
  TU_CHECK(shard_open(missing, &err) == NULL && strstr(err.msg, "does_not_exist.h5"), "missing file");
  return tu_finish("test_shard_h5py");
}
