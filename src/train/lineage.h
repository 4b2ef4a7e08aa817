// Lineage of a trained model: which data, which settings, which code, which
// starting point. Rank 0 writes OUT/lineage.json at the start of a run; the
// MLflow run's tags and `dptrain registry register` read it.
//
// - Data fingerprint: "fnv1a64:<16 hex>" over, per shard in order, the file's
//   basename, byte size and record count (paths differ between mounts of the
//   same data; names, sizes and counts do not).
// - Config hash: "fnv1a64:<16 hex>" over the "name = value" lines of the
//   effective configuration (config.ini), leaving out settings that do not
//   change the trained model (output and tracking places, thread counts,
//   logging). lineage_config_hash and lineage_config_hash_file agree.
#ifndef DP_TRAIN_LINEAGE_H
#define DP_TRAIN_LINEAGE_H
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"
#include "train/config.h"

typedef struct {
  char data_fingerprint[64];    // training shards
  char val_fingerprint[64];     // validation shards ("" without)
  int64_t train_records, val_records;
  char config_hash[64];
  char git_commit[64];
  char git_describe[64];
  char version[32];
  // Starting point: the run's --init-weights and --resume settings when the
  // build has them (written by the checkpoint layer), else "".
  char init_weights[TC_PATH_MAX];
  char parent_checkpoint[TC_PATH_MAX];
} lineage;

// Returns 0, or -1 with err naming the shard that could not be opened.
int lineage_data_fingerprint(char **paths, int n, char *out, size_t outsz, int64_t *records, dp_err *err);
void lineage_config_hash(const train_config *c, char *out, size_t outsz);
int lineage_config_hash_file(const char *config_ini, char *out, size_t outsz, dp_err *err);
// Value of a setting by name ("" when this build has no such setting).
void lineage_config_value(const train_config *c, const char *name, char *out, size_t outsz);
// Fills everything from the config and the shard lists.
int lineage_collect(lineage *l, const train_config *c, char **train, int ntrain, char **val, int nval, dp_err *err);
int lineage_write(const char *path, const lineage *l, dp_err *err);
// 0, 1 when the file does not exist, -1 on a bad file.
int lineage_read(const char *path, lineage *l, dp_err *err);
#endif
