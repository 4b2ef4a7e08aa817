#include "track/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/jsonread.h"
#include "track/jbuf.h"

static void join(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

int64_t trk_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void trk_make_spool_id(char *out, size_t n) {
  unsigned char r[16];
  int ok = 0;
  FILE *f = fopen("/dev/urandom", "rb");
  if (f) {
    ok = fread(r, 1, sizeof r, f) == sizeof r;
    fclose(f);
  }
  if (!ok) {   // no /dev/urandom: time and pid are unique enough for one cluster
    uint64_t a = (uint64_t)trk_now_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    uint64_t b = a * 0xBF58476D1CE4E5B9ull + (uint64_t)clock();
    memcpy(r, &a, 8);
    memcpy(r + 8, &b, 8);
  }
  static const char hex[] = "0123456789abcdef";
  size_t k = 0;
  for (int i = 0; i < 16 && k + 2 < n; i++) {
    out[k++] = hex[r[i] >> 4];
    out[k++] = hex[r[i] & 15];
  }
  out[k] = 0;
}

void trk_spool_out_dir(const char *spool_dir, char *out, size_t n) {
  snprintf(out, n, "%s", spool_dir);
  size_t L = strlen(out);
  while (L > 1 && out[L - 1] == '/') out[--L] = 0;
  char *slash = strrchr(out, '/');
  if (slash && slash != out) *slash = 0;
  else if (slash) slash[1] = 0;   // "/mlflow-spool": OUT is "/"
  else snprintf(out, n, ".");
}

// ---- run.json and cursor.json -------------------------------------------------------
int trk_ident_save(const char *spool_dir, const trk_ident *id, dp_err *err) {
  char path[1200];
  join(path, sizeof path, spool_dir, "run.json");
  trk_jbuf b;
  trk_jbuf_begin(&b);
  b.j.pretty = 1;
  dp_json_begin_object(&b.j);
  dp_json_kv_string(&b.j, "spool_id", id->spool_id);
  dp_json_kv_string(&b.j, "tracking_uri", id->tracking_uri);
  dp_json_kv_string(&b.j, "experiment", id->experiment);
  dp_json_kv_string(&b.j, "run_name", id->run_name);
  dp_json_kv_int(&b.j, "start_ms", id->start_ms);
  dp_json_kv_string(&b.j, "experiment_id", id->experiment_id);
  dp_json_kv_string(&b.j, "run_id", id->run_id);
  dp_json_kv_string(&b.j, "artifact_uri", id->artifact_uri);
  dp_json_end_object(&b.j);
  char *text = trk_jbuf_end(&b);
  int rc = dp_write_file_atomic(path, text, strlen(text), err);
  free(text);
  return rc;
}

int trk_ident_load(const char *spool_dir, trk_ident *id, dp_err *err) {
  memset(id, 0, sizeof *id);
  char path[1200];
  join(path, sizeof path, spool_dir, "run.json");
  int rc;
  jv *v = jv_load_opt(path, &rc, err);
  if (!v) return rc;
  jv_copy_str(v, "spool_id", id->spool_id, sizeof id->spool_id);
  jv_copy_str(v, "tracking_uri", id->tracking_uri, sizeof id->tracking_uri);
  jv_copy_str(v, "experiment", id->experiment, sizeof id->experiment);
  jv_copy_str(v, "run_name", id->run_name, sizeof id->run_name);
  id->start_ms = (int64_t)jv_num(v, "start_ms", 0);
  jv_copy_str(v, "experiment_id", id->experiment_id, sizeof id->experiment_id);
  jv_copy_str(v, "run_id", id->run_id, sizeof id->run_id);
  jv_copy_str(v, "artifact_uri", id->artifact_uri, sizeof id->artifact_uri);
  jv_free(v);
  if (!id->spool_id[0]) {
    dp_err_set(err, 2, "%s: no spool_id (not written by dptrain?)", path);
    return -1;
  }
  return 0;
}

int64_t trk_cursor_load(const char *spool_dir, dp_err *err) {
  char path[1200];
  join(path, sizeof path, spool_dir, "cursor.json");
  int rc;
  jv *v = jv_load_opt(path, &rc, err);
  if (!v) return rc > 0 ? 0 : -1;   // absent: start at offset 0
  double off = jv_num(v, "offset", -1);
  jv_free(v);
  if (!(off >= 0)) {
    dp_err_set(err, 2, "%s: no non-negative \"offset\"", path);
    return -1;
  }
  return (int64_t)off;
}

int trk_cursor_save(const char *spool_dir, int64_t offset, dp_err *err) {
  char path[1200], text[64];
  join(path, sizeof path, spool_dir, "cursor.json");
  int n = snprintf(text, sizeof text, "{\"offset\": %lld}\n", (long long)offset);
  return dp_write_file_atomic(path, text, (size_t)n, err);
}

int trk_spool_lock(const char *spool_dir, int *fd, char *holder, size_t n, dp_err *err) {
  char path[1200];
  join(path, sizeof path, spool_dir, "lock");
  int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f < 0) {
    dp_err_set(err, 1, "opening %s: %s", path, strerror(errno));
    return -1;
  }
  if (flock(f, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char pid[32] = "";
    ssize_t k = pread(f, pid, sizeof pid - 1, 0);
    pid[k > 0 ? k : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    close(f);
    if (e == EWOULDBLOCK) {
      snprintf(holder, n, "pid %s", pid[0] ? pid : "?");
      return 1;
    }
    dp_err_set(err, 1, "flock %s: %s", path, strerror(e));
    return -1;
  }
  char pid[32];
  int k = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)k, 0) != k) {
    // The lock holds without the pid; it only makes the "busy" message nicer.
  }
  *fd = f;
  return 0;
}

