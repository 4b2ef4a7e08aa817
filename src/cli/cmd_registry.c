// dptrain registry register | promote | list | show: the MLflow model
// registry for dptrain models (docs/tracking.md). register and promote are in
// registry_register.c and registry_promote.c; this file has list, show and
// the shared helpers.
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/registry.h"
#include "core/check.h"
#include "core/opts.h"
#include "track/spool.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: dptrain registry register OUT --name NAME [--test GLOB] [--mlflow-uri URL] [--experiment E]\n"
          "                                 [--description TEXT] [--batch B]\n"
          "       dptrain registry promote --name NAME --version V --test GLOB [--alias production]\n"
          "                                [--min-macro-f1 X] [--force --reason TEXT] [--mlflow-uri URL]\n"
          "                                [--work DIR] [--batch B]\n"
          "       dptrain registry list [--name NAME] [--mlflow-uri URL]\n"
          "       dptrain registry show --name NAME (--version V | --alias A) [--mlflow-uri URL]\n"
          "register: uploads OUT's model (weights, config.ini, results.json, lineage.json, and\n"
          "          model.onnx when present) to the run's artifacts through the server's proxy and\n"
          "          creates a version with lineage tags and, with --test, the test-shard metrics.\n"
          "promote:  gives V the alias only if its macro-F1 on the --test shards is >= --min-macro-f1\n"
          "          and >= the current alias holder's on the same shards; both models are downloaded\n"
          "          and re-scored here. --force overrides a failed gate (logged on the version).\n"
          "The server is --mlflow-uri or $MLFLOW_TRACKING_URI. Exit: 0 done, 1 refused by the gate or\n"
          "the server, 2 bad input.\n");
}

// ---- shared helpers ------------------------------------------------------------------
void reg_tags_add(reg_tags *t, const char *key, const char *fmt, ...) {
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 32;
    t->kv = dp_realloc(t->kv, (size_t)t->cap * sizeof *t->kv, "tags");
    t->own = dp_realloc(t->own, (size_t)t->cap * 2 * sizeof *t->own, "tags");
  }
  char v[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v, sizeof v, fmt, ap);
  va_end(ap);
  t->own[2 * t->n] = dp_strdup(key);
  t->own[2 * t->n + 1] = dp_strdup(v);
  t->kv[t->n].key = t->own[2 * t->n];
  t->kv[t->n].value = t->own[2 * t->n + 1];
  t->n++;
}

void reg_tags_free(reg_tags *t) {
  for (int i = 0; i < 2 * t->n; i++) free(t->own[i]);
  free(t->own);
  free(t->kv);
  memset(t, 0, sizeof *t);
}

void reg_tags_metrics(reg_tags *t, const char *prefix, const class_metrics *m, char *const *class_names) {
  char k[300];
  snprintf(k, sizeof k, "%s.macro_f1", prefix);
  reg_tags_add(t, k, "%.6f", m->macro_f1);
  snprintf(k, sizeof k, "%s.accuracy", prefix);
  reg_tags_add(t, k, "%.6f", m->accuracy);
  snprintf(k, sizeof k, "%s.loss", prefix);
  reg_tags_add(t, k, "%.6f", m->loss);
  snprintf(k, sizeof k, "%s.samples", prefix);
  reg_tags_add(t, k, "%lld", (long long)m->total);
  for (int c = 0; c < m->num_classes; c++) {
    if (class_names && class_names[c]) snprintf(k, sizeof k, "%s.f1.%s", prefix, class_names[c]);
    else snprintf(k, sizeof k, "%s.f1.class%d", prefix, c);
    trk_clean_key(k);
    reg_tags_add(t, k, "%.6f", m->f1[c]);
  }
}

