// dptrain registry register OUT --name NAME [--test GLOB]: a model version
// for the weights of a training run, with its lineage and test metrics.
//
// The version's run is the training's own MLflow run when OUT was tracked
// (its spool is shipped first, so a run trained while the server was down is
// complete before it is registered), else a new run. The model files go to
// that run's artifacts under model/ through the server's artifact proxy and
// the version's source is that directory.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/registry.h"
#include "core/afile.h"
#include "core/jsonread.h"
#include "core/opts.h"
#include "dist/dist.h"
#include "track/jbuf.h"
#include "track/ship.h"
#include "track/spool.h"
#include "train/eval_file.h"
#include "train/lineage.h"

typedef struct {
  char out[1024], name[256], test[4096], uri[1024], experiment[256], description[1024];
  int64_t batch;
} reg_opts;

#define RO reg_opts
static const dp_opt reg_opt_list[] = {
    DP_OPT_S(RO, "out", out, DP_OPT_POS | DP_OPT_REQUIRED, "the training's output directory (also positional)"),
    DP_OPT_S(RO, "name", name, DP_OPT_REQUIRED, "registered model name"),
    DP_OPT_S(RO, "test", test, 0, "test shards (glob or comma list): scored here, metrics on the version"),
    DP_OPT_S(RO, "mlflow-uri", uri, 0, "tracking server (default $MLFLOW_TRACKING_URI)"),
    DP_OPT_S(RO, "experiment", experiment, 0, "experiment of a new run when OUT was not tracked (default dptrain)"),
    DP_OPT_S(RO, "description", description, 0, "version description"),
    DP_OPT_I(RO, "batch", DP_OPT_I64, batch, 1, 1 << 20, 0, "evaluation batch per rank"),
};
static const dp_opts reg_table = {
    "dptrain registry register", reg_opt_list, (int)(sizeof reg_opt_list / sizeof reg_opt_list[0]),
    "usage: dptrain registry register OUT --name NAME [--test GLOB] [--mlflow-uri URL] [--experiment E]\n"
    "                                 [--description TEXT] [--batch B]\n"
    "A model version for OUT's weights, with lineage tags and, with --test, the test-shard metrics.\n"
    "Exit status: 0 registered, 1 the server failed, 2 bad input.\n",
    0};

static int parse(int argc, char **argv, reg_opts *o) {
  memset(o, 0, sizeof *o);
  o->batch = 64;
  return dp_opts_parse(&reg_table, o, argc, argv);
}

// The training's run (shipping its spool) or a new one. 0 or -1 with err.
static int run_for(trk_client *c, const reg_opts *o, const lineage *lin, trk_ident *id, dp_err *err) {
  char spool[1200];
  snprintf(spool, sizeof spool, "%s/%s", o->out, TRK_SPOOL_DIRNAME);
  int have = trk_ident_load(spool, id, err);
  if (have < 0) return -1;
  if (have == 0) {
    int fd = -1;
    char holder[64];
    int lk = trk_spool_lock(spool, &fd, holder, sizeof holder, err);
    if (lk != 0) {
      if (lk > 0)
        dp_err_set(err, TRK_E_CLIENT, "%s is being shipped by %s (is the training still running?)", spool, holder);
      return -1;
    }
    if (strcmp(id->tracking_uri, trk_client_uri(c))) {
      printf("%s was tracked to %s: sending its records to a new run at %s first\n", o->out, id->tracking_uri,
             trk_client_uri(c));
      id->run_id[0] = id->experiment_id[0] = id->artifact_uri[0] = 0;
      snprintf(id->tracking_uri, sizeof id->tracking_uri, "%s", trk_client_uri(c));
      if (trk_ident_save(spool, id, err) || trk_cursor_save(spool, 0, err)) {
        trk_spool_unlock(fd);
        return -1;
      }
    }
    trk_ship_stats st;
    memset(&st, 0, sizeof st);
    int rc = trk_ship(c, spool, id, &st, err);
    if (rc == 0) rc = trk_ensure_run(c, spool, id, err);   // an empty spool still names a run
    trk_spool_unlock(fd);
    if (rc == 0 && st.requests) printf("shipped the run's spool first (%lld request(s))\n", (long long)st.requests);
    return rc;
  }
  // Not tracked: a run of its own carries the files and the lineage.
  memset(id, 0, sizeof *id);
  const char *exp = o->experiment[0] ? o->experiment : getenv("MLFLOW_EXPERIMENT_NAME");
  if (trk_experiment_ensure(c, exp && exp[0] ? exp : "dptrain", id->experiment_id, sizeof id->experiment_id, err))
    return -1;
  char abs[4096], run_name[1100];
  const char *base = strrchr(o->out, '/');
  snprintf(run_name, sizeof run_name, "register-%s", base && base[1] ? base + 1 : o->out);
  trk_kv tags[] = {{"mlflow.source.name", "dptrain registry register"},
                   {"dptrain.out", realpath(o->out, abs) ? abs : o->out},
                   {"dptrain.data_fingerprint", lin->data_fingerprint},
                   {"dptrain.config_hash", lin->config_hash},
                   {"mlflow.source.git.commit", lin->git_commit}};
  trk_run_info ri;
  if (trk_run_create(c, id->experiment_id, run_name, trk_now_ms(), tags, 5, &ri, err)) return -1;
  snprintf(id->run_id, sizeof id->run_id, "%s", ri.run_id);
  snprintf(id->artifact_uri, sizeof id->artifact_uri, "%s", ri.artifact_uri);
  if (trk_run_update(c, ri.run_id, "FINISHED", trk_now_ms(), err)) return -1;
  return 0;
}

