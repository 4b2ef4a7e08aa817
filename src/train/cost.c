#include "train/cost.h"

#include <unistd.h>

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

double scaling_efficiency(double rate_n, int n, double rate_1) {
  if (!(rate_n > 0) || n < 1 || !(rate_1 > 0)) return NAN;
  return rate_n / ((double)n * rate_1);
}

double comm_hidden_fraction(double exposed_wait_s, double comm_span_s) {
  if (!(comm_span_s > 0)) return NAN;
  double f = 1.0 - exposed_wait_s / comm_span_s;
  return f < 0 ? 0 : (f > 1 ? 1 : f);
}

double run_cost_usd(int ranks, double wall_s, double price_per_rank_hour) {
  if (!(price_per_rank_hour >= 0)) return NAN;
  return (double)ranks * wall_s / 3600.0 * price_per_rank_hour;
}

double projected_time_s(int64_t images, int64_t epochs, double images_per_s) {
  if (!(images_per_s > 0)) return NAN;
  return (double)images * (double)epochs / images_per_s;
}

double projected_cost_usd(int ranks, int64_t images, int64_t epochs, double images_per_s,
                          double price_per_rank_hour) {
  return run_cost_usd(ranks, projected_time_s(images, epochs, images_per_s), price_per_rank_hour);
}

double mfu(int64_t fwd_flops_per_image, double images_per_s, int ranks, double peak_flops_per_rank) {
  if (!(peak_flops_per_rank > 0) || ranks < 1) return NAN;
  return 3.0 * (double)fwd_flops_per_image * images_per_s / ((double)ranks * peak_flops_per_rank);
}

// ---- hardware table ---------------------------------------------------------
static int parse_d(const char *s, double *v) {
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return errno || end == s || *end ? -1 : 0;
}

// Columns the header may name, with where they go and the factor from the
// table's unit (TFLOP/s, GiB, GB/s) to ours (FLOP/s, bytes, bytes/s).
enum { COL_NAME, COL_KIND, COL_UNIT, COL_SOURCE, COL_NUM };
typedef struct {
  const char *name;
  int what;           // COL_*
  size_t off;         // offsetof(hw_entry, field) for numbers
  double scale;
  int required;
} hw_col;
static const hw_col hw_cols[] = {
    {"name", COL_NAME, 0, 0, 1},
    {"kind", COL_KIND, 0, 0, 1},
    {"unit", COL_UNIT, 0, 0, 1},
    {"fp32", COL_NUM, offsetof(hw_entry, peak_fp32), 1e12, 1},
    {"tf32", COL_NUM, offsetof(hw_entry, peak_tf32), 1e12, 1},
    {"bf16", COL_NUM, offsetof(hw_entry, peak_bf16), 1e12, 1},
    {"usd_per_hour", COL_NUM, offsetof(hw_entry, price_per_hour), 1, 1},
    {"cores_per_device", COL_NUM, offsetof(hw_entry, cores_per_device), 1, 0},
    {"memory_gib", COL_NUM, offsetof(hw_entry, memory_bytes), 1073741824.0, 0},
    {"devices_per_node", COL_NUM, offsetof(hw_entry, devices_per_node), 1, 0},
    {"intra_node_GBps", COL_NUM, offsetof(hw_entry, intra_bps), 1e9, 0},
    {"inter_node_GBps", COL_NUM, offsetof(hw_entry, inter_bps), 1e9, 0},
    {"storage_GBps", COL_NUM, offsetof(hw_entry, storage_bps), 1e9, 0},
    {"source", COL_SOURCE, 0, 0, 0},
};
#define HW_NCOLS ((int)(sizeof hw_cols / sizeof hw_cols[0]))
#define HW_MAXTOK 32

static int hw_fail(hw_table *t, FILE *f, char *err_msg, int err_sz, const char *fmt, const char *path, int lineno,
                   const char *what) {
  snprintf(err_msg, err_sz, fmt, path, lineno, what);
  fclose(f);
  hw_table_free(t);
  return -1;
}