void trk_spool_unlock(int fd) {
  if (fd >= 0) close(fd);   // closing drops the flock
}

// ---- writing ------------------------------------------------------------------------
void trk_clean_key(char *key) {
  size_t n = strlen(key);
  if (n > TRK_KEY_MAX) key[n = TRK_KEY_MAX] = 0;
  for (size_t i = 0; i < n; i++) {
    char c = key[i];
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
             c == '.' || c == ' ' || c == ':' || c == '/';
    if (!ok) key[i] = '_';
  }
}

// Cuts s to at most max bytes without splitting a UTF-8 sequence.
static void cut_utf8(char *s, size_t max) {
  size_t n = strlen(s);
  if (n <= max) return;
  n = max;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  s[n] = 0;
}

int trk_spool_writer_open(trk_spool_writer *w, const char *spool_dir, dp_err *err) {
  memset(w, 0, sizeof *w);
  w->log.fd = -1;
  snprintf(w->dir, sizeof w->dir, "%s", spool_dir);
  trk_spool_out_dir(spool_dir, w->out_dir, sizeof w->out_dir);
  if (dp_mkdir_p(spool_dir, err)) return -1;
  char path[1200];
  join(path, sizeof path, spool_dir, "records.jsonl");
  struct stat st;
  int64_t keep = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;   // append to what is there
  return dp_alog_open(&w->log, path, keep, err);
}

// Appends one record line and frees it.
static void emit_line(trk_spool_writer *w, char *line) {
  dp_alog_printf(&w->log, "%s\n", line);
  free(line);
}

static void emit(trk_spool_writer *w, trk_jbuf *b) { emit_line(w, trk_jbuf_end(b)); }

static void kv_record(trk_spool_writer *w, const char *kind, const char *key, const char *value, size_t vmax) {
  char k[TRK_KEY_MAX + 1];
  snprintf(k, sizeof k, "%s", key);
  trk_clean_key(k);
  char *v = dp_strdup(value ? value : "");
  cut_utf8(v, vmax);
  char *line = trk_json_strings((const char *[]){"k", kind, "key", k, "value", v}, 3);
  free(v);
  emit_line(w, line);
}

void trk_spool_param(trk_spool_writer *w, const char *key, const char *value) {
  kv_record(w, "p", key, value, TRK_PARAM_VALUE_MAX);
}

void trk_spool_tag(trk_spool_writer *w, const char *key, const char *value) {
  kv_record(w, "t", key, value, TRK_TAG_VALUE_MAX);
}

void trk_spool_metric(trk_spool_writer *w, const char *key, double value, int64_t step, int64_t ts_ms) {
  char k[TRK_KEY_MAX + 1];
  snprintf(k, sizeof k, "%s", key);
  trk_clean_key(k);
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  dp_json_kv_string(&b.j, "k", "m");
  dp_json_kv_string(&b.j, "key", k);
  dp_json_key(&b.j, "value");
  trk_json_metric_value(&b.j, value);
  dp_json_kv_int(&b.j, "ts", ts_ms);
  dp_json_kv_int(&b.j, "step", step);
  dp_json_end_object(&b.j);
  emit(w, &b);
}

void trk_spool_artifact(trk_spool_writer *w, const char *file, const char *dir) {
  const char *rel = file;
  size_t L = strlen(w->out_dir);
  if (!strncmp(file, w->out_dir, L) && file[L] == '/') rel = file + L + 1;
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  dp_json_kv_string(&b.j, "k", "a");
  dp_json_kv_string(&b.j, "file", rel);
  dp_json_kv_string(&b.j, "dir", dir ? dir : "");
  dp_json_end_object(&b.j);
  emit(w, &b);
}

