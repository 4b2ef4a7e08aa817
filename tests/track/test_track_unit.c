// The MLflow client's pieces that need no MLflow server: request batching
// within MLflow's log-batch limits, the spool's records, cursor and identity,
// key cleaning, artifact proxy paths, URI checks, the promotion gate, the
// lineage config hash, and the HTTP layer's bounded timeouts, retries and
// error messages against local sockets: a closed port, a port that accepts
// and never answers, and a tiny server that answers 503 before 200 and 400
// with MLflow's error JSON.
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/timer.h"
#include "testutil.h"
#include "track/gate.h"
#include "track/http.h"
#include "track/mlflow.h"
#include "track/spool.h"
#include "track/tracker.h"
#include "train/config.h"
#include "train/lineage.h"

static char tmpdir[256];

// ---- batching -------------------------------------------------------------------
static trk_rec rec(trk_rec_kind k, const char *key, size_t bytes) {
  trk_rec r;
  memset(&r, 0, sizeof r);
  r.kind = k;
  r.bytes = bytes;
  r.key_hash = dp_fnv1a64_update(DP_FNV1A64_INIT, key, strlen(key)) ^ (uint64_t)k;
  return r;
}

static void test_batching(void) {
  trk_limits L;
  trk_limits_mlflow(&L);
  TU_CHECK(L.metrics == 1000 && L.params == 100 && L.tags == 100 && L.entities == 1000, "MLflow 3.17 limits");
  // 2500 metrics: 1000, 1000, 500.
  int n = 2500;
  trk_rec *r = calloc((size_t)n + 300, sizeof *r);
  for (int i = 0; i < n; i++) r[i] = rec(TRK_REC_METRIC, "loss", 80);
  int k1 = trk_plan_batch(r, n, &L), k2 = trk_plan_batch(r + k1, n - k1, &L);
  int k3 = trk_plan_batch(r + k1 + k2, n - k1 - k2, &L);
  TU_CHECK(k1 == 1000 && k2 == 1000 && k3 == 500, "metric batches %d %d %d", k1, k2, k3);
  // 150 params (distinct keys) among metrics: at most 100 params per request,
  // and params + metrics + tags <= 1000.
  n = 0;
  char key[32];
  for (int i = 0; i < 150; i++) {
    snprintf(key, sizeof key, "p%d", i);
    r[n++] = rec(TRK_REC_PARAM, key, 40);
    r[n++] = rec(TRK_REC_METRIC, "m", 40);
  }
  int k = trk_plan_batch(r, n, &L), np = 0, nm = 0;
  for (int i = 0; i < k; i++) np += r[i].kind == TRK_REC_PARAM, nm += r[i].kind == TRK_REC_METRIC;
  TU_CHECK(np == 100 && nm <= 1000 && np + nm <= 1000, "params %d metrics %d in the first request", np, nm);
  // 950 metrics then 100 tags: the entity total caps the request at 1000.
  n = 0;
  for (int i = 0; i < 950; i++) r[n++] = rec(TRK_REC_METRIC, "m", 40);
  for (int i = 0; i < 100; i++) snprintf(key, sizeof key, "t%d", i), r[n++] = rec(TRK_REC_TAG, key, 40);
  k = trk_plan_batch(r, n, &L);
  TU_CHECK(k == 1000, "entities cap: %d", k);
  // A repeated param key ends the request (MLflow refuses duplicate keys).
  n = 0;
  r[n++] = rec(TRK_REC_PARAM, "lr", 20);
  r[n++] = rec(TRK_REC_METRIC, "m", 20);
  r[n++] = rec(TRK_REC_PARAM, "lr", 20);
  TU_CHECK(trk_plan_batch(r, n, &L) == 2, "duplicate param key splits");
  // Bytes: 2,000 records of 1,000 bytes go in requests under 900 KB.
  n = 2000;
  for (int i = 0; i < n; i++) r[i] = rec(TRK_REC_METRIC, "m", 1000);
  k = trk_plan_batch(r, n, &L);
  TU_CHECK(k == 900, "byte cap: %d records of 1000 bytes", k);
  // Artifacts and status records go alone, and end a run of metrics.
  n = 0;
  r[n++] = rec(TRK_REC_METRIC, "m", 10);
  r[n++] = rec(TRK_REC_ARTIFACT, "", 10);
  r[n++] = rec(TRK_REC_METRIC, "m", 10);
  TU_CHECK(trk_plan_batch(r, n, &L) == 1 && trk_plan_batch(r + 1, n - 1, &L) == 1, "artifact alone");
  free(r);
}

