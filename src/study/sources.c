#include "study/sources.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/jsonread.h"

// ---- a TAB-separated table with a header row -----------------------------------
#define TSV_MAXCOL 16
typedef struct {
  const char *path;
  int lineno, ncol;
  char *col[TSV_MAXCOL];     // header names
  char *tok[TSV_MAXCOL];     // current row
  int nt;
} tsv;

static int tsv_col(const tsv *t, const char *name) {
  for (int k = 0; k < t->ncol; k++)
    if (!strcmp(t->col[k], name)) return k;
  return -1;
}

// Splits line into t->tok; returns the token count.
static int tsv_split(char *line, char **tok) {
  int nt = 0;
  char *save = NULL;
  for (char *p = strtok_r(line, "\t\r\n", &save); p && nt < TSV_MAXCOL; p = strtok_r(NULL, "\t\r\n", &save))
    tok[nt++] = p;
  return nt;
}

// Calls row(ctx, t) for every data row; the header must name `required`
// (NULL-terminated). Returns 0, or -1 with err filled.
static int tsv_read(const char *path, const char *const *required, int (*row)(void *ctx, tsv *t, char *err, int err_sz),
                    void *ctx, char *err, int err_sz) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, err_sz, "cannot open '%s': %s", path, strerror(errno));
    return -1;
  }
  tsv t = {path, 0, 0, {0}, {0}, 0};
  char header[2048], line[2048];
  int have_header = 0, rc = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    t.lineno++;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '#' || *s == '\n' || *s == '\r') continue;
    if (!have_header) {
      snprintf(header, sizeof header, "%s", s);
      t.ncol = tsv_split(header, t.col);
      have_header = 1;
      for (int k = 0; required[k]; k++)
        if (tsv_col(&t, required[k]) < 0) {
          snprintf(err, err_sz, "%s:%d: the header row lacks the column '%s'", path, t.lineno, required[k]);
          rc = -1;
        }
      continue;
    }
    t.nt = tsv_split(s, t.tok);
    if (t.nt != t.ncol) {
      snprintf(err, err_sz, "%s:%d: %d columns, the header has %d (TAB-separated)", path, t.lineno, t.nt, t.ncol);
      rc = -1;
      break;
    }
    rc = row(ctx, &t, err, err_sz);
  }
  fclose(f);
  if (rc == 0 && !have_header) {
    snprintf(err, err_sz, "%s: no header row", path);
    rc = -1;
  }
  return rc;
}

static const char *tsv_get(const tsv *t, const char *name) {
  int k = tsv_col(t, name);
  return k >= 0 ? t->tok[k] : "";
}

// Field into a fixed buffer: TSV_COPY(t, c->name, "name").
#define TSV_COPY(t, dst, name) snprintf((dst), sizeof(dst), "%s", tsv_get((t), (name)))

static int tsv_num(const tsv *t, const char *name, double lo, double *out, char *err, int err_sz) {
  const char *s = tsv_get(t, name);
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo)) {
    snprintf(err, err_sz, "%s:%d: column '%s' ('%s') is not a number >= %g", t->path, t->lineno, name, s, lo);
    return -1;
  }
  *out = v;
  return 0;
}

// ---- scenarios ----------------------------------------------------------------
static int sc_row(void *ctx, tsv *t, char *err, int err_sz) {
  study_sources *s = ctx;
  s->sc = dp_realloc(s->sc, (size_t)(s->nsc + 1) * sizeof *s->sc, "scenarios");
  sc_scenario *c = &s->sc[s->nsc];
  memset(c, 0, sizeof *c);
  TSV_COPY(t, c->name, "name");
  TSV_COPY(t, c->model, "model");
  TSV_COPY(t, c->optimizer, "optimizer");
  TSV_COPY(t, c->what, "what");
  double v[4];
  const char *nums[4] = {"image_size", "epochs", "batch", "classes"};
  for (int k = 0; k < 4; k++)
    if (tsv_num(t, nums[k], 1, &v[k], err, err_sz)) return -1;
  c->image_size = (int64_t)v[0], c->epochs = (int64_t)v[1], c->batch = (int64_t)v[2], c->classes = (int64_t)v[3];
  if (strcmp(c->optimizer, "sgd") && strcmp(c->optimizer, "adamw")) {
    snprintf(err, err_sz, "%s:%d: optimizer '%s' is not sgd or adamw", t->path, t->lineno, c->optimizer);
    return -1;
  }
  s->nsc++;
  return 0;
}

int sc_load(study_sources *s, const char *path, char *err, int err_sz) {
  static const char *const req[] = {"name", "model", "image_size", "epochs", "batch", "optimizer", "classes", NULL};
  return tsv_read(path, req, sc_row, s, err, err_sz);
}

// ---- published figures --------------------------------------------------------
static int pub_row(void *ctx, tsv *t, char *err, int err_sz) {
  study_sources *s = ctx;
  s->pub = dp_realloc(s->pub, (size_t)(s->npub + 1) * sizeof *s->pub, "published figures");
  pub_entry *p = &s->pub[s->npub];
  memset(p, 0, sizeof *p);
  TSV_COPY(t, p->family, "family");
  TSV_COPY(t, p->model, "model");
  TSV_COPY(t, p->hardware, "hardware");
  TSV_COPY(t, p->precision, "precision");
  TSV_COPY(t, p->source, "source");
  double v[3];
  if (tsv_num(t, "image_size", 1, &v[0], err, err_sz) || tsv_num(t, "classes", 1, &v[1], err, err_sz) ||
      tsv_num(t, "img_s", 0, &v[2], err, err_sz))
    return -1;
  p->image_size = (int64_t)v[0], p->classes = (int64_t)v[1], p->img_s = v[2];
  s->npub++;
  return 0;
}

