// dptrain track sync OUT | status OUT: the tracking spool of a run
// (track/spool.h). `sync` sends what the run could not send (server down or
// slow during training), from the persisted cursor, so nothing is sent twice;
// it can also add files to the run (an ONNX export made after training).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "core/log.h"
#include "core/opts.h"
#include "track/mlflow.h"
#include "track/ship.h"
#include "track/spool.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: dptrain track sync OUT [--mlflow-uri URL] [--artifact FILE[:DIR]]... [--timeout S]\n"
          "                              [--attempts N]\n"
          "       dptrain track status OUT\n"
          "sync:   sends the records of OUT/mlflow-spool that the server has not acknowledged yet\n"
          "        (params, metrics, tags, files, run status), in order, from the saved cursor.\n"
          "        --mlflow-uri defaults to the run's server (OUT/mlflow-spool/run.json), then\n"
          "        $MLFLOW_TRACKING_URI; another server gets the whole spool as a new run.\n"
          "        --artifact adds FILE (under DIR on the run) before sending.\n"
          "        --timeout S per call (default 30), --attempts N per call (default 5).\n"
          "status: the run id, the server, and how many records are still to send.\n"
          "Exit: 0 all sent, 1 the server could not be reached (run sync again), 2 bad input.\n");
}

// "FILE[:DIR]": copies FILE into file, returns DIR ("" when absent).
static const char *split_artifact(const char *arg, char *file, size_t n) {
  snprintf(file, n, "%s", arg);
  char *colon = strrchr(file, ':');
  if (!colon) return "";
  *colon = 0;
  return arg + (colon - file) + 1;
}

static int spool_of(const char *out, char *spool, size_t n, trk_ident *id) {
  snprintf(spool, n, "%s/%s", out, TRK_SPOOL_DIRNAME);
  dp_err e;
  dp_err_clear(&e);
  int rc = trk_ident_load(spool, id, &e);
  if (rc == 1) {
    fprintf(stderr, "dptrain track: bad input: %s has no tracking spool (%s/run.json): was the run trained with "
                    "--mlflow-uri?\n", out, spool);
    return -1;
  }
  if (rc < 0) {
    fprintf(stderr, "dptrain track: bad input: %s\n", e.msg);
    return -1;
  }
  return 0;
}

static int cmd_status(const char *out) {
  char spool[1200];
  trk_ident id;
  if (spool_of(out, spool, sizeof spool, &id)) return 2;
  dp_err e;
  dp_err_clear(&e);
  int64_t off = trk_cursor_load(spool, &e);
  if (off < 0) {
    fprintf(stderr, "dptrain track: bad input: %s\n", e.msg);
    return 2;
  }
  int64_t pending = trk_spool_count_pending(spool, off);
  char rej[1300];
  snprintf(rej, sizeof rej, "%s/rejected.jsonl", spool);
  int64_t nrej = 0;
  FILE *f = fopen(rej, "r");
  if (f) {
    for (int c; (c = fgetc(f)) != EOF;) nrej += c == '\n';
    fclose(f);
  }
  printf("spool            %s\n", spool);
  printf("tracking server  %s\n", id.tracking_uri);
  printf("experiment       %s (id %s)\n", id.experiment, id.experiment_id[0] ? id.experiment_id : "not created yet");
  printf("run              %s (id %s)\n", id.run_name, id.run_id[0] ? id.run_id : "not created yet");
  printf("pending records  %lld%s\n", (long long)pending, pending > 0 ? "  (dptrain track sync OUT sends them)" : "");
  printf("rejected records %lld%s\n", (long long)nrej, nrej ? "  (see rejected.jsonl)" : "");
  return 0;
}

typedef struct {
  char out[1024], uri[1024];
  const char **arts;
  int narts;
  double timeout;
  int attempts;
} sync_args;

#define SY sync_args
static const dp_opt sync_opt_list[] = {
    DP_OPT_S(SY, "out", out, DP_OPT_POS | DP_OPT_REQUIRED, "the run's output directory (also positional)"),
    DP_OPT_S(SY, "mlflow-uri", uri, 0, "server (default: the run's, then $MLFLOW_TRACKING_URI)"),
    DP_OPT_L(SY, "artifact", arts, narts, 0, "files FILE[:DIR] to add to the run before sending"),
    DP_OPT_F(SY, "timeout", DP_OPT_DOUBLE, timeout, 1, 600, 0, "seconds per call"),
    DP_OPT_I(SY, "attempts", DP_OPT_INT, attempts, 1, 100, 0, "attempts per call"),
};
static const dp_opts sync_table = {
    "dptrain track sync", sync_opt_list, (int)(sizeof sync_opt_list / sizeof sync_opt_list[0]),
    "usage: dptrain track sync OUT [--mlflow-uri URL] [--artifact FILE[:DIR] ...] [--timeout S] [--attempts N]\n"
    "Sends the records of OUT/mlflow-spool the server has not acknowledged yet, in order, from the\n"
    "saved cursor; another server than the run's gets the whole spool as a new run.\n"
    "Exit status: 0 all sent, 1 the server could not be reached (run sync again), 2 bad input.\n",
    0};