trk_client *reg_client(const char *cmd, const char *uri_flag, double timeout_s) {
  const char *uri = uri_flag ? uri_flag : getenv("MLFLOW_TRACKING_URI");
  if (!uri || !uri[0]) {
    fprintf(stderr, "dptrain registry %s: bad input: no tracking server (--mlflow-uri URL or MLFLOW_TRACKING_URI)\n",
            cmd);
    return NULL;
  }
  dp_err e;
  dp_err_clear(&e);
  if (trk_http_global_init(&e)) {
    fprintf(stderr, "dptrain registry %s: %s\n", cmd, e.msg);
    return NULL;
  }
  trk_http_opts o;
  trk_http_opts_default(&o);
  o.timeout_s = timeout_s;
  o.max_attempts = 4;
  o.backoff_s = 1;
  trk_client *c = trk_client_create(uri, &o, &e);
  if (!c) fprintf(stderr, "dptrain registry %s: bad input: %s\n", cmd, e.msg);
  return c;
}

int reg_source_uri(trk_client *c, const char *source, char *out, size_t n, dp_err *err) {
  if (!strncmp(source, "runs:/", 6)) {
    char run_id[64];
    const char *p = source + 6, *slash = strchr(p, '/');
    size_t k = slash ? (size_t)(slash - p) : strlen(p);
    if (k == 0 || k >= sizeof run_id) {
      dp_err_set(err, TRK_E_CLIENT, "model source '%s' has no run id", source);
      return -1;
    }
    memcpy(run_id, p, k);
    run_id[k] = 0;
    trk_run_info ri;
    if (trk_run_get(c, run_id, &ri, NULL, err)) return -1;
    snprintf(out, n, "%s%s%s", ri.artifact_uri, slash ? "/" : "", slash ? slash + 1 : "");
    return 0;
  }
  snprintf(out, n, "%s", source);
  return 0;
}

int reg_download_weights(trk_client *c, const jv *mv, const char *dir, const char *name, char *path, size_t n,
                         dp_err *err) {
  const char *source = jv_str(mv, "source", NULL);
  if (!source) {
    dp_err_set(err, TRK_E_CLIENT, "the model version has no source");
    return -1;
  }
  char uri[2048];
  if (reg_source_uri(c, source, uri, sizeof uri, err)) return -1;
  snprintf(path, n, "%s/%s", dir, name);
  return trk_artifact_download(c, uri, REG_WEIGHTS, path, err);
}

// ---- list ------------------------------------------------------------------------
static void fmt_time(double ms, char *out, size_t n) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, n, "%Y-%m-%d %H:%M", &tm);
}

typedef struct {
  const jv *rm;   // registered model (aliases)
} list_ctx;

static void aliases_of(const jv *rm, const char *version, char *out, size_t n) {
  out[0] = 0;
  const jv *a = rm ? jv_get(rm, "aliases") : NULL;
  size_t len = 0;
  for (int i = 0; a && a->type == JV_ARR && i < a->n; i++) {
    const char *v = jv_str(&a->items[i], "version", ""), *al = jv_str(&a->items[i], "alias", "");
    if (strcmp(v, version)) continue;
    int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", al);
    if (w < 0 || (size_t)w >= n - len) break;
    len += (size_t)w;
  }
}

static void print_version_row(const jv *mv, void *ctx) {
  const list_ctx *lc = ctx;
  const char *ver = jv_str(mv, "version", "?");
  const jv *tags = jv_get(mv, "tags");
  char al[256], when[32];
  aliases_of(lc->rm, ver, al, sizeof al);
  fmt_time(jv_num(mv, "creation_timestamp", 0), when, sizeof when);
  const char *tf1 = trk_kv_find(tags, "test.macro_f1"), *vf1 = trk_kv_find(tags, "val.macro_f1");
  const char *fp = trk_kv_find(tags, "dptrain.data_fingerprint"), *git = trk_kv_find(tags, "dptrain.git_commit");
  printf("%-7s %-22s %-16s %-9s %-9s %-25s %-18s %s\n", ver, al[0] ? al : "-", when, tf1 ? tf1 : "-", vf1 ? vf1 : "-",
         fp ? fp : "-", git ? git : "-", jv_str(mv, "run_id", "-"));
}