int pub_load(study_sources *s, const char *path, char *err, int err_sz) {
  static const char *const req[] = {"family", "model", "image_size", "classes", "hardware", "precision", "img_s", "source", NULL};
  return tsv_read(path, req, pub_row, s, err, err_sz);
}

// ---- input bench --------------------------------------------------------------
int ib_load(ib_bench *b, const char *path, char *err, int err_sz) {
  memset(b, 0, sizeof *b);
  char e[512];
  jv *v = jv_parse_file(path, e, sizeof e);
  if (!v) {
    snprintf(err, err_sz, "%s", e);
    return -1;
  }
  if (strcmp(jv_str(v, "kind", ""), "input_bench")) {
    snprintf(err, err_sz, "%s: not an input bench file (kind input_bench, from bench/bench_input_180kb.sh)", path);
    jv_free(v);
    return -1;
  }
  snprintf(b->path, sizeof b->path, "%s", path);
  snprintf(b->cpu_model, sizeof b->cpu_model, "%s", jv_str(v, "machine.cpu_model", "unknown"));
  b->load = jv_num(v, "machine.load_1m_end", NAN);
  b->cpus = (int)jv_num(v, "machine.cpus_online", 0);
  b->width = (int)jv_num(v, "jpeg.width", 0);
  b->height = (int)jv_num(v, "jpeg.height", 0);
  b->quality = (int)jv_num(v, "jpeg.quality", 0);
  b->count = (int)jv_num(v, "jpeg.count", 0);
  b->mean_bytes = jv_num(v, "jpeg.mean_bytes", NAN);
  b->raw_rate = jv_num(v, "raw_decode_img_s_per_core", NAN);
  const jv *f = jv_path(v, "fused");
  for (int k = 0; f && f->type == JV_ARR && k < f->n && b->n < IB_MAX; k++) {
    const jv *it = &f->items[k];
    int sz = (int)jv_num(it, "out_size", 0);
    double fl = jv_num(it, "float_img_s_per_core", NAN), u8 = jv_num(it, "uint8_img_s_per_core", NAN);
    if (sz <= 0 || !(fl > 0) || !(u8 > 0)) {
      snprintf(err, err_sz, "%s: fused[%d] lacks out_size / float_img_s_per_core / uint8_img_s_per_core > 0", path, k);
      jv_free(v);
      return -1;
    }
    // Keep sorted by size for the interpolation.
    int at = b->n;
    while (at > 0 && b->out_size[at - 1] > sz) {
      b->out_size[at] = b->out_size[at - 1], b->float_rate[at] = b->float_rate[at - 1], b->u8_rate[at] = b->u8_rate[at - 1];
      at--;
    }
    b->out_size[at] = sz, b->float_rate[at] = fl, b->u8_rate[at] = u8;
    b->n++;
  }
  jv_free(v);
  if (!b->n) {
    snprintf(err, err_sz, "%s: no fused rates", path);
    return -1;
  }
  b->loaded = 1;
  return 0;
}

double ib_rate(const ib_bench *b, int64_t out_size, int u8) {
  if (!b->loaded || !b->n) return NAN;
  const double *r = u8 ? b->u8_rate : b->float_rate;
  if (out_size <= b->out_size[0]) return r[0];
  for (int k = 1; k < b->n; k++)
    if (out_size <= b->out_size[k]) {
      double w = (double)(out_size - b->out_size[k - 1]) / (double)(b->out_size[k] - b->out_size[k - 1]);
      return r[k - 1] + w * (r[k] - r[k - 1]);
    }
  return r[b->n - 1];
}

// ---- batch-size finder results ------------------------------------------------
int tb_load(study_sources *s, const char *path, char *err, int err_sz) {
  char e[512];
  jv *v = jv_parse_file(path, e, sizeof e);
  if (!v) {
    snprintf(err, err_sz, "%s", e);
    return -1;
  }
  tb_entry t;
  memset(&t, 0, sizeof t);
  snprintf(t.path, sizeof t.path, "%s", path);
  snprintf(t.model, sizeof t.model, "%s", jv_str(v, "model", jv_str(v, "config.model", "")));
  snprintf(t.hardware, sizeof t.hardware, "%s", jv_str(v, "hardware", ""));
  t.image_size = (int64_t)jv_num(v, "image_size", jv_num(v, "config.image_size", 0));
  t.batch = (int64_t)jv_num(v, "batch", -1);
  t.budget_bytes = jv_num(v, "memory_budget_bytes", NAN);
  const char *kind = jv_str(v, "kind", "");
  jv_free(v);
  if (strcmp(kind, "tune-batch") || !t.model[0] || t.image_size < 1 || t.batch < 0 ||
      (!t.hardware[0] && !(t.budget_bytes > 0))) {
    snprintf(err, err_sz,
             "%s: not a batch-size finder result (kind \"tune-batch\", model, image_size, batch >= 0, and hardware "
             "or memory_budget_bytes; docs/study.md)",
             path);
    return -1;
  }
  s->tb = dp_realloc(s->tb, (size_t)(s->ntb + 1) * sizeof *s->tb, "tune-batch results");
  s->tb[s->ntb++] = t;
  return 0;
}

void study_sources_free(study_sources *s) {
  free(s->sc);
  free(s->pub);
  free(s->tb);
  memset(s, 0, sizeof *s);
}
