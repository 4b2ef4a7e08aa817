#include "track/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/afile.h"
#include "core/jsonread.h"
#include "core/timer.h"

#define RESP_MAX ((size_t)64 << 20)   // a response larger than this is a server bug, not data

struct trk_http {
  CURL *curl;
  trk_http_opts o;
  char errbuf[CURL_ERROR_SIZE];
};

void trk_http_opts_default(trk_http_opts *o) {
  memset(o, 0, sizeof *o);
  o->connect_timeout_s = 5;
  o->timeout_s = 10;
  o->max_attempts = 3;
  o->backoff_s = 0.5;
  o->backoff_cap_s = 8;
}

static void env_copy(const char *name, char *out, size_t n) {
  const char *v = getenv(name);
  if (v) snprintf(out, n, "%s", v);
}

void trk_http_opts_from_env(trk_http_opts *o) {
  env_copy("MLFLOW_TRACKING_USERNAME", o->user, sizeof o->user);
  env_copy("MLFLOW_TRACKING_PASSWORD", o->password, sizeof o->password);
  env_copy("MLFLOW_TRACKING_TOKEN", o->token, sizeof o->token);
  env_copy("MLFLOW_TRACKING_SERVER_CERT_PATH", o->ca_file, sizeof o->ca_file);
  const char *k = getenv("MLFLOW_TRACKING_INSECURE_TLS");
  o->insecure_tls = k && (!strcasecmp(k, "true") || !strcmp(k, "1"));
}

void trk_resp_free(trk_resp *r) {
  if (!r) return;
  free(r->body);
  r->body = NULL;
  r->len = 0;
}

int trk_http_global_init(dp_err *err) {
  // curl_global_init is not thread-safe; callers run it from the main thread
  // before starting the shipper. Repeated calls are reference-counted by curl.
  CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (c != CURLE_OK) {
    dp_err_set(err, TRK_E_LOCAL, "curl_global_init: %s", curl_easy_strerror(c));
    return -1;
  }
  return 0;
}

trk_http *trk_http_create(const trk_http_opts *o, dp_err *err) {
  trk_http *h = dp_calloc(1, sizeof *h, "http client");
  h->o = *o;
  if (h->o.max_attempts < 1) h->o.max_attempts = 1;
  h->curl = curl_easy_init();
  if (!h->curl) {
    dp_err_set(err, TRK_E_LOCAL, "curl_easy_init failed (out of memory?)");
    free(h);
    return NULL;
  }
  return h;
}

void trk_http_destroy(trk_http *h) {
  if (!h) return;
  curl_easy_cleanup(h->curl);
  free(h);
}

const trk_http_opts *trk_http_get_opts(const trk_http *h) { return &h->o; }

char *trk_url_escape(const char *s, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  char *out = dp_malloc(3 * n + 1, "url escape");
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
    if (plain) {
      out[k++] = (char)c;
    } else {
      out[k++] = '%';
      out[k++] = hex[c >> 4];
      out[k++] = hex[c & 15];
    }
  }
  out[k] = 0;
  return out;
}

// ---- transfer plumbing ----------------------------------------------------------
typedef struct {
  char *buf;
  size_t len, cap;
  int overflow;
} membuf;

static void membuf_add(membuf *m, const char *p, size_t n) {
  if (m->len + n + 1 > RESP_MAX) {
    m->overflow = 1;
    return;
  }
  if (m->len + n + 1 > m->cap) {
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < m->len + n + 1) cap *= 2;
    m->buf = dp_realloc(m->buf, cap, "http response");
    m->cap = cap;
  }
  memcpy(m->buf + m->len, p, n);
  m->len += n;
  m->buf[m->len] = 0;
}

typedef struct {
  CURL *curl;
  membuf mem;    // JSON responses, and error bodies of file downloads
  FILE *file;    // download target (2xx bodies only)
  int file_error;
} sink;

static size_t on_write(char *p, size_t size, size_t nmemb, void *ctx) {
  sink *s = ctx;
  size_t n = size * nmemb;
  long code = 0;
  if (s->file) curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
  if (s->file && code >= 200 && code < 300) {
    if (fwrite(p, 1, n, s->file) != n) {
      s->file_error = errno ? errno : EIO;
      return 0;   // curl stops with CURLE_WRITE_ERROR
    }
    return n;
  }
  membuf_add(&s->mem, p, n);
  return n;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  const trk_http_opts *o = ctx;
  return o->should_abort && o->should_abort(o->abort_ctx) ? 1 : 0;
}