int hw_table_load(hw_table *t, const char *path, char *err_msg, int err_sz) {
  memset(t, 0, sizeof *t);
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err_msg, err_sz, "cannot open hardware table '%s': %s", path, strerror(errno));
    return -1;
  }
  // map[k] = index into hw_cols of the k-th column. Without a header row the
  // legacy layout applies: the 7 required columns, then source.
  int map[HW_MAXTOK], ncol = 8;
  for (int k = 0; k < 8; k++) map[k] = k < 7 ? k : HW_NCOLS - 1;
  char line[2048];
  int lineno = 0, cap = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '#' || *s == '\n' || *s == '\r') continue;
    char *tok[HW_MAXTOK] = {0};
    int nt = 0;
    char *save = NULL;
    for (char *p = strtok_r(s, "\t\r\n", &save); p && nt < HW_MAXTOK; p = strtok_r(NULL, "\t\r\n", &save))
      tok[nt++] = p;
    if (!strcmp(tok[0], "name")) {   // header row: names the columns
      ncol = nt;
      int seen[HW_NCOLS] = {0};
      for (int k = 0; k < nt; k++) {
        int c = -1;
        for (int q = 0; q < HW_NCOLS && c < 0; q++)
          if (!strcmp(tok[k], hw_cols[q].name)) c = q;
        if (c < 0) return hw_fail(t, f, err_msg, err_sz, "%s:%d: unknown column '%s' in the header row", path, lineno, tok[k]);
        if (seen[c]++) return hw_fail(t, f, err_msg, err_sz, "%s:%d: column '%s' given twice", path, lineno, tok[k]);
        map[k] = c;
      }
      for (int q = 0; q < HW_NCOLS; q++)
        if (hw_cols[q].required && !seen[q])
          return hw_fail(t, f, err_msg, err_sz, "%s:%d: the header row lacks the required column '%s'", path, lineno,
                         hw_cols[q].name);
      continue;
    }
    int need = 0;
    for (int k = 0; k < ncol; k++) need += hw_cols[map[k]].required;
    if (nt < need || nt > ncol) {
      char what[64];
      snprintf(what, sizeof what, "%d columns, expected %d-%d", nt, need, ncol);
      return hw_fail(t, f, err_msg, err_sz, "%s:%d: %s (TAB-separated)", path, lineno, what);
    }
    if (t->n == cap) {
      cap = cap ? 2 * cap : 16;
      t->e = dp_realloc(t->e, (size_t)cap * sizeof *t->e, "hardware table");
    }
    hw_entry *e = &t->e[t->n];
    memset(e, 0, sizeof *e);
    for (int q = 0; q < HW_NCOLS; q++)
      if (hw_cols[q].what == COL_NUM) *(double *)((char *)e + hw_cols[q].off) = NAN;
    for (int k = 0; k < nt; k++) {
      const hw_col *c = &hw_cols[map[k]];
      switch (c->what) {
        case COL_NAME: snprintf(e->name, sizeof e->name, "%s", tok[k]); break;
        case COL_KIND: snprintf(e->kind, sizeof e->kind, "%s", tok[k]); break;
        case COL_UNIT: snprintf(e->unit, sizeof e->unit, "%s", tok[k]); break;
        case COL_SOURCE: snprintf(e->source, sizeof e->source, "%s", tok[k]); break;
        default: {
          double v;
          if (!strcmp(tok[k], "-") && !c->required) break;   // "-": not given
          if (parse_d(tok[k], &v) || v < 0) {
            char what[160];
            snprintf(what, sizeof what, "column '%s' ('%s') is not a number >= 0", c->name, tok[k]);
            return hw_fail(t, f, err_msg, err_sz, "%s:%d: %s", path, lineno, what);
          }
          *(double *)((char *)e + c->off) = v * c->scale;
        }
      }
    }
    if (strcmp(e->kind, "cpu") && strcmp(e->kind, "gpu") && strcmp(e->kind, "tpu"))
      return hw_fail(t, f, err_msg, err_sz, "%s:%d: kind '%s' is not cpu, gpu or tpu", path, lineno, e->kind);
    if (strcmp(e->unit, "core") && strcmp(e->unit, "socket") && strcmp(e->unit, "device"))
      return hw_fail(t, f, err_msg, err_sz, "%s:%d: unit '%s' is not core, socket or device", path, lineno, e->unit);
    if (!strcmp(e->unit, "core") && isnan(e->cores_per_device)) e->cores_per_device = 1;
    t->n++;
  }
  fclose(f);
  return 0;
}

void hw_table_free(hw_table *t) {
  free(t->e);
  memset(t, 0, sizeof *t);
}

const hw_entry *hw_table_find(const hw_table *t, const char *name) {
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->e[i].name, name)) return &t->e[i];
  return NULL;
}

const char *hw_table_default_path(void) {
  const char *env = getenv("DPTRAIN_HARDWARE_TABLE");
  if (env && *env) return env;
  // A build tree finds the source's table; an installed binary its copy.
  if (access(DP_SOURCE_DIR "/bench/hardware.tsv", R_OK) == 0) return DP_SOURCE_DIR "/bench/hardware.tsv";
  return DP_INSTALL_DATADIR "/hardware.tsv";
}

double hw_rank_peak(const hw_entry *e, const char *precision, int cores) {
  double p = e->peak_fp32;
  if (precision && !strcmp(precision, "tf32")) p = e->peak_tf32;
  if (precision && !strcmp(precision, "bf16")) p = e->peak_bf16;
  return !strcmp(e->unit, "core") ? p * (cores > 0 ? cores : 1) : p;
}

double hw_rank_price(const hw_entry *e, int cores) {
  return !strcmp(e->unit, "core") ? e->price_per_hour * (cores > 0 ? cores : 1) : e->price_per_hour;
}