// ---- spool ----------------------------------------------------------------------
static void test_spool(void) {
  char dir[300];
  snprintf(dir, sizeof dir, "%s/out/mlflow-spool", tmpdir);
  dp_err e;
  dp_err_clear(&e);
  trk_spool_writer w;
  TU_CHECK(trk_spool_writer_open(&w, dir, &e) == 0, "%s", e.msg);
  char *longv = malloc(9001);
  memset(longv, 'x', 9000);
  longv[9000] = 0;
  trk_spool_param(&w, "lr", "0.1");
  trk_spool_metric(&w, "val_f1/wrong background!", 0.25, 7, 1700000000123);
  trk_spool_metric(&w, "loss", NAN, 8, 1700000000124);
  trk_spool_tag(&w, "note", "quote \" and \\ and \n newline");
  trk_spool_param(&w, "long", longv);
  trk_spool_tag(&w, "longtag", longv);
  char art[400];
  snprintf(art, sizeof art, "%s/out/results.json", tmpdir);
  trk_spool_artifact(&w, art, "");
  trk_spool_status(&w, "FINISHED", 1700000000999);
  TU_CHECK(trk_spool_flush(&w, &e) == 0, "%s", e.msg);
  // Nothing can be read before the flush of a second writer's rows; an
  // incomplete line at the end is not a record yet.
  char path[400];
  snprintf(path, sizeof path, "%s/records.jsonl", dir);
  FILE *f = fopen(path, "a");
  fputs("{\"k\":\"m\",\"key\":\"half", f);
  fclose(f);
  trk_rec *r;
  int64_t size;
  int n = trk_spool_read(dir, 0, 100, &r, &size, &e);
  TU_CHECK(n == 8, "records read back: %d (%s)", n, e.msg);
  if (n == 8) {
    TU_CHECK(r[0].kind == TRK_REC_PARAM && !strcmp(r[0].key, "lr") && !strcmp(r[0].value, "0.1"), "param");
    TU_CHECK(r[1].kind == TRK_REC_METRIC && !strcmp(r[1].key, "val_f1/wrong background_") && r[1].num == 0.25 &&
                 r[1].step == 7 && r[1].ts == 1700000000123,
             "metric key cleaned, value/step/ts kept: '%s'", r[1].key);
    TU_CHECK(isnan(r[2].num), "NaN metric round-trips");
    TU_CHECK(!strcmp(r[3].value, "quote \" and \\ and \n newline"), "escapes round-trip: '%s'", r[3].value);
    TU_CHECK(strlen(r[4].value) == TRK_PARAM_VALUE_MAX, "param value cut to 6000: %zu", strlen(r[4].value));
    TU_CHECK(strlen(r[5].value) == TRK_TAG_VALUE_MAX, "tag value cut to 8000: %zu", strlen(r[5].value));
    TU_CHECK(r[6].kind == TRK_REC_ARTIFACT && !strcmp(r[6].file, "results.json"), "artifact relative to OUT: %s",
             r[6].file);
    TU_CHECK(r[7].kind == TRK_REC_STATUS && !strcmp(r[7].value, "FINISHED"), "status");
    TU_CHECK(r[0].off == 0 && r[7].end_off < size, "offsets: last record ends before the partial line");
    // Reading from the middle gives the rest.
    trk_rec *r2;
    int n2 = trk_spool_read(dir, r[5].end_off, 100, &r2, NULL, &e);
    TU_CHECK(n2 == 2 && r2[0].kind == TRK_REC_ARTIFACT, "read from an offset: %d", n2);
    trk_recs_free(r2, n2 > 0 ? n2 : 0);
    TU_CHECK(trk_spool_count_pending(dir, r[3].off) == 5, "pending count");
  }
  trk_recs_free(r, n > 0 ? n : 0);
  trk_spool_writer_close(&w, &e);
  free(longv);
  // Cursor and identity.
  TU_CHECK(trk_cursor_load(dir, &e) == 0, "no cursor: 0");
  TU_CHECK(trk_cursor_save(dir, 12345, &e) == 0 && trk_cursor_load(dir, &e) == 12345, "cursor round trip");
  trk_ident id, id2;
  TU_CHECK(trk_ident_load(dir, &id, &e) == 1, "no run.json yet");
  memset(&id, 0, sizeof id);
  trk_make_spool_id(id.spool_id, sizeof id.spool_id);
  TU_CHECK(strlen(id.spool_id) == 32, "spool id is 32 hex digits: %s", id.spool_id);
  snprintf(id.tracking_uri, sizeof id.tracking_uri, "http://h:1");
  snprintf(id.run_id, sizeof id.run_id, "abc");
  id.start_ms = 1700000000000;
  TU_CHECK(trk_ident_save(dir, &id, &e) == 0 && trk_ident_load(dir, &id2, &e) == 0, "%s", e.msg);
  TU_CHECK(!strcmp(id2.spool_id, id.spool_id) && !strcmp(id2.run_id, "abc") && id2.start_ms == id.start_ms,
           "identity round trip");
  // One shipper per spool.
  int fd1 = -1, fd2 = -1;
  char holder[64];
  TU_CHECK(trk_spool_lock(dir, &fd1, holder, sizeof holder, &e) == 0, "first lock");
  TU_CHECK(trk_spool_lock(dir, &fd2, holder, sizeof holder, &e) == 1, "second lock refused");
  trk_spool_unlock(fd1);
  TU_CHECK(trk_spool_lock(dir, &fd2, holder, sizeof holder, &e) == 0, "lock again after unlock");
  trk_spool_unlock(fd2);
}

