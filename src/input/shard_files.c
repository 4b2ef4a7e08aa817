// File-list shards (see shard_files.h).
#include "input/shard_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct shard_files {
  char **paths;                       // (n)
  shard_files_decode_fn decode_other;
  int64_t n;
};

shard *shard_open_files(const shard_files_cfg *cfg, dp_err *err) {
  dp_err_clear(err);
  const char *name = cfg->name ? cfg->name : "file list";
  if (cfg->n < 1 || !cfg->paths) {
    dp_err_set(err, 1, "%s: no files", name);
    return NULL;
  }
  if (cfg->num_classes < 1 || cfg->num_classes > SHARD_MAX_CLASSES) {
    dp_err_set(err, 1, "%s: num_classes %d outside [1, %d]", name, cfg->num_classes, SHARD_MAX_CLASSES);
    return NULL;
  }
  for (int64_t i = 0; cfg->labels && i < cfg->n; i++)
    if (cfg->labels[i] != SHARD_LABEL_NONE && (cfg->labels[i] < 0 || cfg->labels[i] >= cfg->num_classes)) {
      dp_err_set(err, 1, "%s: file %lld (%s): label %d outside [0, %d)", name, (long long)i, cfg->paths[i],
                 cfg->labels[i], cfg->num_classes);
      return NULL;
    }
  shard *s = dp_calloc(1, sizeof *s, "file shard");
  snprintf(s->path, sizeof s->path, "%s", name);
  s->n = cfg->n;
  s->num_classes = cfg->num_classes;
  s->codec = SHARD_CODEC_JPEG;   // per file: JPEG through TurboJPEG, the rest through the hook
  s->schema_version = SHARD_SCHEMA_VERSION;
  s->fd = -1;
  s->blob_file_offset = -1;
  s->file_h5 = -1;
  s->blob_ds = -1;
  s->class_names = dp_calloc((size_t)cfg->num_classes, sizeof(char *), "class names");
  for (int c = 0; c < cfg->num_classes; c++) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "class_%d", c);
    s->class_names[c] = dp_strdup(cfg->class_names && cfg->class_names[c] ? cfg->class_names[c] : tmp);
  }
  s->offsets = dp_calloc((size_t)cfg->n + 1, sizeof(int64_t), "file offsets");
  s->labels = dp_calloc((size_t)cfg->n + 1, sizeof(int32_t), "file labels");
  s->ids = dp_calloc((size_t)cfg->n + 1, sizeof(int64_t), "file ids");
  struct shard_files *f = dp_calloc(1, sizeof *f, "file list");
  f->n = cfg->n;
  f->decode_other = cfg->decode_other;
  f->paths = dp_calloc((size_t)cfg->n, sizeof(char *), "file paths");
  s->files = f;
  for (int64_t i = 0; i < cfg->n; i++) {
    f->paths[i] = dp_strdup(cfg->paths[i]);
    const char *nm = cfg->names && cfg->names[i] ? cfg->names[i] : cfg->paths[i];
    s->ids[i] = shard_hash_id(nm, strlen(nm));
    s->labels[i] = cfg->labels ? cfg->labels[i] : SHARD_LABEL_NONE;
    struct stat st;
    // A file that cannot be stat'ed (missing) keeps size 0; reading it gives the reason.
    int64_t sz = stat(cfg->paths[i], &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
    s->offsets[i + 1] = s->offsets[i] + sz;
  }
  s->blob_size = s->offsets[cfg->n];
  return s;
}

int64_t shard_files_read(const shard *s, int64_t i, int64_t len, uint8_t *buf, dp_err *err) {
  const char *p = s->files->paths[i];
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    dp_err_set(err, 1, "%s: cannot open: %s", p, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    dp_err_set(err, 1, "%s: not a regular file", p);
    return -1;
  }
  int64_t got = 0;
  while (got < len) {
    ssize_t r = pread(fd, buf + got, (size_t)(len - got), (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      dp_err_set(err, 1, "%s: read failed after %lld of %lld bytes: %s", p, (long long)got, (long long)len,
                 r < 0 ? strerror(errno) : "the file shrank since it was listed");
      close(fd);
      return -1;
    }
    got += r;
  }
  close(fd);
  return len;
}

int shard_files_is_jpeg(const uint8_t *buf, int64_t len) {
  return len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF;
}

int shard_files_decode(const shard *s, const uint8_t *buf, int64_t len, uint8_t **px, int *w, int *h, int *c,
                       dp_err *err) {
  *px = NULL;
  if (!s->files || !s->files->decode_other) {
    dp_err_set(err, 2, "not a JPEG file");
    return -1;
  }
  char why[256] = "";
  if (s->files->decode_other(buf, len, px, w, h, c, why, sizeof why) != 0) {
    free(*px);
    *px = NULL;
    dp_err_set(err, 2, "%s", why[0] ? why : "cannot decode");
    return -1;
  }
  return 0;
}

const char *shard_files_path(const shard *s, int64_t i) {
  return s->files && i >= 0 && i < s->files->n ? s->files->paths[i] : "?";
}

void shard_files_free(struct shard_files *f) {
  if (!f) return;
  for (int64_t i = 0; i < f->n; i++) free(f->paths[i]);
  free(f->paths);
  free(f);
}