static void print_model_row(const jv *rm, void *ctx) {
  (void)ctx;
  const jv *lv = jv_get(rm, "latest_versions");
  const char *latest = lv && lv->type == JV_ARR && lv->n > 0 ? jv_str(&lv->items[0], "version", "-") : "-";
  char al[512] = "";
  const jv *a = jv_get(rm, "aliases");
  size_t len = 0;
  for (int i = 0; a && a->type == JV_ARR && i < a->n; i++) {
    int w = snprintf(al + len, sizeof al - len, "%s%s=v%s", len ? "," : "", jv_str(&a->items[i], "alias", ""),
                     jv_str(&a->items[i], "version", ""));
    if (w < 0 || (size_t)w >= sizeof al - len) break;
    len += (size_t)w;
  }
  printf("%-30s %-8s %s\n", jv_str(rm, "name", "?"), latest, al[0] ? al : "-");
}

typedef struct {
  char name[256], version[32], alias[128], uri[1024];
} look_args;

#define LA look_args
static const dp_opt list_opt_list[] = {
    DP_OPT_S(LA, "name", name, 0, "one registered model: its versions"),
    DP_OPT_S(LA, "mlflow-uri", uri, 0, "tracking server (default $MLFLOW_TRACKING_URI)"),
};
static const dp_opts list_table = {"dptrain registry list", list_opt_list,
                                   (int)(sizeof list_opt_list / sizeof list_opt_list[0]),
                                   "usage: dptrain registry list [--name NAME] [--mlflow-uri URL]\n", 0};
static const dp_opt show_opt_list[] = {
    DP_OPT_S(LA, "name", name, DP_OPT_REQUIRED, "registered model name"),
    DP_OPT_S(LA, "version", version, 0, "the version to show"),
    DP_OPT_S(LA, "alias", alias, 0, "or the version holding this alias"),
    DP_OPT_S(LA, "mlflow-uri", uri, 0, "tracking server (default $MLFLOW_TRACKING_URI)"),
};
static const dp_opts show_table = {"dptrain registry show", show_opt_list,
                                   (int)(sizeof show_opt_list / sizeof show_opt_list[0]),
                                   "usage: dptrain registry show --name NAME (--version V | --alias A) [--mlflow-uri URL]\n",
                                   0};

