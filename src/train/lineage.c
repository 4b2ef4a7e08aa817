#include "train/lineage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/afile.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/jsonread.h"
#include "input/shard.h"
#include "track/version.h"

// Settings that do not change the trained model.
static const char *const not_hashed[] = {"out", "mlflow-uri", "mlflow-experiment", "run-name", "mlflow-timeout",
                                         "threads", "loader-threads", "log-every", "dump-ids", "config",
                                         "hardware", "hardware-table", "price-per-hour", "project-images",
                                         "project-epochs", "resume", "resume-force", "checkpoint-every",
                                         "checkpoint-minutes", "keep-checkpoints", "collective-timeout",
                                         "baseline-steps", "baseline", "max-skip-rate", "bucket-mb"};

static int hashed(const char *name) {
  for (size_t i = 0; i < sizeof not_hashed / sizeof not_hashed[0]; i++)
    if (!strcmp(name, not_hashed[i])) return 0;
  return 1;
}

static void hex64(uint64_t h, char *out, size_t n) { snprintf(out, n, "fnv1a64:%016llx", (unsigned long long)h); }

int lineage_data_fingerprint(char **paths, int n, char *out, size_t outsz, int64_t *records, dp_err *err) {
  uint64_t h = DP_FNV1A64_INIT;
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    struct stat st;
    if (stat(paths[i], &st) != 0) {
      dp_err_set(err, 2, "data fingerprint: stat %s: %s", paths[i], strerror(errno));
      return -1;
    }
    shard *s = shard_open(paths[i], err);
    if (!s) return -1;
    const char *base = strrchr(paths[i], '/');
    base = base ? base + 1 : paths[i];
    char row[1400];
    int k = snprintf(row, sizeof row, "%s\t%lld\t%lld\n", base, (long long)st.st_size, (long long)s->n);
    total += s->n;
    shard_close(s);
    h = dp_fnv1a64_update(h, row, (size_t)k);
  }
  hex64(h, out, outsz);
  if (records) *records = total;
  return 0;
}

typedef struct {
  uint64_t h;
  const char *want;
  char *out;
  size_t outsz;
} hash_ctx;

static void hash_one(const char *name, const char *value, void *ctx) {
  hash_ctx *x = ctx;
  if (!hashed(name)) return;
  x->h = dp_fnv1a64_update(x->h, name, strlen(name));
  x->h = dp_fnv1a64_update(x->h, "=", 1);
  x->h = dp_fnv1a64_update(x->h, value, strlen(value));
  x->h = dp_fnv1a64_update(x->h, "\n", 1);
}

void lineage_config_hash(const train_config *c, char *out, size_t outsz) {
  hash_ctx x = {DP_FNV1A64_INIT, NULL, NULL, 0};
  train_config_foreach(c, hash_one, &x);
  hex64(x.h, out, outsz);
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
  return s;
}

int lineage_config_hash_file(const char *config_ini, char *out, size_t outsz, dp_err *err) {
  FILE *f = fopen(config_ini, "r");
  if (!f) {
    dp_err_set(err, 2, "cannot open %s: %s", config_ini, strerror(errno));
    return -1;
  }
  hash_ctx x = {DP_FNV1A64_INIT, NULL, NULL, 0};
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    char *s = trim(line);
    if (!*s || *s == '#') continue;
    // "name = value" as train_config_write writes it; an empty value has
    // lost its trailing space to trim().
    char *eq = strstr(s, " =");
    if (!eq) continue;
    *eq = 0;
    const char *v = eq + 2;
    if (*v == ' ') v++;
    hash_one(s, v, &x);
  }
  fclose(f);
  hex64(x.h, out, outsz);
  return 0;
}

static void find_one(const char *name, const char *value, void *ctx) {
  hash_ctx *x = ctx;
  if (!strcmp(name, x->want)) snprintf(x->out, x->outsz, "%s", value);
}

void lineage_config_value(const train_config *c, const char *name, char *out, size_t outsz) {
  out[0] = 0;
  hash_ctx x = {0, name, out, outsz};
  train_config_foreach(c, find_one, &x);
}

int lineage_collect(lineage *l, const train_config *c, char **train, int ntrain, char **val, int nval, dp_err *err) {
  memset(l, 0, sizeof *l);
  if (lineage_data_fingerprint(train, ntrain, l->data_fingerprint, sizeof l->data_fingerprint, &l->train_records,
                               err))
    return -1;
  if (nval > 0 &&
      lineage_data_fingerprint(val, nval, l->val_fingerprint, sizeof l->val_fingerprint, &l->val_records, err))
    return -1;
  lineage_config_hash(c, l->config_hash, sizeof l->config_hash);
  snprintf(l->git_commit, sizeof l->git_commit, "%s", dp_git_commit());
  snprintf(l->git_describe, sizeof l->git_describe, "%s", dp_git_describe());
  snprintf(l->version, sizeof l->version, "%s", dp_version());
  lineage_config_value(c, "init-weights", l->init_weights, sizeof l->init_weights);
  lineage_config_value(c, "resume", l->parent_checkpoint, sizeof l->parent_checkpoint);
  return 0;
}

int lineage_write(const char *path, const lineage *l, dp_err *err) {
  dp_afile *af = dp_afile_open(path, err);
  if (!af) return -1;
  dp_json j;
  dp_json_init(&j, dp_afile_stream(af), 1);
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "data_fingerprint", l->data_fingerprint);
  dp_json_kv_int(&j, "train_records", l->train_records);
  dp_json_kv_string(&j, "val_fingerprint", l->val_fingerprint);
  dp_json_kv_int(&j, "val_records", l->val_records);
  dp_json_kv_string(&j, "config_hash", l->config_hash);
  dp_json_kv_string(&j, "git_commit", l->git_commit);
  dp_json_kv_string(&j, "git_describe", l->git_describe);
  dp_json_kv_string(&j, "dptrain_version", l->version);
  dp_json_kv_string(&j, "init_weights", l->init_weights);
  dp_json_kv_string(&j, "parent_checkpoint", l->parent_checkpoint);
  dp_json_end_object(&j);
  return dp_afile_commit(af, err);
}

int lineage_read(const char *path, lineage *l, dp_err *err) {
  memset(l, 0, sizeof *l);
  int rc;
  jv *v = jv_load_opt(path, &rc, err);
  if (!v) return rc;
  jv_copy_str(v, "data_fingerprint", l->data_fingerprint, sizeof l->data_fingerprint);
  jv_copy_str(v, "val_fingerprint", l->val_fingerprint, sizeof l->val_fingerprint);
  l->train_records = (int64_t)jv_num(v, "train_records", 0);
  l->val_records = (int64_t)jv_num(v, "val_records", 0);
  jv_copy_str(v, "config_hash", l->config_hash, sizeof l->config_hash);
  jv_copy_str(v, "git_commit", l->git_commit, sizeof l->git_commit);
  jv_copy_str(v, "git_describe", l->git_describe, sizeof l->git_describe);
  jv_copy_str(v, "dptrain_version", l->version, sizeof l->version);
  jv_copy_str(v, "init_weights", l->init_weights, sizeof l->init_weights);
  jv_copy_str(v, "parent_checkpoint", l->parent_checkpoint, sizeof l->parent_checkpoint);
  jv_free(v);
  return 0;
}