static int aborted(const trk_http_opts *o) { return o->should_abort && o->should_abort(o->abort_ctx); }

// Sleeps d seconds in short slices; returns 1 when the abort callback fired.
static int backoff_sleep(const trk_http_opts *o, double d) {
  double end = dp_now() + d;
  while (dp_now() < end) {
    if (aborted(o)) return 1;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return aborted(o);
}

// MLflow error bodies are {"error_code": "...", "message": "..."}.
static void server_message(const char *body, size_t len, char *out, size_t n) {
  out[0] = 0;
  if (!body || !len) return;
  char perr[64];
  jv *v = jv_parse(body, len, perr, sizeof perr);
  const char *code = v ? jv_str(v, "error_code", NULL) : NULL;
  const char *msg = v ? jv_str(v, "message", NULL) : NULL;
  if (code || msg) {
    snprintf(out, n, "%s%s%.400s", code ? code : "", code && msg ? ": " : "", msg ? msg : "");
  } else {
    // Not MLflow's JSON (a proxy's HTML page, say): the first line is enough.
    size_t k = 0;
    while (k < len && k < 200 && body[k] != '\n' && body[k] != '\r') k++;
    snprintf(out, n, "%.*s", (int)k, body);
  }
  jv_free(v);
}

static int retryable_curl(CURLcode c) {
  switch (c) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_READ_ERROR:
    case CURLE_WRITE_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FILESIZE_EXCEEDED:
      return 0;
    default:
      return 1;
  }
}

typedef enum { BODY_NONE, BODY_JSON, BODY_FILE_UP } body_kind;

typedef struct {
  const char *method, *url;
  body_kind kind;
  const char *json;
  const char *up_path;     // BODY_FILE_UP
  FILE *down;              // download target, NULL for in-memory
  int file_transfer;       // stall limit instead of a total timeout
} request;