static void test_paths_uris_gate(void) {
  char out[256], why[512];
  TU_CHECK(trk_artifact_proxy_path("mlflow-artifacts:/1/r/artifacts", out, sizeof out, why, sizeof why) == 0 &&
               !strcmp(out, "1/r/artifacts"),
           "mlflow-artifacts:/ -> %s", out);
  TU_CHECK(trk_artifact_proxy_path("mlflow-artifacts://h:5000/1/r/artifacts/", out, sizeof out, why, sizeof why) == 0 &&
               !strcmp(out, "1/r/artifacts"),
           "mlflow-artifacts://host -> %s", out);
  TU_CHECK(trk_artifact_proxy_path("http://h/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts", out, sizeof out, why,
                                   sizeof why) == 0 &&
               !strcmp(out, "1/r/artifacts"),
           "http proxy URL -> %s", out);
  TU_CHECK(trk_artifact_proxy_path("s3://bucket/x", out, sizeof out, why, sizeof why) == -1 && strstr(why, "s3://"),
           "s3 is not proxied: %s", why);
  TU_CHECK(trk_artifact_proxy_path("mlflow-artifacts:/1/../../etc", out, sizeof out, why, sizeof why) == -1,
           "'..' refused");
  TU_CHECK(trk_uri_check("http://127.0.0.1:5000", why, sizeof why) == 0, "http ok");
  TU_CHECK(trk_uri_check("https://mlflow.example.com/prefix", why, sizeof why) == 0, "https ok");
  TU_CHECK(trk_uri_check("file:./mlruns", why, sizeof why) == -1, "file: refused");
  TU_CHECK(trk_uri_check("http://", why, sizeof why) == -1, "no host refused");
  TU_CHECK(trk_uri_check("http://a b", why, sizeof why) == -1, "space refused");
  trk_gate g;
  trk_gate_decide(0.80, 0.5, NULL, NAN, "production", &g);
  TU_CHECK(g.pass, "no holder, above min: %s", g.reason);
  trk_gate_decide(0.40, 0.5, NULL, NAN, "production", &g);
  TU_CHECK(!g.pass && strstr(g.reason, "below --min-macro-f1"), "below min: %s", g.reason);
  trk_gate_decide(0.70, 0.5, "3", 0.75, "production", &g);
  TU_CHECK(!g.pass && strstr(g.reason, "version 3"), "below holder: %s", g.reason);
  trk_gate_decide(0.75, 0.5, "3", 0.75, "production", &g);
  TU_CHECK(g.pass, "equal to holder passes: %s", g.reason);
  trk_gate_decide(NAN, 0.0, NULL, NAN, "production", &g);
  TU_CHECK(!g.pass, "NaN never passes");
}