static int cmd_list(int argc, char **argv) {
  look_args la;
  memset(&la, 0, sizeof la);
  int prc = dp_opts_parse(&list_table, &la, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  const char *name = la.name[0] ? la.name : NULL, *uri = la.uri[0] ? la.uri : NULL;
  trk_client *c = reg_client("list", uri, 30);
  if (!c) return 2;
  dp_err e;
  dp_err_clear(&e);
  int rc = 0;
  if (!name) {
    printf("%-30s %-8s %s\n", "model", "latest", "aliases");
    if (trk_models_each(c, print_model_row, NULL, &e) < 0) rc = 1;
  } else {
    jv *rm = trk_model_get(c, name, &e);
    if (!rm) {
      rc = 1;
    } else {
      list_ctx lc = {rm};
      printf("%-7s %-22s %-16s %-9s %-9s %-25s %-18s %s\n", "version", "aliases", "created (UTC)", "test F1",
             "val F1", "data fingerprint", "commit", "run");
      if (trk_model_versions_each(c, name, print_version_row, &lc, &e) < 0) rc = 1;
      jv_free(rm);
    }
  }
  if (rc) fprintf(stderr, "dptrain registry list: %s\n", e.msg);
  trk_client_destroy(c);
  return rc;
}

// ---- show ------------------------------------------------------------------------
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int cmd_show(int argc, char **argv) {
  look_args la;
  memset(&la, 0, sizeof la);
  int prc = dp_opts_parse(&show_table, &la, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  const char *name = la.name, *version = la.version[0] ? la.version : NULL, *alias = la.alias[0] ? la.alias : NULL;
  const char *uri = la.uri[0] ? la.uri : NULL;
  if (!version == !alias) {
    fprintf(stderr, "dptrain registry show: bad input: give one of --version / --alias\n");
    return 2;
  }
  trk_client *c = reg_client("show", uri, 30);
  if (!c) return 2;
  dp_err e;
  dp_err_clear(&e);
  jv *rm = trk_model_get(c, name, &e), *mv = NULL, *run = NULL;
  int rc = 1;
  if (!rm) goto done;
  if (alias) {
    version = trk_model_alias_version(rm, alias);
    if (!version) {
      dp_err_set(&e, TRK_E_CLIENT, "model '%s' has no alias '%s'", name, alias);
      goto done;
    }
  }
  mv = trk_model_version_get(c, name, version, &e);
  if (!mv) goto done;
  char al[256], when[32];
  aliases_of(rm, version, al, sizeof al);
  fmt_time(jv_num(mv, "creation_timestamp", 0), when, sizeof when);
  printf("model    %s version %s%s%s\n", name, version, al[0] ? "  aliases: " : "", al);
  printf("created  %s UTC\n", when);
  printf("status   %s\n", jv_str(mv, "status", "?"));
  printf("source   %s\n", jv_str(mv, "source", "?"));
  printf("run      %s\n", jv_str(mv, "run_id", "-"));
  const char *desc = jv_str(mv, "description", "");
  if (desc[0]) printf("about    %s\n", desc);
  const jv *tags = jv_get(mv, "tags");
  if (tags && tags->type == JV_ARR && tags->n > 0) {
    char **lines = dp_calloc((size_t)tags->n, sizeof(char *), "tag lines");
    for (int i = 0; i < tags->n; i++) {
      char b[9000];
      snprintf(b, sizeof b, "  %-36s %s", jv_str(&tags->items[i], "key", ""), jv_str(&tags->items[i], "value", ""));
      lines[i] = dp_strdup(b);
    }
    qsort(lines, (size_t)tags->n, sizeof(char *), cmp_str);
    printf("tags\n");
    for (int i = 0; i < tags->n; i++) printf("%s\n", lines[i]), free(lines[i]);
    free(lines);
  }
  const char *run_id = jv_str(mv, "run_id", "");
  if (run_id[0] && trk_run_get(c, run_id, NULL, &run, &e) == 0) {
    const jv *ms = jv_path(run, "run.data.metrics");
    if (ms && ms->type == JV_ARR && ms->n > 0) {
      printf("run metrics (latest)\n");
      for (int i = 0; i < ms->n; i++)
        printf("  %-36s %.6g (step %.0f)\n", jv_str(&ms->items[i], "key", ""), jv_num(&ms->items[i], "value", 0),
               jv_num(&ms->items[i], "step", 0));
    }
  } else if (run_id[0]) {
    printf("run metrics: unavailable (%s)\n", e.msg);
  }
  rc = 0;
done:
  if (rc) fprintf(stderr, "dptrain registry show: %s\n", e.msg);
  jv_free(run);
  jv_free(mv);
  jv_free(rm);
  trk_client_destroy(c);
  return rc;
}

int cmd_registry(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);   // a server closing a TLS connection must not end the command
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "register")) return registry_register(argc - 1, argv + 1);
  if (!strcmp(sub, "promote")) return registry_promote(argc - 1, argv + 1);
  if (!strcmp(sub, "list")) return cmd_list(argc - 1, argv + 1);
  if (!strcmp(sub, "show")) return cmd_show(argc - 1, argv + 1);
  fprintf(stderr, "dptrain registry: unknown subcommand '%s'\n", sub);
  usage(stderr);
  return 2;
}
