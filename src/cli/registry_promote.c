// dptrain registry promote --name N --version V --alias A --test GLOB
// [--min-macro-f1 X] [--force --reason TEXT]: moves alias A to version V only
// through the quality gate (track/gate.h). Both the candidate's and the
// current holder's weights are downloaded from the registry and scored here,
// with the evaluation code of training, on the same test shards: the gate
// compares what the models do now, not figures stored when they were made.
// The outcome (passed, forced or refused, with both figures) is written on
// the candidate version as promotion.<alias>.* tags; a promoted version's
// predecessor keeps the alias <alias>-previous for a rollback.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/registry.h"
#include "core/afile.h"
#include "core/opts.h"
#include "dist/dist.h"
#include "input/shard.h"
#include "track/gate.h"
#include "train/eval_file.h"
#include "train/lineage.h"

typedef struct {
  char name[256], version[32], alias[128], test[4096], uri[1024], work[1024], reason[1024];
  double min_f1;
  int force;
  int64_t batch;
} promo_opts;

#define PO promo_opts
static const dp_opt promo_opt_list[] = {
    DP_OPT_S(PO, "name", name, DP_OPT_REQUIRED, "registered model name"),
    DP_OPT_S(PO, "version", version, DP_OPT_REQUIRED, "the candidate version"),
    DP_OPT_S(PO, "test", test, DP_OPT_REQUIRED, "test shards (glob or comma list) both models are scored on"),
    DP_OPT_S(PO, "alias", alias, 0, "alias to move"),
    DP_OPT_F(PO, "min-macro-f1", DP_OPT_DOUBLE, min_f1, 0, 1, 0, "the candidate's macro-F1 must reach this"),
    DP_OPT_I(PO, "force", DP_OPT_INT, force, 0, 1, DP_OPT_BARE, "promote despite a failed gate (needs --reason; logged)"),
    DP_OPT_S(PO, "reason", reason, 0, "why --force (logged on the version)"),
    DP_OPT_S(PO, "mlflow-uri", uri, 0, "tracking server (default $MLFLOW_TRACKING_URI)"),
    DP_OPT_S(PO, "work", work, 0, "directory for the downloaded weights (default a temporary one)"),
    DP_OPT_I(PO, "batch", DP_OPT_I64, batch, 1, 1 << 20, 0, "evaluation batch per rank"),
};
static const dp_opts promo_table = {
    "dptrain registry promote", promo_opt_list, (int)(sizeof promo_opt_list / sizeof promo_opt_list[0]),
    "usage: dptrain registry promote --name NAME --version V --test GLOB [--alias production]\n"
    "                                [--min-macro-f1 X] [--force --reason TEXT] [--mlflow-uri URL]\n"
    "                                [--work DIR] [--batch B]\n"
    "Moves the alias to V only if V's macro-F1 on the test shards is >= --min-macro-f1 and >= the\n"
    "current holder's on the same shards, both re-scored here.\n"
    "Exit status: 0 promoted (or already the holder), 1 refused or the server failed, 2 bad input.\n",
    0};

static int bad(const char *fmt, const char *v) {
  fprintf(stderr, "dptrain registry promote: bad input: ");
  fprintf(stderr, fmt, v);
  fputc('\n', stderr);
  return -1;
}

