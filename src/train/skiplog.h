// OUT/skipped.csv: every record the training loader skipped as corrupt, one
// row each, from every rank: rank,epoch,step,file,record,id,reason (RFC 4180
// quoting). Rows are appended whole through core/afile.h's dp_alog and
// flushed at every collection, so a killed run leaves no partial row.
#ifndef DP_TRAIN_SKIPLOG_H
#define DP_TRAIN_SKIPLOG_H
#include <stdint.h>

#include "core/afile.h"
#include "dist/dist.h"
#include "input/loader.h"

typedef struct {
  dp_alog log;
  int open;                 // rank 0 only
  int64_t rows;             // rows written so far
} skiplog;

// Rank 0 creates path with the header row; other ranks only clear s.
// Returns 0, or -1 with err naming the path.
int skiplog_open(skiplog *s, const char *path, int rank, dp_err *err);
// Rank 0 opens path for appending; truncate_to >= 0 (a resume) first cuts it
// to the length a checkpoint recorded, < 0 starts a fresh file with the
// header row. Other ranks only clear s. Returns 0, or -1 with err set.
int skiplog_open_at(skiplog *s, const char *path, int rank, int64_t truncate_to, dp_err *err);
// Collective over d: takes every rank's new skips from l, gathers them to
// rank 0, which appends and flushes them. *decoded / *skipped get the loader
// counters plus this rank's base (counts of earlier run segments) summed
// over ranks. Returns 0, or -1 on rank 0 when the append failed (err set).
int skiplog_collect(skiplog *s, loader *l, dist_ctx *d, int64_t step, int64_t base_decoded, int64_t base_skipped,
                    int64_t *decoded, int64_t *skipped, dp_err *err);
// Bytes in the file (what a checkpoint records), -1 when not open here.
int64_t skiplog_size(const skiplog *s);
int skiplog_close(skiplog *s, dp_err *err);
#endif