// Lineage from OUT/lineage.json, or what config.ini still tells.
static void read_lineage(const char *out, lineage *lin) {
  char p[1200];
  dp_err e;
  dp_err_clear(&e);
  snprintf(p, sizeof p, "%s/lineage.json", out);
  if (lineage_read(p, lin, &e) == 0) return;
  if (e.msg[0]) fprintf(stderr, "dptrain registry register: warning: %s\n", e.msg);
  memset(lin, 0, sizeof *lin);
  snprintf(p, sizeof p, "%s/config.ini", out);
  if (lineage_config_hash_file(p, lin->config_hash, sizeof lin->config_hash, &e))
    snprintf(lin->config_hash, sizeof lin->config_hash, "unknown");
  snprintf(lin->data_fingerprint, sizeof lin->data_fingerprint, "unknown (no lineage.json)");
  snprintf(lin->git_commit, sizeof lin->git_commit, "unknown");
  snprintf(lin->git_describe, sizeof lin->git_describe, "unknown");
}

static int register_on_server(const reg_opts *o, const class_metrics *test, const char *test_fp,
                              const weights_meta *wm) {
  trk_client *c = reg_client("register", o->uri[0] ? o->uri : NULL, 60);
  if (!c) return 2;
  lineage lin;
  read_lineage(o->out, &lin);
  char p[1200], errs[600];
  snprintf(p, sizeof p, "%s/results.json", o->out);
  jv *res = jv_parse_file(p, errs, sizeof errs);
  if (!res) fprintf(stderr, "dptrain registry register: warning: %s (no validation metrics on the version)\n", errs);
  dp_err e;
  dp_err_clear(&e);
  trk_ident id;
  int rc = 1;
  reg_tags tags = {0};
  if (run_for(c, o, &lin, &id, &e)) goto done;
  // The files of the version.
  static const char *const files[] = {REG_WEIGHTS, "config.ini", "results.json", "lineage.json", "model.onnx",
                                      "eval_results.json"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", o->out, files[i]);
    if (access(p, R_OK) != 0) continue;
    char rel[300];
    snprintf(rel, sizeof rel, REG_MODEL_DIR "/%s", files[i]);
    if (trk_artifact_upload(c, id.artifact_uri, rel, p, &e)) goto done;
  }
  int64_t steps = res ? (int64_t)jv_num(res, "throughput.steps", 0) : 0;
  if (test) {
    int64_t now = trk_now_ms();
    if (trk_log_metric(c, id.run_id, "test_macro_f1", test->macro_f1, now, steps, &e) ||
        trk_log_metric(c, id.run_id, "test_accuracy", test->accuracy, now, steps, &e) ||
        trk_log_metric(c, id.run_id, "test_loss", test->loss, now, steps, &e))
      goto done;
  }
  // Lineage and metrics as version tags.
  char abs[4096];
  reg_tags_add(&tags, "dptrain.data_fingerprint", "%s", lin.data_fingerprint);
  reg_tags_add(&tags, "dptrain.config_hash", "%s", lin.config_hash);
  reg_tags_add(&tags, "dptrain.git_commit", "%s", lin.git_describe);
  reg_tags_add(&tags, "dptrain.git_sha", "%s", lin.git_commit);
  reg_tags_add(&tags, "dptrain.version", "%s", lin.version[0] ? lin.version : "unknown");
  reg_tags_add(&tags, "dptrain.init_weights", "%s", lin.init_weights[0] ? lin.init_weights : "none");
  reg_tags_add(&tags, "dptrain.parent_checkpoint", "%s", lin.parent_checkpoint[0] ? lin.parent_checkpoint : "none");
  reg_tags_add(&tags, "dptrain.parent", "%s",
               lin.init_weights[0] ? lin.init_weights : lin.parent_checkpoint[0] ? lin.parent_checkpoint : "none");
  reg_tags_add(&tags, "dptrain.out", "%s", realpath(o->out, abs) ? abs : o->out);
  reg_tags_add(&tags, "dptrain.model", "%s", wm->model.name);
  reg_tags_add(&tags, "dptrain.image_size", "%lld", (long long)wm->model.image_size);
  reg_tags_add(&tags, "dptrain.channels", "%d", wm->model.channels);
  reg_tags_add(&tags, "dptrain.num_classes", "%d", wm->num_classes);
  if (res) {
    reg_tags_add(&tags, "dptrain.steps", "%lld", (long long)steps);
    reg_tags_add(&tags, "dptrain.world_size", "%.0f", jv_num(res, "world_size", 0));
    double vf1 = jv_num(res, "macro_f1", NAN), vacc = jv_num(res, "accuracy", NAN);
    if (!isnan(vf1)) reg_tags_add(&tags, "val.macro_f1", "%.6f", vf1);
    if (!isnan(vacc)) reg_tags_add(&tags, "val.accuracy", "%.6f", vacc);
  }
  if (test) {
    reg_tags_metrics(&tags, "test", test, wm->class_names);
    reg_tags_add(&tags, "test.data", "%s", o->test);
    reg_tags_add(&tags, "test.data_fingerprint", "%s", test_fp);
  }
  char source[1200], version[32], desc[2200];
  snprintf(source, sizeof source, "%s/" REG_MODEL_DIR, id.artifact_uri);
  snprintf(desc, sizeof desc, "%s", o->description);
  if (!desc[0])
    snprintf(desc, sizeof desc, "dptrain %s, %lld px, %d classes, %lld steps (%s)", wm->model.name,
             (long long)wm->model.image_size, wm->num_classes, (long long)steps, o->out);
  if (trk_model_ensure(c, o->name, &e)) goto done;
  if (trk_model_version_create(c, o->name, source, id.run_id, tags.kv, tags.n, desc, version, sizeof version, &e))
    goto done;
  printf("registered %s version %s (run %s)\n  source %s\n", o->name, version, id.run_id, source);
  {   // For scripts: which version this OUT became.
    trk_jbuf b;
    trk_jbuf_begin(&b);
    b.j.pretty = 1;
    dp_json_begin_object(&b.j);
    dp_json_kv_string(&b.j, "name", o->name);
    dp_json_kv_string(&b.j, "version", version);
    dp_json_kv_string(&b.j, "run_id", id.run_id);
    dp_json_kv_string(&b.j, "source", source);
    dp_json_kv_string(&b.j, "tracking_uri", trk_client_uri(c));
    dp_json_end_object(&b.j);
    char *text = trk_jbuf_end(&b);
    snprintf(p, sizeof p, "%s/registered.json", o->out);
    if (dp_write_file_atomic(p, text, strlen(text), &e)) {
      free(text);
      goto done;
    }
    free(text);
    printf("  wrote %s\n", p);
  }
  if (test) printf("  test macro-F1 %.4f, accuracy %.4f on %s\n", test->macro_f1, test->accuracy, o->test);
  rc = 0;
done:
  if (rc) fprintf(stderr, "dptrain registry register: %s\n", e.msg);
  reg_tags_free(&tags);
  jv_free(res);
  trk_client_destroy(c);
  return rc;
}