static void test_config_hash(void) {
  train_config c;
  train_config_defaults(&c);
  snprintf(c.train, sizeof c.train, "a/train-*.h5");
  char h1[64], h2[64], h3[64], hf[64];
  lineage_config_hash(&c, h1, sizeof h1);
  char path[400];
  snprintf(path, sizeof path, "%s/config.ini", tmpdir);
  FILE *f = fopen(path, "w");
  train_config_write(&c, f);
  fclose(f);
  dp_err e;
  dp_err_clear(&e);
  TU_CHECK(lineage_config_hash_file(path, hf, sizeof hf, &e) == 0, "%s", e.msg);
  TU_CHECK(!strcmp(h1, hf), "hash of the config (%s) == hash of its config.ini (%s)", h1, hf);
  snprintf(c.out, sizeof c.out, "elsewhere");
  snprintf(c.mlflow_uri, sizeof c.mlflow_uri, "http://x:1");
  c.threads = 7;
  lineage_config_hash(&c, h2, sizeof h2);
  TU_CHECK(!strcmp(h1, h2), "output/tracking/thread settings do not change the hash");
  c.lr = 0.05f;
  lineage_config_hash(&c, h3, sizeof h3);
  TU_CHECK(strcmp(h1, h3), "the learning rate changes the hash");
}

// ---- HTTP against local sockets ------------------------------------------------
static int listen_socket(int *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) return -1;
  socklen_t L = sizeof a;
  getsockname(s, (struct sockaddr *)&a, &L);
  *port = ntohs(a.sin_port);
  return s;
}

typedef struct {
  int fd;
  int fail_first;   // answer 503 this many times, then 200
  int requests;
  char last[8192];  // the last request's head
} fake_server;

// Answers each connection's request: "/bad" gets 400 with MLflow's error
// JSON, anything else 503 fail_first times, then 200 {"ok": 1}.
static void *fake_main(void *arg) {
  fake_server *fs = arg;
  for (;;) {
    int c = accept(fs->fd, NULL, NULL);
    if (c < 0) return NULL;
    char buf[8192];
    size_t got = 0;
    while (got < sizeof buf - 1) {
      ssize_t k = read(c, buf + got, sizeof buf - 1 - got);
      if (k <= 0) break;
      got += (size_t)k;
      buf[got] = 0;
      if (strstr(buf, "\r\n\r\n")) break;
    }
    if (!strncmp(buf, "QUIT", 4)) {
      close(c);
      return NULL;
    }
    fs->requests++;
    snprintf(fs->last, sizeof fs->last, "%s", buf);
    const char *body;
    int code;
    if (strstr(buf, " /bad ")) code = 400, body = "{\"error_code\": \"INVALID_PARAMETER_VALUE\", \"message\": \"no such thing\"}";
    else if (fs->requests <= fs->fail_first) code = 503, body = "<html>busy</html>";
    else code = 200, body = "{\"ok\": 1}";
    char resp[512];
    int n = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s", code, strlen(body), body);
    if (write(c, resp, (size_t)n) != n) fprintf(stderr, "fake server: short write\n");
    close(c);
  }
}

