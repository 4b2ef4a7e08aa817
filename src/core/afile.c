#include "core/afile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dp_afile {
  FILE *f;
  char path[1024];
  char tmp[1100];
};

static atomic_uint tmp_counter;

void dp_tmp_path_for(const char *path, char *out, size_t n) {
  const char *slash = strrchr(path, '/');
  unsigned k = atomic_fetch_add(&tmp_counter, 1u);
  if (slash)
    snprintf(out, n, "%.*s/.%s.tmp.%ld.%u", (int)(slash - path), path, slash + 1, (long)getpid(), k);
  else
    snprintf(out, n, ".%s.tmp.%ld.%u", path, (long)getpid(), k);
}

int dp_fsync_parent(const char *path, dp_err *err) {
  char dir[1024];
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    dp_err_set(err, 1, "opening directory %s to fsync it: %s", dir, strerror(errno));
    return -1;
  }
  // Some filesystems (e.g. certain network mounts) refuse fsync on a
  // directory; the rename itself is still atomic there.
  if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) {
    dp_err_set(err, 1, "fsync of directory %s: %s", dir, strerror(errno));
    close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

dp_afile *dp_afile_open(const char *path, dp_err *err) {
  if (strlen(path) >= 1000) {
    dp_err_set(err, 1, "output path too long (%zu bytes): %.80s...", strlen(path), path);
    return NULL;
  }
  dp_afile *a = dp_calloc(1, sizeof *a, "atomic file");
  snprintf(a->path, sizeof a->path, "%s", path);
  dp_tmp_path_for(path, a->tmp, sizeof a->tmp);
  int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    dp_err_set(err, 1, "cannot create %s (temp file for %s): %s", a->tmp, path, strerror(errno));
    free(a);
    return NULL;
  }
  a->f = fdopen(fd, "wb");
  if (!a->f) {
    dp_err_set(err, 1, "fdopen %s: %s", a->tmp, strerror(errno));
    close(fd);
    unlink(a->tmp);
    free(a);
    return NULL;
  }
  return a;
}

FILE *dp_afile_stream(dp_afile *f) { return f->f; }
const char *dp_afile_tmp_path(const dp_afile *f) { return f->tmp; }

void dp_afile_abort(dp_afile *a) {
  if (!a) return;
  if (a->f) fclose(a->f);
  unlink(a->tmp);
  free(a);
}

int dp_commit_file(const char *tmp, const char *path, dp_err *err) {
  int fd = open(tmp, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    dp_err_set(err, 1, "reopening %s to commit %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  if (fsync(fd) != 0) {
    dp_err_set(err, 1, "fsync of %s (for %s): %s", tmp, path, strerror(errno));
    close(fd);
    unlink(tmp);
    return -1;
  }
  close(fd);
  if (rename(tmp, path) != 0) {
    dp_err_set(err, 1, "renaming %s to %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  return dp_fsync_parent(path, err);
}

int dp_afile_commit(dp_afile *a, dp_err *err) {
  int bad = 0;
  char why[256] = "";
  if (fflush(a->f) != 0 || ferror(a->f)) {
    bad = 1;
    snprintf(why, sizeof why, "write failed: %s", strerror(errno ? errno : EIO));
  } else if (fsync(fileno(a->f)) != 0) {
    bad = 1;
    snprintf(why, sizeof why, "fsync failed: %s", strerror(errno));
  }
  if (fclose(a->f) != 0 && !bad) {
    bad = 1;
    snprintf(why, sizeof why, "close failed: %s", strerror(errno));
  }
  a->f = NULL;
  if (bad) {
    dp_err_set(err, 1, "writing %s: %s", a->path, why);
    unlink(a->tmp);
    free(a);
    return -1;
  }
  int rc = 0;
  if (rename(a->tmp, a->path) != 0) {
    dp_err_set(err, 1, "renaming %s to %s: %s", a->tmp, a->path, strerror(errno));
    unlink(a->tmp);
    rc = -1;
  } else {
    rc = dp_fsync_parent(a->path, err);
  }
  free(a);
  return rc;
}

int dp_write_file_atomic(const char *path, const void *data, size_t n, dp_err *err) {
  dp_afile *a = dp_afile_open(path, err);
  if (!a) return -1;
  if (n && fwrite(data, 1, n, a->f) != n) {
    dp_err_set(err, 1, "writing %zu bytes to %s: %s", n, path, strerror(errno ? errno : EIO));
    dp_afile_abort(a);
    return -1;
  }
  return dp_afile_commit(a, err);
}

int dp_mkdir_p(const char *path, dp_err *err) {
  char tmp[1024];
  if (!path[0]) return 0;
  if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
    dp_err_set(err, 1, "directory path too long: %.80s...", path);
    return -1;
  }
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0775) != 0 && errno != EEXIST) {
      dp_err_set(err, 1, "mkdir %s: %s", tmp, strerror(errno));
      return -1;
    }
    *p = '/';
  }
  if (mkdir(tmp, 0775) != 0 && errno != EEXIST) {
    dp_err_set(err, 1, "mkdir %s: %s", tmp, strerror(errno));
    return -1;
  }
  struct stat st;
  if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) {
    dp_err_set(err, 1, "%s exists and is not a directory", tmp);
    return -1;
  }
  return 0;
}