int registry_register(int argc, char **argv) {
  reg_opts o;
  int prc = parse(argc, argv, &o);
  if (prc) return prc > 0 ? 0 : 2;
  char weights[1200];
  snprintf(weights, sizeof weights, "%s/" REG_WEIGHTS, o.out);
  char err[600];
  weights_meta wm;
  if (weights_read_meta(weights, &wm, err, sizeof err)) {
    fprintf(stderr, "dptrain registry register: bad input: %s\n", err);
    return 2;
  }
  if (!o.test[0]) {
    int rc = register_on_server(&o, NULL, NULL, &wm);
    weights_meta_free(&wm);
    return rc;
  }
  // Test metrics: the evaluation code on the test shards (every rank).
  dist_ctx d;
  int one = 1;
  char **argvp = argv;
  dist_init(&d, &one, &argvp);
  dist_bind(&d, 0, 0);
  class_metrics m;
  eval_file ef;
  int rc = 0;
  char msg[1200] = "";
  int ok = eval_file_open(&ef, weights, o.test, o.batch, &d, 0, err, sizeof err) == 0;
  if (!ok) snprintf(msg, sizeof msg, "dptrain registry register: bad input: %s", err);
  if (cli_agree(&d, ok, msg)) {
    rc = 2;
  } else {
    eval_file_run(&ef, &d, &m, NULL);
    if (d.rank == 0) {
      char fp[64] = "unknown";
      dp_err e;
      dp_err_clear(&e);
      if (lineage_data_fingerprint(ef.paths, ef.npaths, fp, sizeof fp, NULL, &e))
        fprintf(stderr, "dptrain registry register: warning: %s\n", e.msg);
      rc = register_on_server(&o, &m, fp, &wm);
    }
    class_metrics_free(&m);
  }
  eval_file_close(&ef);
  MPI_CHECK(MPI_Bcast(&rc, 1, MPI_INT, 0, d.comm), "sharing the result");
  weights_meta_free(&wm);
  dist_finalize(&d);
  return rc;
}