static int abort_after(void *ctx) { return dp_now() > *(double *)ctx; }

static void test_http(void) {
  dp_err e;
  dp_err_clear(&e);
  TU_CHECK(trk_http_global_init(&e) == 0, "%s", e.msg);
  trk_http_opts o;
  trk_http_opts_default(&o);
  o.connect_timeout_s = 1;
  o.timeout_s = 1;
  o.max_attempts = 3;
  o.backoff_s = 0.1;
  o.backoff_cap_s = 0.15;
  // A closed port: refused at once, retried twice with 0.1 + 0.15 s (capped) of backoff.
  int port;
  int s = listen_socket(&port);
  close(s);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/api/2.0/mlflow/x", port);
  trk_http *h = trk_http_create(&o, &e);
  trk_resp r = {0};
  double t0 = dp_now();
  int rc = trk_http_json(h, "GET", url, NULL, &r, &e);
  double dt = dp_now() - t0;
  TU_CHECK(rc == -1 && e.code == TRK_E_RETRYABLE, "refused: rc %d code %d", rc, e.code);
  TU_CHECK(strstr(e.msg, url) && strstr(e.msg, "3 attempts"), "message names the URL and attempts: %s", e.msg);
  TU_CHECK(dt >= 0.24 && dt < 1.5, "refused: backoff 0.1 + 0.15 s (capped), took %.2f s", dt);
  // Accepts (kernel backlog) and never answers: each attempt ends at the 1 s timeout.
  s = listen_socket(&port);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/api/2.0/mlflow/x", port);
  o.max_attempts = 2;
  trk_http_destroy(h);
  h = trk_http_create(&o, &e);
  dp_err_clear(&e);
  t0 = dp_now();
  rc = trk_http_json(h, "POST", url, "{}", &r, &e);
  dt = dp_now() - t0;
  TU_CHECK(rc == -1 && e.code == TRK_E_RETRYABLE, "silent server: rc %d code %d", rc, e.code);
  TU_CHECK(strstr(e.msg, "imed out") && strstr(e.msg, url), "timeout message: %s", e.msg);
  TU_CHECK(dt >= 2.0 && dt < 3.5, "2 attempts x 1 s timeout + 0.1 s backoff, took %.2f s", dt);
  // The abort callback ends a hung call early.
  double deadline = dp_now() + 0.3;
  o.timeout_s = 30;
  o.should_abort = abort_after;
  o.abort_ctx = &deadline;
  trk_http_destroy(h);
  h = trk_http_create(&o, &e);
  dp_err_clear(&e);
  t0 = dp_now();
  rc = trk_http_json(h, "POST", url, "{}", &r, &e);
  dt = dp_now() - t0;
  TU_CHECK(rc == -1 && e.code == TRK_E_ABORTED && dt < 2.0, "abort: code %d after %.2f s (%s)", e.code, dt, e.msg);
  close(s);
  trk_http_destroy(h);
  // 503 twice, then 200: retried and succeeds; 400 is not retried and carries
  // MLflow's message.
  fake_server fs = {listen_socket(&port), 2, 0, ""};
  pthread_t th;
  pthread_create(&th, NULL, fake_main, &fs);
  o.should_abort = NULL;
  o.timeout_s = 5;
  o.max_attempts = 3;
  h = trk_http_create(&o, &e);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", port);
  dp_err_clear(&e);
  rc = trk_http_json(h, "GET", url, NULL, &r, &e);
  TU_CHECK(rc == 0 && r.status == 200 && strstr(r.body, "\"ok\"") && fs.requests == 3,
           "503, 503, 200: rc %d status %ld after %d requests (%s)", rc, r.status, fs.requests, e.msg);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/bad", port);
  int before = fs.requests;
  dp_err_clear(&e);
  rc = trk_http_json(h, "GET", url, NULL, &r, &e);
  TU_CHECK(rc == -1 && e.code == TRK_E_CLIENT && fs.requests == before + 1, "400 not retried (%d requests)",
           fs.requests - before);
  TU_CHECK(strstr(e.msg, "HTTP 400 INVALID_PARAMETER_VALUE: no such thing") && strstr(e.msg, url),
           "400 message: %s", e.msg);
  trk_http_destroy(h);
  // Credentials: basic auth, or a bearer token, in the request headers.
  snprintf(o.user, sizeof o.user, "u");
  snprintf(o.password, sizeof o.password, "p");
  h = trk_http_create(&o, &e);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", port);
  rc = trk_http_json(h, "GET", url, NULL, &r, &e);
  TU_CHECK(rc == 0 && strstr(fs.last, "Authorization: Basic dTpw"), "basic auth header: %s", fs.last);
  trk_http_destroy(h);
  o.user[0] = o.password[0] = 0;
  snprintf(o.token, sizeof o.token, "tok123");
  h = trk_http_create(&o, &e);
  rc = trk_http_json(h, "GET", url, NULL, &r, &e);
  TU_CHECK(rc == 0 && strstr(fs.last, "Authorization: Bearer tok123"), "bearer header: %s", fs.last);
  trk_resp_free(&r);
  trk_http_destroy(h);
  int q = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  if (connect(q, (struct sockaddr *)&a, sizeof a) == 0 && write(q, "QUIT\r\n\r\n", 8) != 8) fprintf(stderr, "quit\n");
  close(q);
  pthread_join(th, NULL);
  close(fs.fd);
}

