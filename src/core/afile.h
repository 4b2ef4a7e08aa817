// Atomic output files. Every file dptrain writes (results, config, weights,
// checkpoints, reports, shards) goes through this helper: the bytes go to a
// temp file in the same directory, which is flushed, fsynced, closed and
// renamed over the final name, and then the directory is fsynced. A reader
// (or a restarted job) never sees a half-written file under its final name,
// and a crash leaves at worst a stray ".<name>.tmp.<pid>" file.
//
// Every write and close is checked; a failure is reported with the path and
// the reason in the caller's dp_err, never as a silent success.
//
// Append logs (steps.csv) use dp_alog: whole rows are buffered and written
// with one write(2) each flush, so a killed run leaves no partial row.
#ifndef DP_CORE_AFILE_H
#define DP_CORE_AFILE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/check.h"

typedef struct dp_afile dp_afile;

// Opens a temp file next to path for writing. NULL with err set on failure.
dp_afile *dp_afile_open(const char *path, dp_err *err);
// The stdio stream to write to (errors are caught at commit by ferror).
FILE *dp_afile_stream(dp_afile *f);
// Path of the temp file (for libraries that write by name, e.g. HDF5).
const char *dp_afile_tmp_path(const dp_afile *f);
// Flush, fsync, close, rename over the final name, fsync the directory.
// Frees f. Returns 0, or -1 with err set (the temp file is removed).
int dp_afile_commit(dp_afile *f, dp_err *err);
// Discards the temp file and frees f.
void dp_afile_abort(dp_afile *f);

// Whole buffer to path, atomically. Returns 0 or -1 with err set.
int dp_write_file_atomic(const char *path, const void *data, size_t n, dp_err *err);
// For a file another library wrote and closed (tmp in the same directory):
// fsync it, rename to path, fsync the directory. Returns 0 or -1.
int dp_commit_file(const char *tmp, const char *path, dp_err *err);
// A unique temp name next to path: "<dir>/.<base>.tmp.<pid>.<n>".
void dp_tmp_path_for(const char *path, char *out, size_t n);

// mkdir -p. Returns 0 or -1 with err set.
int dp_mkdir_p(const char *path, dp_err *err);
// Checks that dir exists (creating it) and that a file can be created,
// written, fsynced and removed in it. Returns 0 or -1 with err set.
int dp_dir_check_writable(const char *dir, dp_err *err);
// fsync the directory that holds path.
int dp_fsync_parent(const char *path, dp_err *err);

// Append log: whole rows, flushed with one write(2) each.
typedef struct {
  int fd;
  char path[1024];
  char *buf;
  size_t len, cap;
  int64_t rows;      // rows written or buffered since open
} dp_alog;
// Opens path for appending; truncate_to >= 0 first cuts the file to that many
// bytes (resume: rows past the checkpoint are dropped), < 0 truncates to 0.
int dp_alog_open(dp_alog *l, const char *path, int64_t truncate_to, dp_err *err);
// Adds one row (printf format; the caller ends it with '\n').
void dp_alog_printf(dp_alog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Writes the buffered rows (one write(2)) and fdatasyncs when sync != 0.
int dp_alog_flush(dp_alog *l, int sync, dp_err *err);
// Bytes in the file after the last flush (what a checkpoint records).
int64_t dp_alog_size(const dp_alog *l);
int dp_alog_close(dp_alog *l, dp_err *err);
#endif