// One request with retries. Returns 0 on 2xx, -1 with err set.
static int perform(trk_http *h, const request *rq, trk_resp *resp, dp_err *err) {
  const trk_http_opts *o = &h->o;
  CURL *c = h->curl;
  double delay = o->backoff_s > 0 ? o->backoff_s : 0.1;
  for (int attempt = 1;; attempt++) {
    if (aborted(o)) {
      dp_err_set(err, TRK_E_ABORTED, "%s %s: aborted (tracking is shutting down)", rq->method, rq->url);
      return -1;
    }
    curl_easy_reset(c);
    sink s = {.curl = c, .file = rq->down};
    if (rq->down) {
      // A retried download starts the file again.
      if (fseek(rq->down, 0, SEEK_SET) != 0 || ftruncate(fileno(rq->down), 0) != 0) {
        dp_err_set(err, TRK_E_LOCAL, "%s %s: cannot rewind the download file: %s", rq->method, rq->url,
                   strerror(errno));
        return -1;
      }
    }
    FILE *up = NULL;
    struct curl_slist *hdr = NULL;
    h->errbuf[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);   // no SIGALRM in a threaded process
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout_s * 1000));
    if (rq->file_transfer) {
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(o->timeout_s > 1 ? o->timeout_s : 1));
    } else {
      curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)o);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dptrain-track/1");
    // A server behind a proxy may redirect (http -> https, a path prefix):
    // follow a few, keeping POST a POST.
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(c, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
    if (o->user[0]) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
      curl_easy_setopt(c, CURLOPT_USERNAME, o->user);
      curl_easy_setopt(c, CURLOPT_PASSWORD, o->password);
    }
    if (o->ca_file[0]) curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    if (o->insecure_tls) {
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    hdr = curl_slist_append(hdr, "Accept: application/json");
    if (o->token[0]) {
      char auth[1100];
      snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
      hdr = curl_slist_append(hdr, auth);
    }
    if (rq->kind == BODY_JSON) {
      hdr = curl_slist_append(hdr, "Content-Type: application/json");
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->json);
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(rq->json));
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    } else if (rq->kind == BODY_FILE_UP) {
      up = fopen(rq->up_path, "rb");
      struct stat st;
      if (!up || fstat(fileno(up), &st) != 0) {
        dp_err_set(err, TRK_E_LOCAL, "%s %s: cannot read %s: %s", rq->method, rq->url, rq->up_path, strerror(errno));
        if (up) fclose(up);
        curl_slist_free_all(hdr);
        return -1;
      }
      hdr = curl_slist_append(hdr, "Content-Type: application/octet-stream");
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_READDATA, up);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
    } else if (strcmp(rq->method, "GET")) {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    if (up) fclose(up);
    if (resp) {
      trk_resp_free(resp);
      resp->status = code;
      resp->body = s.mem.buf ? s.mem.buf : dp_strdup("");
      resp->len = s.mem.len;
      s.mem.buf = NULL;
    }
    char msg[512];
    int retry = 0;
    if (rc == CURLE_OK && code >= 200 && code < 300 && !s.mem.overflow) {
      free(s.mem.buf);
      if (o->on_success) o->on_success(o->abort_ctx);
      return 0;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
      dp_err_set(err, TRK_E_ABORTED, "%s %s: aborted (tracking is shutting down)", rq->method, rq->url);
      free(s.mem.buf);
      return -1;
    }
    if (rc == CURLE_WRITE_ERROR && s.file_error) {
      dp_err_set(err, TRK_E_LOCAL, "%s %s: writing the download failed: %s", rq->method, rq->url,
                 strerror(s.file_error));
      free(s.mem.buf);
      return -1;
    }
    if (rc != CURLE_OK) {
      retry = retryable_curl(rc);
      snprintf(msg, sizeof msg, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
    } else if (s.mem.overflow) {
      snprintf(msg, sizeof msg, "response larger than %zu bytes", RESP_MAX);
    } else {
      char sm[448];
      const char *b = resp ? resp->body : s.mem.buf;
      size_t bl = resp ? resp->len : s.mem.len;
      server_message(b, bl, sm, sizeof sm);
      snprintf(msg, sizeof msg, "HTTP %ld%s%s", code, sm[0] ? " " : "", sm);
      retry = code == 429 || code >= 500;
    }
    free(s.mem.buf);
    int code_kind = retry ? TRK_E_RETRYABLE : TRK_E_CLIENT;
    if (!retry || attempt >= o->max_attempts) {
      dp_err_set(err, code_kind, "%s %s: %s%s", rq->method, rq->url, msg,
                 retry ? " (gave up after retries)" : "");
      if (retry && o->max_attempts > 1) {
        char tail[64];
        snprintf(tail, sizeof tail, " [%d attempts]", attempt);
        size_t L = strlen(err->msg);
        snprintf(err->msg + L, sizeof err->msg - L, "%s", tail);
      }
      return -1;
    }
    if (backoff_sleep(o, delay)) {
      dp_err_set(err, TRK_E_ABORTED, "%s %s: %s; retry aborted (tracking is shutting down)", rq->method, rq->url,
                 msg);
      return -1;
    }
    delay *= 2;
    if (delay > o->backoff_cap_s) delay = o->backoff_cap_s;
  }
}

int trk_http_json(trk_http *h, const char *method, const char *url, const char *json_body, trk_resp *resp,
                  dp_err *err) {
  request rq = {.method = method, .url = url, .kind = json_body ? BODY_JSON : BODY_NONE, .json = json_body};
  trk_resp local = {0};
  int rc = perform(h, &rq, resp ? resp : &local, err);
  trk_resp_free(&local);
  return rc;
}

int trk_http_put_file(trk_http *h, const char *url, const char *path, dp_err *err) {
  request rq = {.method = "PUT", .url = url, .kind = BODY_FILE_UP, .up_path = path, .file_transfer = 1};
  return perform(h, &rq, NULL, err);
}

int trk_http_get_file(trk_http *h, const char *url, const char *path, dp_err *err) {
  dp_afile *af = dp_afile_open(path, err);
  if (!af) {
    err->code = TRK_E_LOCAL;
    return -1;
  }
  request rq = {.method = "GET", .url = url, .kind = BODY_NONE, .down = dp_afile_stream(af), .file_transfer = 1};
  if (perform(h, &rq, NULL, err) != 0) {
    dp_afile_abort(af);
    return -1;
  }
  if (dp_afile_commit(af, err) != 0) {
    err->code = TRK_E_LOCAL;
    return -1;
  }
  return 0;
}
