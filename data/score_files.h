// The image files `dptrain score --imagefolder DIR | --csv FILE` reads
// without packing: a list of files with their labels under the model's
// classes, for input/shard_files.h.
//
// ImageFolder: files directly in DIR are unlabelled ("flat"); a file under
// DIR/<name>/... is labelled <name> when that is one of the model's classes,
// else unlabelled (the folders that are not classes are reported). Files
// are taken by extension (.jpg .jpeg .png .ppm .pgm, any case), in sorted
// order (byte order of the names, folders recursively); hidden entries are
// ignored.
// CSV: RFC 4180 (data/csv.h, the reader of `data pack --csv`) with a header
// naming `path` and optionally `label` (other columns are ignored). Paths
// are relative to the CSV's folder unless absolute. A label is a class name
// of the model, or its index; empty = unlabelled; anything else is an error
// naming the line.
#ifndef DP_DATA_SCORE_FILES_H
#define DP_DATA_SCORE_FILES_H
#include <stddef.h>
#include <stdint.h>

#include "input/shard_files.h"

typedef struct {
  shard_files_cfg cfg;       // ready for score_spec.files (decode hook: score_files_decode)
  char **paths, **names;     // (n) file to open, name as given (relative to DIR, or the CSV's cell)
  int32_t *labels;           // (n)
  int64_t n, cap, labelled, ignored;
  char note[512];            // what was not taken, e.g. folders that are not classes
} score_files;

// Return 0, or -1 with err (a bad or empty input: exit code 2).
int score_files_imagefolder(score_files *sf, const char *dir, const char *const *class_names, int num_classes,
                            char *err, size_t err_size);
int score_files_csv(score_files *sf, const char *csv, const char *const *class_names, int num_classes, char *err,
                    size_t err_size);
void score_files_free(score_files *sf);
// shard_files_decode_fn over data/img_decode.c (PNG, PPM/PGM).
int score_files_decode(const uint8_t *buf, int64_t len, uint8_t **px, int *w, int *h, int *c, char *why,
                       size_t why_size);
#endif
