// Pieces shared by the `dptrain registry` subcommands (cmd_registry.c,
// registry_register.c, registry_promote.c).
#ifndef DP_CLI_REGISTRY_H
#define DP_CLI_REGISTRY_H
#include <stddef.h>

#include "track/mlflow.h"
#include "train/metrics.h"

// Files a registered version carries under its run's "model/" artifacts.
#define REG_MODEL_DIR "model"
#define REG_WEIGHTS "model.safetensors"

// A growing list of tags whose strings it owns.
typedef struct {
  trk_kv *kv;
  char **own;
  int n, cap;
} reg_tags;
void reg_tags_add(reg_tags *t, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void reg_tags_free(reg_tags *t);
// test.macro_f1, test.accuracy, test.loss, test.samples, test.f1.<class> (prefix "test").
void reg_tags_metrics(reg_tags *t, const char *prefix, const class_metrics *m, char *const *class_names);

// The tracking server: uri_flag, else $MLFLOW_TRACKING_URI. NULL after
// printing why (exit 2). Calls curl_global_init.
trk_client *reg_client(const char *cmd, const char *uri_flag, double timeout_s);
// Artifact URI of a version's source: mlflow-artifacts:/ and http(s) proxy
// URIs as they are, runs:/<id>/<path> through the run's artifact root.
int reg_source_uri(trk_client *c, const char *source, char *out, size_t n, dp_err *err);
// Downloads the version's weights into dir/<name>; path gets the file.
int reg_download_weights(trk_client *c, const jv *model_version, const char *dir, const char *name, char *path,
                         size_t n, dp_err *err);

int registry_register(int argc, char **argv);
int registry_promote(int argc, char **argv);
#endif