// A fresh start into an OUT with a spool begins a new run (the old spool is
// moved aside); a resumed one continues the spool's run.
static void test_open_resume(void) {
  char dir[300], prev[400];
  snprintf(dir, sizeof dir, "%s/resume/mlflow-spool", tmpdir);
  int port;
  int s = listen_socket(&port);
  close(s);   // nothing listens: the shipper fails fast, training does not care
  char uri[64];
  snprintf(uri, sizeof uri, "http://127.0.0.1:%d", port);
  trk_open_opts o = {uri, "e", "r", dir, 1, 0};
  dp_err e;
  dp_err_clear(&e);
  int resumed = -1;
  trk_ident a, b, c2;
  trk_tracker *t = trk_open(&o, &resumed, &e);
  TU_CHECK(t && resumed == 0, "first open: %s", e.msg);
  trk_metric(t, "loss", 1.0, 1);
  trk_identity(t, &a);
  double t0 = dp_now();
  int64_t left = trk_close(t, 0.5);
  TU_CHECK(left == 1 && dp_now() - t0 < 5, "one record left after a bounded close (%lld, %.1f s)", (long long)left,
           dp_now() - t0);
  o.continue_run = 1;
  t = trk_open(&o, &resumed, &e);
  TU_CHECK(t && resumed == 1, "resume: %s", e.msg);
  trk_identity(t, &b);
  TU_CHECK(!strcmp(a.spool_id, b.spool_id) && a.start_ms == b.start_ms, "resume keeps the run's identity");
  trk_close(t, 0.5);
  o.continue_run = 0;
  t = trk_open(&o, &resumed, &e);
  TU_CHECK(t && resumed == 0, "fresh start: %s", e.msg);
  trk_identity(t, &c2);
  TU_CHECK(strcmp(a.spool_id, c2.spool_id), "a fresh start is a new run");
  trk_close(t, 0.5);
  snprintf(prev, sizeof prev, "%s.prev-%s/records.jsonl", dir, a.spool_id);
  TU_CHECK(tu_file_exists(prev), "the earlier spool is kept as %s", prev);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/dptrain-track-unit-XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_batching();
  test_spool();
  test_paths_uris_gate();
  test_config_hash();
  test_http();
  test_open_resume();
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return tu_finish("test_track_unit");
}