int dp_dir_check_writable(const char *dir, dp_err *err) {
  if (dp_mkdir_p(dir, err)) return -1;
  char probe[1100];
  snprintf(probe, sizeof probe, "%s/.dptrain-write-probe", dir);
  dp_err e2;
  dp_err_clear(&e2);
  if (dp_write_file_atomic(probe, "ok\n", 3, &e2)) {
    dp_err_set(err, 1, "output directory %s is not writable: %s", dir, e2.msg);
    return -1;
  }
  if (unlink(probe) != 0) {
    dp_err_set(err, 1, "removing %s: %s", probe, strerror(errno));
    return -1;
  }
  return 0;
}

// ---- append log ------------------------------------------------------------
int dp_alog_open(dp_alog *l, const char *path, int64_t truncate_to, dp_err *err) {
  memset(l, 0, sizeof *l);
  l->fd = -1;
  snprintf(l->path, sizeof l->path, "%s", path);
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND;
  if (truncate_to < 0) flags |= O_TRUNC;
  l->fd = open(path, flags, 0644);
  if (l->fd < 0) {
    dp_err_set(err, 1, "opening %s for appending: %s", path, strerror(errno));
    return -1;
  }
  if (truncate_to >= 0) {
    struct stat st;
    if (fstat(l->fd, &st) != 0) {
      dp_err_set(err, 1, "stat %s: %s", path, strerror(errno));
      return -1;
    }
    if (st.st_size < truncate_to) {
      dp_err_set(err, 1, "%s has %lld bytes, fewer than the %lld the checkpoint recorded", path,
                 (long long)st.st_size, (long long)truncate_to);
      return -1;
    }
    if (ftruncate(l->fd, (off_t)truncate_to) != 0) {
      dp_err_set(err, 1, "truncating %s to %lld bytes: %s", path, (long long)truncate_to, strerror(errno));
      return -1;
    }
  }
  return 0;
}

void dp_alog_printf(dp_alog *l, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = l->cap - l->len;
    int k = vsnprintf(l->buf ? l->buf + l->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k < 0) DP_FATAL("formatting a log row", "bug", "vsnprintf failed for %s", l->path);
    if ((size_t)k < room) {
      l->len += (size_t)k;
      break;
    }
    size_t cap = l->cap ? l->cap * 2 : 65536;
    while (cap - l->len <= (size_t)k) cap *= 2;
    l->buf = dp_realloc(l->buf, cap, "log row buffer");
    l->cap = cap;
  }
  l->rows++;
}

int dp_alog_flush(dp_alog *l, int sync, dp_err *err) {
  size_t off = 0;
  while (off < l->len) {
    ssize_t w = write(l->fd, l->buf + off, l->len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      dp_err_set(err, 1, "appending %zu bytes to %s: %s", l->len - off, l->path,
                 w < 0 ? strerror(errno) : "no progress");
      return -1;
    }
    off += (size_t)w;
  }
  l->len = 0;
  if (sync && fdatasync(l->fd) != 0) {
    dp_err_set(err, 1, "fdatasync %s: %s", l->path, strerror(errno));
    return -1;
  }
  return 0;
}

int64_t dp_alog_size(const dp_alog *l) {
  struct stat st;
  if (l->fd < 0 || fstat(l->fd, &st) != 0) return -1;
  return (int64_t)st.st_size;
}

int dp_alog_close(dp_alog *l, dp_err *err) {
  int rc = 0;
  if (l->fd >= 0) {
    rc = dp_alog_flush(l, 1, err);
    if (close(l->fd) != 0 && rc == 0) {
      dp_err_set(err, 1, "closing %s: %s", l->path, strerror(errno));
      rc = -1;
    }
  }
  l->fd = -1;
  free(l->buf);
  l->buf = NULL;
  l->len = l->cap = 0;
  return rc;
}