void trk_spool_status(trk_spool_writer *w, const char *status, int64_t ts_ms) {
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  dp_json_kv_string(&b.j, "k", "s");
  dp_json_kv_string(&b.j, "status", status);
  dp_json_kv_int(&b.j, "ts", ts_ms);
  dp_json_end_object(&b.j);
  emit(w, &b);
}

int trk_spool_flush(trk_spool_writer *w, dp_err *err) { return dp_alog_flush(&w->log, 0, err); }

int trk_spool_writer_close(trk_spool_writer *w, dp_err *err) {
  if (w->log.fd < 0) return 0;
  return dp_alog_close(&w->log, err);
}

// ---- reading ------------------------------------------------------------------------
static uint64_t fnv1a(const char *s) { return dp_fnv1a64_update(DP_FNV1A64_INIT, s, strlen(s)); }

static void parse_line(const char *line, size_t len, trk_rec *r) {
  char e[160];
  jv *v = jv_parse(line, len, e, sizeof e);
  const char *k = v ? jv_str(v, "k", NULL) : NULL;
  r->kind = TRK_REC_BAD;
  if (!k || strlen(k) != 1) {
    r->value = dp_strdup(v ? "no record kind \"k\"" : e);
    jv_free(v);
    return;
  }
  switch (k[0]) {
    case 'p':
    case 't': {
      const char *key = jv_str(v, "key", NULL), *val = jv_str(v, "value", NULL);
      if (!key || !val) break;
      r->kind = (trk_rec_kind)k[0];
      r->key = dp_strdup(key);
      r->value = dp_strdup(val);
      r->key_hash = fnv1a(key) ^ (uint64_t)k[0];
      break;
    }
    case 'm': {
      const char *key = jv_str(v, "key", NULL);
      const jv *x = jv_get(v, "value");
      if (!key || !x) break;
      if (x->type == JV_NUM) r->num = x->num;
      else if (x->type == JV_STR && !strcmp(x->str, "NaN")) r->num = NAN;
      else if (x->type == JV_STR && !strcmp(x->str, "Infinity")) r->num = INFINITY;
      else if (x->type == JV_STR && !strcmp(x->str, "-Infinity")) r->num = -INFINITY;
      else break;
      r->kind = TRK_REC_METRIC;
      r->key = dp_strdup(key);
      r->ts = (int64_t)jv_num(v, "ts", 0);
      r->step = (int64_t)jv_num(v, "step", 0);
      break;
    }
    case 'a': {
      const char *f = jv_str(v, "file", NULL);
      if (!f) break;
      r->kind = TRK_REC_ARTIFACT;
      r->file = dp_strdup(f);
      r->dir = dp_strdup(jv_str(v, "dir", ""));
      break;
    }
    case 's': {
      const char *s = jv_str(v, "status", NULL);
      if (!s) break;
      r->kind = TRK_REC_STATUS;
      r->value = dp_strdup(s);
      r->ts = (int64_t)jv_num(v, "ts", 0);
      break;
    }
    default: break;
  }
  if (r->kind == TRK_REC_BAD) r->value = dp_strdup("a field is missing or has the wrong type");
  jv_free(v);
}

