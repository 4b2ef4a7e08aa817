// A list of image files read as one shard, so `dptrain score --imagefolder /
// --csv` runs the loader of training and evaluation (threads, prefetch, the
// eval transform, skip reporting) on files that were never packed: record i
// is the whole file paths[i].
//
// The file shard looks like an HDF5 shard to the loader: n records, labels
// (SHARD_LABEL_NONE when unknown), ids (FNV-1a of names[i], as `data pack`
// hashes a file's relative path), offsets as the running sum of the file
// sizes (so shard_record_size is the size found when the list was opened),
// class names. shard_read_record reads the file (open + pread + close);
// a missing or unreadable file is a record error (the loader skips it with
// the reason), never a crash. JPEG files take the loader's TurboJPEG path;
// other formats (PNG, PPM/PGM) go through the caller's decode hook (the
// input layer has no PNG decoder; `dptrain score` passes data/img_decode.c's).
#ifndef DP_INPUT_SHARD_FILES_H
#define DP_INPUT_SHARD_FILES_H
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"
#include "input/shard.h"

// Decodes a non-JPEG file into malloc'd (h, w, c) uint8 pixels, c 1 or 3.
// Returns 0, or -1 with the reason in why.
typedef int (*shard_files_decode_fn)(const uint8_t *buf, int64_t len, uint8_t **px, int *w, int *h, int *c,
                                     char *why, size_t why_size);

typedef struct shard_files_cfg {
  const char *name;                   // the shard's path in messages ("imagefolder DIR", the CSV file)
  int64_t n;                          // files
  const char *const *paths;           // (n) files to open
  const char *const *names;           // (n) as the user wrote them (ids are hashed from these); NULL: paths
  const int32_t *labels;              // (n) class index or SHARD_LABEL_NONE; NULL: all unlabelled
  int num_classes;
  const char *const *class_names;     // (num_classes)
  shard_files_decode_fn decode_other; // non-JPEG files, or NULL (they are then record errors)
} shard_files_cfg;

// Stats every file (a missing one gets size 0 and fails when read) and
// copies the lists. Returns NULL with err set on a bad configuration.
shard *shard_open_files(const shard_files_cfg *cfg, dp_err *err);
// Record i's bytes (the first len of the file) into buf. Returns len, or -1
// with err naming the file.
int64_t shard_files_read(const shard *s, int64_t i, int64_t len, uint8_t *buf, dp_err *err);
// 1 when buf starts with the JPEG signature (FF D8 FF).
int shard_files_is_jpeg(const uint8_t *buf, int64_t len);
// Decodes a non-JPEG record of a file shard with its hook. Returns 0 with
// *px malloc'd, or -1 with err set (no hook: the format is not supported).
int shard_files_decode(const shard *s, const uint8_t *buf, int64_t len, uint8_t **px, int *w, int *h, int *c,
                       dp_err *err);
const char *shard_files_path(const shard *s, int64_t i);
void shard_files_free(struct shard_files *f);
#endif