static int cmd_sync(int argc, char **argv) {
  sync_args sa;
  memset(&sa, 0, sizeof sa);
  sa.timeout = 30;
  sa.attempts = 5;
  int prc = dp_opts_parse(&sync_table, &sa, argc, argv);
  if (prc) {
    free((void *)sa.arts);
    return prc > 0 ? 0 : 2;
  }
  const char *out = sa.out, *uri = sa.uri[0] ? sa.uri : NULL;
  const char **arts = sa.arts;
  int narts = sa.narts;
  double timeout = sa.timeout;
  int attempts = sa.attempts;
  char spool[1200];
  trk_ident id;
  if (spool_of(out, spool, sizeof spool, &id)) {
    free(arts);
    return 2;
  }
  if (!uri) uri = id.tracking_uri[0] ? id.tracking_uri : getenv("MLFLOW_TRACKING_URI");
  char why[512];
  if (!uri || trk_uri_check(uri, why, sizeof why)) {
    fprintf(stderr, "dptrain track sync: bad input: --mlflow-uri: %s\n", uri ? why : "no tracking server given");
    free(arts);
    return 2;
  }
  for (int k = 0; k < narts; k++) {
    char file[1100];
    split_artifact(arts[k], file, sizeof file);
    struct stat st;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
      fprintf(stderr, "dptrain track sync: bad input: --artifact %s: not a readable file\n", file);
      free(arts);
      return 2;
    }
  }
  dp_err e;
  dp_err_clear(&e);
  int lock_fd = -1;
  char holder[64];
  int lk = trk_spool_lock(spool, &lock_fd, holder, sizeof holder, &e);
  if (lk != 0) {
    fprintf(stderr, "dptrain track sync: %s\n",
            lk > 0 ? "the spool is being shipped by another process (a training still running?); try later" : e.msg);
    if (lk > 0) fprintf(stderr, "  holder: %s\n", holder);
    free(arts);
    return 1;
  }
  int rc = 0;
  if (strcmp(id.tracking_uri, uri)) {
    printf("%s was tracked to %s; sending all its records to a new run at %s\n", spool,
           id.tracking_uri[0] ? id.tracking_uri : "(none)", uri);
    id.run_id[0] = id.experiment_id[0] = id.artifact_uri[0] = 0;
    snprintf(id.tracking_uri, sizeof id.tracking_uri, "%s", uri);
    if (trk_ident_save(spool, &id, &e) || trk_cursor_save(spool, 0, &e)) goto local_fail;
  }
  if (narts) {
    trk_spool_writer w;
    if (trk_spool_writer_open(&w, spool, &e)) goto local_fail;
    for (int k = 0; k < narts; k++) {
      char file[1100];
      const char *dir = split_artifact(arts[k], file, sizeof file);
      char abs[4096];
      trk_spool_artifact(&w, realpath(file, abs) ? abs : file, dir);
    }
    if (trk_spool_writer_close(&w, &e)) goto local_fail;
  }
  if (trk_http_global_init(&e)) goto local_fail;
  trk_http_opts ho;
  trk_http_opts_default(&ho);
  ho.timeout_s = timeout;
  ho.connect_timeout_s = timeout < 10 ? timeout : 10;
  ho.max_attempts = attempts;
  ho.backoff_s = 1;
  ho.backoff_cap_s = 16;
  trk_client *c = trk_client_create(uri, &ho, &e);
  if (!c) goto local_fail;
  trk_ship_stats st;
  memset(&st, 0, sizeof st);
  int srv = trk_ship(c, spool, &id, &st, &e);
  trk_client_destroy(c);
  int64_t off = trk_cursor_load(spool, NULL);
  int64_t pending = off < 0 ? -1 : trk_spool_count_pending(spool, off);
  printf("sent %lld metric(s), %lld param(s), %lld tag(s), %lld file(s), %lld status change(s) in %lld request(s)",
         (long long)st.metrics, (long long)st.params, (long long)st.tags, (long long)st.artifacts,
         (long long)st.statuses, (long long)st.requests);
  if (st.rejected) printf("; %lld refused by the server (see %s/rejected.jsonl)", (long long)st.rejected, spool);
  printf("\n");
  if (srv == 0) {
    printf("run %s at %s: nothing left to send\n", id.run_id[0] ? id.run_id : "(none: empty spool)", uri);
  } else {
    fprintf(stderr, "dptrain track sync: %s\n  %lld record(s) still to send; run `dptrain track sync %s` again\n",
            e.msg, (long long)pending, out);
    rc = e.code == TRK_E_LOCAL ? 2 : 1;
  }
  trk_spool_unlock(lock_fd);
  free(arts);
  return rc;
local_fail:
  fprintf(stderr, "dptrain track sync: %s\n", e.msg);
  trk_spool_unlock(lock_fd);
  free(arts);
  return 2;
}

int cmd_track(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);   // a server closing a TLS connection must not end the command
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "sync")) return cmd_sync(argc - 1, argv + 1);
  if (!strcmp(argv[1], "status")) {
    if (argc != 3) {
      fprintf(stderr, "dptrain track status: bad input: give one OUT directory\n");
      return 2;
    }
    return cmd_status(argv[2]);
  }
  fprintf(stderr, "dptrain track: unknown subcommand '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
