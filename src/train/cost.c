#include "train/cost.h"

#include <unistd.h>

#include <errno.h>
#include <math.h>
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

int hw_table_load(hw_table *t, const char *path, char *err_msg, int err_sz) {
  memset(t, 0, sizeof *t);
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err_msg, err_sz, "cannot open hardware table '%s': %s", path, strerror(errno));
    return -1;
  }
  char line[1024];
  int lineno = 0, cap = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '#' || *s == '\n' || *s == '\r') continue;
    char *tok[8] = {0};
    int nt = 0;
    char *save = NULL;
    for (char *p = strtok_r(s, "\t\r\n", &save); p && nt < 8; p = strtok_r(NULL, "\t\r\n", &save))
      tok[nt++] = p;
    if (nt < 7) {
      snprintf(err_msg, err_sz, "%s:%d: expected 7-8 tab-separated columns, got %d", path, lineno, nt);
      fclose(f);
      hw_table_free(t);
      return -1;
    }
    if (!strcmp(tok[0], "name")) continue;   // header row
    if (t->n == cap) {
      cap = cap ? 2 * cap : 16;
      t->e = dp_realloc(t->e, (size_t)cap * sizeof *t->e, "hardware table");
    }
    hw_entry *e = &t->e[t->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", tok[0]);
    snprintf(e->kind, sizeof e->kind, "%s", tok[1]);
    snprintf(e->unit, sizeof e->unit, "%s", tok[2]);
    double tf[4];
    for (int k = 0; k < 4; k++)
      if (parse_d(tok[3 + k], &tf[k])) {
        snprintf(err_msg, err_sz, "%s:%d: column %d ('%s') is not a number", path, lineno, 4 + k,
                 tok[3 + k]);
        fclose(f);
        hw_table_free(t);
        return -1;
      }
    e->peak_fp32 = tf[0] * 1e12;   // table is in TFLOP/s
    e->peak_tf32 = tf[1] * 1e12;
    e->peak_bf16 = tf[2] * 1e12;
    e->price_per_hour = tf[3];
    if (nt > 7) snprintf(e->source, sizeof e->source, "%s", tok[7]);
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