// -1 bad input, 1 --help printed, 0 ok.
static int parse(int argc, char **argv, promo_opts *o) {
  memset(o, 0, sizeof *o);
  snprintf(o->alias, sizeof o->alias, "production");
  o->batch = 64;
  int rc = dp_opts_parse(&promo_table, o, argc, argv);
  if (rc) return rc;
  for (const char *p = o->alias; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
      return bad("setting 'alias': '%s' may only hold letters, digits, '_' and '-'", o->alias);
  if (!o->alias[0]) return bad("%s", "setting 'alias': empty");
  if (o->force && !o->reason[0]) return bad("%s", "setting 'reason': --force needs --reason TEXT (it is logged on the version)");
  return 0;
}

// What rank 0 found on the server, for every rank.
typedef struct {
  int rc;               // < 0: go on; else the exit code
  int have_holder;
  char cand[1200], holder[1200];
  char holder_version[32];
} promo_plan;

static void now_iso(char *out, size_t n) {
  time_t s = time(NULL);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

// Rank 0: looks up the version and the alias holder, downloads both.
static void plan_on_server(trk_client *c, const promo_opts *o, const char *work, promo_plan *pl) {
  dp_err e;
  dp_err_clear(&e);
  jv *rm = trk_model_get(c, o->name, &e), *mv = NULL, *hv = NULL;
  if (!rm) goto fail;
  mv = trk_model_version_get(c, o->name, o->version, &e);
  if (!mv) goto fail;
  const char *h = trk_model_alias_version(rm, o->alias);
  if (h && !strcmp(h, o->version)) {
    printf("%s version %s already holds the alias '%s'\n", o->name, o->version, o->alias);
    pl->rc = 0;
    goto out;
  }
  char name[64];
  snprintf(name, sizeof name, "candidate-v%s.safetensors", o->version);
  if (reg_download_weights(c, mv, work, name, pl->cand, sizeof pl->cand, &e)) goto fail;
  if (h) {
    snprintf(pl->holder_version, sizeof pl->holder_version, "%s", h);
    hv = trk_model_version_get(c, o->name, h, &e);
    if (!hv) goto fail;
    snprintf(name, sizeof name, "holder-v%s.safetensors", h);
    if (reg_download_weights(c, hv, work, name, pl->holder, sizeof pl->holder, &e)) goto fail;
    pl->have_holder = 1;
  }
  pl->rc = -1;
  goto out;
fail:
  fprintf(stderr, "dptrain registry promote: %s\n", e.msg);
  pl->rc = e.code == TRK_E_CLIENT ? 2 : 1;
out:
  jv_free(hv);
  jv_free(mv);
  jv_free(rm);
}

// Rank 0: records the decision on the candidate and moves the alias.
static int decide_on_server(trk_client *c, const promo_opts *o, const promo_plan *pl, const class_metrics *cm,
                            const class_metrics *hm) {
  trk_gate g;
  trk_gate_decide(cm->macro_f1, o->min_f1, pl->have_holder ? pl->holder_version : NULL,
                  pl->have_holder ? hm->macro_f1 : NAN, o->alias, &g);
  int promote = g.pass || o->force;
  const char *result = g.pass ? "passed" : o->force ? "forced" : "refused";
  char fp[64] = "unknown", when[32];
  char **paths = NULL;
  int n = shard_glob(o->test, &paths);
  dp_err e;
  dp_err_clear(&e);
  if (n > 0) {
    if (lineage_data_fingerprint(paths, n, fp, sizeof fp, NULL, &e)) snprintf(fp, sizeof fp, "unknown");
    shard_paths_free(paths, n);
  }
  now_iso(when, sizeof when);
  const char *user = getenv("USER");
  struct passwd *pw = user ? NULL : getpwuid(getuid());
  if (pw) user = pw->pw_name;
  reg_tags t = {0};
  char k[200];
#define PTAG(suffix, ...)                                              \
  do {                                                                 \
    snprintf(k, sizeof k, "promotion.%s." suffix, o->alias);          \
    reg_tags_add(&t, k, __VA_ARGS__);                                  \
  } while (0)
  PTAG("result", "%s", result);
  PTAG("gate", "%s", g.reason);
  PTAG("macro_f1", "%.6f", cm->macro_f1);
  PTAG("min_macro_f1", "%.6f", o->min_f1);
  PTAG("holder", "%s", pl->have_holder ? pl->holder_version : "none");
  if (pl->have_holder) PTAG("holder_macro_f1", "%.6f", hm->macro_f1);
  PTAG("test_data", "%s", o->test);
  PTAG("test_data_fingerprint", "%s", fp);
  PTAG("test_samples", "%lld", (long long)cm->total);
  PTAG("time", "%s", when);
  PTAG("by", "%s", user ? user : "unknown");
  if (o->force) {
    PTAG("forced", "%s", g.pass ? "false (the gate passed)" : "true");
    PTAG("force_reason", "%s", o->reason);
  }
#undef PTAG
  int rc = 0;
  for (int i = 0; i < t.n && rc == 0; i++)
    rc = trk_model_version_set_tag(c, o->name, o->version, t.kv[i].key, t.kv[i].value, &e);
  if (rc == 0 && promote) {
    rc = trk_model_alias_set(c, o->name, o->alias, o->version, &e);
    if (rc == 0 && pl->have_holder) {
      char prev[200];
      snprintf(prev, sizeof prev, "%s-previous", o->alias);
      rc = trk_model_alias_set(c, o->name, prev, pl->holder_version, &e);
    }
  }
  reg_tags_free(&t);
  if (rc) {
    fprintf(stderr, "dptrain registry promote: %s\n", e.msg);
    return 1;
  }
  printf("candidate %s v%s: macro-F1 %.4f on %s (%lld samples)\n", o->name, o->version, cm->macro_f1, o->test,
         (long long)cm->total);
  if (pl->have_holder) printf("current '%s' v%s: macro-F1 %.4f on the same shards\n", o->alias, pl->holder_version,
                              hm->macro_f1);
  if (g.pass) {
    printf("gate passed: %s\npromoted %s v%s to '%s'%s%s%s\n", g.reason, o->name, o->version, o->alias,
           pl->have_holder ? " (previous holder keeps '" : "", pl->have_holder ? o->alias : "",
           pl->have_holder ? "-previous')" : "");
    return 0;
  }
  if (o->force) {
    printf("gate FAILED: %s\nFORCED: promoted %s v%s to '%s' anyway (reason logged: %s)\n", g.reason, o->name,
           o->version, o->alias, o->reason);
    return 0;
  }
  fprintf(stderr, "dptrain registry promote: refused: %s; '%s' stays on %s\n", g.reason, o->alias,
          pl->have_holder ? pl->holder_version : "no version");
  return 1;
}

int registry_promote(int argc, char **argv) {
  promo_opts o;
  int prc = parse(argc, argv, &o);
  if (prc) return prc > 0 ? 0 : 2;
  dist_ctx d;
  int one = 1;
  char **argvp = argv;
  dist_init(&d, &one, &argvp);
  dist_bind(&d, 0, 0);
  promo_plan pl;
  memset(&pl, 0, sizeof pl);
  pl.rc = -1;
  char work[1100] = "";
  int made_work = 0;
  trk_client *c = NULL;
  if (d.rank == 0) {
    if (o.work[0]) {
      snprintf(work, sizeof work, "%s", o.work);
      dp_err e;
      dp_err_clear(&e);
      if (dp_mkdir_p(work, &e)) fprintf(stderr, "dptrain registry promote: bad input: --work: %s\n", e.msg), pl.rc = 2;
    } else {
      const char *tmp = getenv("TMPDIR");
      snprintf(work, sizeof work, "%s/dptrain-promote-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
      if (!mkdtemp(work)) fprintf(stderr, "dptrain registry promote: mkdtemp %s: %s\n", work, dp_errno_str()), pl.rc = 2;
      else made_work = 1;
    }
    if (pl.rc < 0) {
      c = reg_client("promote", o.uri[0] ? o.uri : NULL, 60);
      if (!c) pl.rc = 2;
      else plan_on_server(c, &o, work, &pl);
    }
  }
  MPI_CHECK(MPI_Bcast(&pl, sizeof pl, MPI_BYTE, 0, d.comm), "sharing the promotion plan");
  int rc = pl.rc;
  if (rc < 0) {
    // Every rank scores both models (files on a shared filesystem under
    // mpirun across nodes: pass --work there).
    class_metrics cm, hm;
    memset(&hm, 0, sizeof hm);
    eval_file ce, he;
    memset(&he, 0, sizeof he);
    char err[1100], msg[1300] = "";
    int ok = eval_file_open(&ce, pl.cand, o.test, o.batch, &d, 0, err, sizeof err) == 0;
    if (!ok) snprintf(msg, sizeof msg, "dptrain registry promote: candidate v%s: %s", o.version, err);
    if (ok && pl.have_holder) {
      ok = eval_file_open(&he, pl.holder, o.test, o.batch, &d, 0, err, sizeof err) == 0;
      if (!ok) snprintf(msg, sizeof msg, "dptrain registry promote: current '%s' v%s: %s", o.alias, pl.holder_version, err);
    }
    if (cli_agree(&d, ok, msg)) {
      rc = 2;
    } else {
      eval_file_run(&ce, &d, &cm, NULL);
      if (pl.have_holder) eval_file_run(&he, &d, &hm, NULL);
      rc = d.rank == 0 ? decide_on_server(c, &o, &pl, &cm, &hm) : 0;
      class_metrics_free(&cm);
      if (pl.have_holder) class_metrics_free(&hm);
    }
    eval_file_close(&ce);
    eval_file_close(&he);
    MPI_CHECK(MPI_Bcast(&rc, 1, MPI_INT, 0, d.comm), "sharing the promotion result");
  }
  if (d.rank == 0) {
    if (pl.cand[0]) unlink(pl.cand);
    if (pl.holder[0]) unlink(pl.holder);
    if (made_work) rmdir(work);
  }
  trk_client_destroy(c);
  dist_finalize(&d);
  return rc;
}