int trk_spool_read(const char *spool_dir, int64_t off, int max_recs, trk_rec **out, int64_t *file_size,
                   dp_err *err) {
  *out = NULL;
  char path[1200];
  join(path, sizeof path, spool_dir, "records.jsonl");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      if (file_size) *file_size = 0;
      return 0;
    }
    dp_err_set(err, 4, "opening %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    dp_err_set(err, 4, "stat %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  if (file_size) *file_size = st.st_size;
  if (off > st.st_size) {
    dp_err_set(err, 4, "%s has %lld bytes, fewer than the cursor's %lld (was it replaced?)", path,
               (long long)st.st_size, (long long)off);
    close(fd);
    return -1;
  }
  // At most 8 MB per read: max_recs lines of a normal spool are far less.
  size_t want = (size_t)(st.st_size - off);
  if (want > ((size_t)8 << 20)) want = (size_t)8 << 20;
  char *buf = dp_malloc(want + 1, "spool read");
  size_t got = 0;
  while (got < want) {
    ssize_t k = pread(fd, buf + got, want - got, (off_t)(off + (int64_t)got));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      dp_err_set(err, 4, "reading %s: %s", path, strerror(errno));
      free(buf);
      close(fd);
      return -1;
    }
    if (k == 0) break;
    got += (size_t)k;
  }
  close(fd);
  int n = 0, cap = 0;
  trk_rec *recs = NULL;
  size_t pos = 0;
  while (n < max_recs && pos < got) {
    char *nl = memchr(buf + pos, '\n', got - pos);
    if (!nl) {
      if (pos == 0 && got == ((size_t)8 << 20)) {
        dp_err_set(err, 4, "%s: a record longer than 8 MB at byte %lld", path, (long long)off);
        free(buf);
        trk_recs_free(recs, n);
        return -1;
      }
      break;   // an incomplete last line is still being written
    }
    size_t len = (size_t)(nl - (buf + pos));
    if (n == cap) cap = cap ? cap * 2 : 256, recs = dp_realloc(recs, (size_t)cap * sizeof *recs, "spool records");
    trk_rec *r = &recs[n++];
    memset(r, 0, sizeof *r);
    r->off = off + (int64_t)pos;
    r->end_off = r->off + (int64_t)len + 1;
    r->bytes = len;
    parse_line(buf + pos, len, r);
    pos += len + 1;
  }
  free(buf);
  *out = recs;
  return n;
}

void trk_recs_free(trk_rec *r, int n) {
  for (int i = 0; i < n; i++) {
    free(r[i].key);
    free(r[i].value);
    free(r[i].file);
    free(r[i].dir);
  }
  free(r);
}

int64_t trk_spool_count_pending(const char *spool_dir, int64_t off) {
  int64_t total = 0;
  for (;;) {
    trk_rec *r;
    dp_err e;
    dp_err_clear(&e);
    int n = trk_spool_read(spool_dir, off, 100000, &r, NULL, &e);
    if (n <= 0) {
      trk_recs_free(r, n > 0 ? n : 0);
      return n < 0 ? -1 : total;
    }
    total += n;
    off = r[n - 1].end_off;
    trk_recs_free(r, n);
  }
}

void trk_spool_reject(const char *spool_dir, const trk_rec *r, const char *why) {
  char path[1200];
  join(path, sizeof path, spool_dir, "rejected.jsonl");
  dp_alog l;
  dp_err e;
  dp_err_clear(&e);
  struct stat st;
  int64_t keep = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
  if (dp_alog_open(&l, path, keep, &e) != 0) return;   // best effort: the warning was printed already
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  dp_json_kv_int(&b.j, "offset", r->off);
  dp_json_kv_string(&b.j, "kind", (char[]){(char)r->kind, 0});
  dp_json_kv_string(&b.j, "key", r->key ? r->key : (r->file ? r->file : ""));
  dp_json_kv_string(&b.j, "error", why);
  dp_json_kv_int(&b.j, "time_ms", trk_now_ms());
  dp_json_end_object(&b.j);
  char *line = trk_jbuf_end(&b);
  dp_alog_printf(&l, "%s\n", line);
  free(line);
  dp_alog_close(&l, &e);
}

// ---- batching -----------------------------------------------------------------------
void trk_limits_mlflow(trk_limits *l) {
  l->metrics = 1000;
  l->params = 100;
  l->tags = 100;
  l->entities = 1000;
  l->bytes = 900000;
}

int trk_plan_batch(const trk_rec *r, int n, const trk_limits *l) {
  if (n <= 0) return 0;
  if (r[0].kind != TRK_REC_PARAM && r[0].kind != TRK_REC_METRIC && r[0].kind != TRK_REC_TAG) return 1;
  int nm = 0, np = 0, nt = 0, k = 0;
  size_t bytes = 0;
  for (; k < n; k++) {
    const trk_rec *x = &r[k];
    if (x->kind != TRK_REC_PARAM && x->kind != TRK_REC_METRIC && x->kind != TRK_REC_TAG) break;
    int m2 = nm + (x->kind == TRK_REC_METRIC), p2 = np + (x->kind == TRK_REC_PARAM), t2 = nt + (x->kind == TRK_REC_TAG);
    if (m2 > l->metrics || p2 > l->params || t2 > l->tags || m2 + p2 + t2 > l->entities) break;
    if (k > 0 && bytes + x->bytes > l->bytes) break;
    if (x->kind != TRK_REC_METRIC) {
      int dup = 0;
      for (int q = 0; q < k && !dup; q++) dup = r[q].kind == x->kind && r[q].key_hash == x->key_hash;
      if (dup) break;
    }
    nm = m2, np = p2, nt = t2;
    bytes += x->bytes;
  }
  return k > 0 ? k : 1;
}
