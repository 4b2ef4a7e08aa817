// HDF5 image shards (schema v1, data/SCHEMA.md): open, validate, read records.
// A shard is opened once; records are then read from any thread with pread at
// the file offset of the contiguous /images/bytes dataset, or with H5Dread
// (serialised) when the dataset is chunked/compressed.
#ifndef DP_INPUT_SHARD_H
#define DP_INPUT_SHARD_H
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

#define SHARD_SCHEMA_VERSION 1
#define SHARD_MAX_CLASSES 1024
// Label of an unlabelled record (data/SCHEMA.md). Only shards opened with
// SHARD_OPEN_UNLABELLED (`dptrain score`) may hold it; training and
// evaluation refuse it as a schema error.
#define SHARD_LABEL_NONE (-1)
#define SHARD_OPEN_UNLABELLED 1

typedef enum { SHARD_CODEC_JPEG = 0, SHARD_CODEC_RAW = 1 } shard_codec;

// Metadata columns (/meta/<name>); missing values use SHARD_META_MISSING.
#define SHARD_META_MISSING (-1)
typedef enum {
  META_CATEGORY = 0, META_SELLER_TIER, META_IMAGE_SOURCE, META_UPLOAD_REGION,
  META_WIDTH, META_HEIGHT, META_NCOLS
} shard_meta_col;
extern const char *const shard_meta_names[META_NCOLS];

typedef struct {
  char path[1024];
  int64_t n;                    // records
  int64_t *offsets;             // (n + 1) byte offsets into /images/bytes
  int32_t *labels;              // (n)
  int64_t *ids;                 // (n) record ids (string ids are hashed, see SCHEMA.md)
  int32_t *meta[META_NCOLS];    // (n) each, or NULL when the column is absent
  int num_classes;
  char **class_names;           // (num_classes)
  shard_codec codec;
  int raw_h, raw_w, raw_c;      // image shape for codec=raw
  int schema_version;
  char augment_policy[16];      // optional root attribute (issue 12): the augmentation policy the
                                // dataset expects ("defects", "imagenet"), "" when absent
  // Read path.
  int fd;                       // for pread; -1 when using H5Dread
  int64_t blob_file_offset;     // H5Dget_offset of /images/bytes, or -1
  int64_t blob_size;
  int64_t file_h5;              // hid_t of the open file (H5Dread fallback)
  int64_t blob_ds;              // hid_t of /images/bytes (H5Dread fallback)
  struct shard_files *files;    // records are whole image files (input/shard_files.h); NULL for HDF5
} shard;

// Opens and validates: schema version known, offsets monotone and inside the
// blob, labels in [0, num_classes). On failure returns NULL and fills err with
// a message naming the file and the first bad record.
shard *shard_open(const char *path, dp_err *err);
// Same with flags: SHARD_OPEN_UNLABELLED also accepts label SHARD_LABEL_NONE.
shard *shard_open_ex(const char *path, int flags, dp_err *err);
void shard_close(shard *s);
// Reads record i's bytes into buf (capacity cap). Returns the byte count, or
// -1 with err set (I/O error, record too large for buf).
int64_t shard_read_record(const shard *s, int64_t i, uint8_t *buf, int64_t cap, dp_err *err);
// Reads the first min(size, cap) bytes of record i (e.g. a JPEG header for
// inspect). Returns the byte count, or -1 with err set.
int64_t shard_read_record_prefix(const shard *s, int64_t i, uint8_t *buf, int64_t cap, dp_err *err);
static inline int64_t shard_record_size(const shard *s, int64_t i) {
  return s->offsets[i + 1] - s->offsets[i];
}
// Compares two class-name lists. Returns 0 when equal (same count, same
// names in the same order); otherwise -1 with a message in msg naming the
// first difference, with what_a / what_b saying where each list came from.
int shard_class_names_diff(const char *const *a, int na, const char *what_a, const char *const *b, int nb,
                           const char *what_b, char *msg, size_t n);
// Expands a glob ("dir/train-*.h5") or comma-separated list into sorted paths.
// Returns the count (0 if nothing matched); *paths is malloc'd (free with shard_paths_free).
int shard_glob(const char *pattern, char ***paths);
void shard_paths_free(char **paths, int n);
// String record ids (fixed or variable-length /ids) are mapped to int64 with
// FNV-1a 64 over the bytes up to the first NUL, shifted right by one (>= 0).
int64_t shard_hash_id(const char *s, size_t len);
// 1 if the HDF5 library is built thread-safe (all HDF5 calls here are
// serialised by one mutex either way).
int shard_h5_threadsafe(void);
// Switches s to the H5Dread read path (benchmarks, tests). Returns 0 or -1.
int shard_force_h5dread(shard *s, dp_err *err);

// ---- writer (dataset tools and tests) ----------------------------------------
typedef struct shard_writer shard_writer;
typedef struct {
  shard_codec codec;
  int num_classes;
  const char *const *class_names;
  int raw_h, raw_w, raw_c;
  const char *augment_policy;   // written as the augment_policy attribute when non-NULL
} shard_writer_cfg;
shard_writer *shard_writer_create(const char *path, const shard_writer_cfg *cfg, dp_err *err);
// meta: META_NCOLS values (SHARD_META_MISSING for missing), or NULL.
int shard_writer_add(shard_writer *w, const uint8_t *bytes, int64_t len, int32_t label,
                     int64_t id, const int32_t *meta, dp_err *err);
// Writes datasets + attributes to a temp file next to the shard's path, then
// commits it (fsync, rename, fsync the directory: core/afile.h); frees w.
int shard_writer_close(shard_writer *w, dp_err *err);
int64_t shard_writer_count(const shard_writer *w);     // records added so far
int64_t shard_writer_bytes(const shard_writer *w);     // blob bytes added so far
#endif
