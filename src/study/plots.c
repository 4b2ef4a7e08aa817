#include "study/plots.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/afile.h"
#include "core/check.h"

static const char *class_color[OC_N] = {"#8c564b", "#1f77b4", "#2ca02c", "#d62728", "#9467bd"};
static const char *series_color[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#e377c2"};

typedef struct {
  double W, H, L, R, T, B;
  double x0, x1, y0, y1;   // data range (log10 when log)
  int logx, logy;
  int integer_x;   // x ticks at whole numbers (ranks)
} frame;

static double fx(const frame *f, double x) {
  double v = f->logx ? log10(x) : x;
  return f->L + (v - f->x0) / (f->x1 - f->x0) * (f->W - f->L - f->R);
}
static double fy(const frame *f, double y) {
  double v = f->logy ? log10(y) : y;
  return f->H - f->B - (v - f->y0) / (f->y1 - f->y0) * (f->H - f->T - f->B);
}

static void axes(FILE *s, const frame *f, const char *title, const char *xl, const char *yl) {
  fprintf(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
          f->W, f->H);
  fprintf(s, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  fprintf(s, "<text x=\"%.0f\" y=\"18\" font-size=\"13\">%s</text>\n", f->L, title);
  fprintf(s, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", f->L, f->H - f->B, f->W - f->R, f->H - f->B);
  fprintf(s, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", f->L, f->T, f->L, f->H - f->B);
  fprintf(s, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", (f->L + f->W - f->R) / 2, f->H - 8, xl);
  fprintf(s, "<text x=\"14\" y=\"%.0f\" transform=\"rotate(-90 14 %.0f)\" text-anchor=\"middle\">%s</text>\n",
          (f->T + f->H - f->B) / 2, (f->T + f->H - f->B) / 2, yl);
  // Ticks: decades on log axes, 5 steps on linear ones.
  for (int ax = 0; ax < 2; ax++) {
    int lg = ax ? f->logy : f->logx;
    double a = ax ? f->y0 : f->x0, b = ax ? f->y1 : f->x1;
    double step = 1;
    if (!lg) {   // a round step (1, 2 or 5 x 10^k) giving about 5 ticks
      double raw = (b - a) / 5, p10 = pow(10, floor(log10(raw)));
      step = raw / p10 < 1.5 ? p10 : raw / p10 < 3.5 ? 2 * p10 : raw / p10 < 7.5 ? 5 * p10 : 10 * p10;
      if (ax == 0 && f->integer_x && step < 1) step = 1;
    }
    double t0 = lg ? ceil(a) : ceil(a / step) * step;
    for (double t = t0; t <= b + 1e-9; t += step) {
      double val = lg ? pow(10, t) : t;
      char lab[32];
      if (val >= 1000) snprintf(lab, sizeof lab, "%gk", val / 1000);
      else snprintf(lab, sizeof lab, "%g", fabs(val) < 1e-12 ? 0.0 : val);
      if (ax) {
        double y = fy(f, val);
        fprintf(s, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>", f->L, y, f->W - f->R, y);
        fprintf(s, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", f->L - 4, y + 4, lab);
      } else {
        double x = fx(f, val);
        fprintf(s, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ddd\"/>", x, f->T, x, f->H - f->B);
        fprintf(s, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", x, f->H - f->B + 16, lab);
      }
    }
  }
}

static int finish(dp_afile *a, const char *path, char *err, int err_sz) {
  dp_err e;
  dp_err_clear(&e);
  if (dp_afile_commit(a, &e)) {
    snprintf(err, err_sz, "writing %s: %s", path, e.msg);
    return -1;
  }
  return 0;
}

static int usable(const dc_config *c) {
  return c->res.feasible && isfinite(c->res.time_s) && isfinite(c->res.cost_usd) && c->res.time_s > 0 && c->res.cost_usd > 0;
}

int pareto_front(const dc_grid *g, int *idx) {
  int n = 0;
  for (int i = 0; i < g->n; i++) {
    const dc_config *c = &g->c[i];
    if (!usable(c) || !c->runnable) continue;
    int dominated = 0;
    for (int k = 0; k < g->n && !dominated; k++) {
      const dc_config *d = &g->c[k];
      if (k == i || !usable(d) || !d->runnable) continue;
      dominated = d->res.time_s <= c->res.time_s && d->res.cost_usd <= c->res.cost_usd &&
                  (d->res.time_s < c->res.time_s || d->res.cost_usd < c->res.cost_usd || k < i);
    }
    if (!dominated) idx[n++] = i;
  }
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && g->c[idx[k]].res.time_s < g->c[idx[k - 1]].res.time_s; k--) {
      int t = idx[k];
      idx[k] = idx[k - 1], idx[k - 1] = t;
    }
  return n;
}

int plot_cost_time(const char *path, const char *title, const dc_grid *g, const dc_opts *o, char *err, int err_sz) {
  double tmin = o->deadline_h, tmax = o->deadline_h, cmin = o->budget_usd, cmax = o->budget_usd;
  for (int i = 0; i < g->n; i++) {
    const dc_config *c = &g->c[i];
    if (!usable(c)) continue;
    double t = c->res.time_s / 3600, cost = c->res.cost_usd;
    tmin = fmin(tmin, t), tmax = fmax(tmax, t), cmin = fmin(cmin, cost), cmax = fmax(cmax, cost);
  }
  frame f = {760, 480, 70, 200, 30, 45, floor(log10(tmin)), ceil(log10(tmax)), floor(log10(cmin)), ceil(log10(cmax)), 1, 1, 0};
  if (f.x1 <= f.x0) f.x1 = f.x0 + 1;
  if (f.y1 <= f.y0) f.y1 = f.y0 + 1;
  dp_err e;
  dp_err_clear(&e);
  dp_afile *a = dp_afile_open(path, &e);
  if (!a) {
    snprintf(err, err_sz, "%s", e.msg);
    return -1;
  }
  FILE *s = dp_afile_stream(a);
  axes(s, &f, title, "time per full run (h, log)", "cost per full run (USD, log)");
  // Deadline and budget.
  fprintf(s, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"black\" stroke-dasharray=\"6 4\"/>\n",
          fx(&f, o->deadline_h), f.T, fx(&f, o->deadline_h), f.H - f.B);
  fprintf(s, "<text x=\"%.1f\" y=\"%.0f\">deadline %.0f h</text>\n", fx(&f, o->deadline_h) + 4, f.T + 12, o->deadline_h);
  fprintf(s, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"black\" stroke-dasharray=\"6 4\"/>\n", f.L,
          fy(&f, o->budget_usd), f.W - f.R, fy(&f, o->budget_usd));
  fprintf(s, "<text x=\"%.0f\" y=\"%.1f\">budget $%.0f</text>\n", f.L + 4, fy(&f, o->budget_usd) - 4, o->budget_usd);
  // Pareto front.
  int *idx = dp_malloc((size_t)(g->n + 1) * sizeof(int), "pareto");
  int np = pareto_front(g, idx);
  fprintf(s, "<polyline fill=\"none\" stroke=\"#444\" stroke-width=\"1.5\" points=\"");
  for (int k = 0; k < np; k++) fprintf(s, "%.1f,%.1f ", fx(&f, g->c[idx[k]].res.time_s / 3600), fy(&f, g->c[idx[k]].res.cost_usd));
  fprintf(s, "\"/>\n");
  free(idx);
  for (int i = 0; i < g->n; i++) {
    const dc_config *c = &g->c[i];
    if (!usable(c)) continue;
    const char *col = class_color[c->cls];
    double x = fx(&f, c->res.time_s / 3600), y = fy(&f, c->res.cost_usd);
    if (c->runnable)
      fprintf(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%d x %s: %.2f h, $%.0f, %s</title></circle>\n",
              x, y, col, c->devices, c->row->name, c->res.time_s / 3600, c->res.cost_usd, sm_term_name(c->res.binding));
    else
      fprintf(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"none\" stroke=\"%s\"><title>%d x %s (not runnable): %.2f h, $%.0f</title></circle>\n",
              x, y, col, c->devices, c->row->name, c->res.time_s / 3600, c->res.cost_usd);
  }
  const int marks[2] = {g->production, g->fallback};
  const char *mark_name[2] = {"production", "fallback"};
  for (int m = 0; m < 2; m++) {
    if (marks[m] < 0) continue;
    const dc_config *c = &g->c[marks[m]];
    double x = fx(&f, c->res.time_s / 3600), y = fy(&f, c->res.cost_usd);
    fprintf(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"8\" fill=\"none\" stroke=\"black\" stroke-width=\"2\"/>\n", x, y);
    fprintf(s, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">%s</text>\n", x + 10, y + (m ? 14 : -6), mark_name[m]);
  }
  // Legend.
  double lx = f.W - f.R + 12, ly = f.T + 10;
  for (int k = 0; k < OC_N; k++, ly += 16) {
    fprintf(s, "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"4\" fill=\"%s\"/>", lx, ly, class_color[k]);
    fprintf(s, "<text x=\"%.0f\" y=\"%.0f\">%s%s</text>\n", lx + 8, ly + 4, dc_class_name(k), k == OC_TPU ? " (not runnable)" : "");
  }
  fprintf(s, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#444\" stroke-width=\"1.5\"/>", lx - 4, ly, lx + 4, ly);
  fprintf(s, "<text x=\"%.0f\" y=\"%.0f\">Pareto front</text>\n", lx + 8, ly + 4);
  fprintf(s, "<text x=\"%.0f\" y=\"%.0f\">all points modelled</text>\n", lx - 4, ly + 24);
  fprintf(s, "</svg>\n");
  return finish(a, path, err, err_sz);
}

int plot_scaling(const char *path, const sr_set *runs, char *err, int err_sz) {
  // Series: representative index per distinct series.
  int *rep = dp_malloc((size_t)(runs->n + 1) * sizeof(int), "series");
  int ns = 0;
  double xmax = 1, ymax = 1;
  for (int i = 0; i < runs->n; i++) {
    const sr_run *r = &runs->r[i];
    if (strcmp(r->kind, "train") || !(r->img_s > 0)) continue;
    int seen = 0;
    for (int k = 0; k < ns && !seen; k++) seen = sr_same_series(&runs->r[rep[k]], r);
    if (!seen) rep[ns++] = i;
    xmax = fmax(xmax, r->world);
    ymax = fmax(ymax, r->img_s);
  }
  if (!ns) {
    free(rep);
    return 0;
  }
  frame f = {760, 440, 70, 260, 30, 45, 0, xmax + 1, 0, ymax * 1.25, 0, 0, 1};
  dp_err e;
  dp_err_clear(&e);
  dp_afile *a = dp_afile_open(path, &e);
  if (!a) {
    snprintf(err, err_sz, "%s", e.msg);
    free(rep);
    return -1;
  }
  FILE *s = dp_afile_stream(a);
  axes(s, &f, "measured throughput vs ranks; dashed: ideal linear scaling from 1 rank", "ranks", "images/s (measured)");
  for (int k = 0; k < ns; k++) {
    const sr_run *r0 = &runs->r[rep[k]];
    const char *col = series_color[k % 8];
    // Points of this series sorted by ranks.
    int idx[256], m = 0;
    for (int i = 0; i < runs->n && m < 256; i++)
      if (!strcmp(runs->r[i].kind, "train") && runs->r[i].img_s > 0 && sr_same_series(&runs->r[i], r0)) idx[m++] = i;
    for (int i = 1; i < m; i++)
      for (int q = i; q > 0 && runs->r[idx[q]].world < runs->r[idx[q - 1]].world; q--) {
        int t = idx[q];
        idx[q] = idx[q - 1], idx[q - 1] = t;
      }
    fprintf(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
    for (int i = 0; i < m; i++) fprintf(s, "%.1f,%.1f ", fx(&f, runs->r[idx[i]].world), fy(&f, runs->r[idx[i]].img_s));
    fprintf(s, "\"/>\n");
    for (int i = 0; i < m; i++) {
      const sr_run *r = &runs->r[idx[i]];
      fprintf(s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"%s><title>%s: %.1f img/s%s</title></circle>\n",
              fx(&f, r->world), fy(&f, r->img_s), r->noisy ? "white" : col,
              r->noisy ? " stroke=\"black\"" : "", r->path, r->img_s, r->noisy ? " (noisy)" : "");
    }
    // Ideal: the 1-rank point of the series times N (none without one).
    const sr_run *one = runs->r[idx[0]].world == 1 ? &runs->r[idx[0]] : NULL;
    if (one) {
      double xe = fmin(xmax, f.y1 / one->img_s);
      fprintf(s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"4 4\"/>\n", fx(&f, 1),
              fy(&f, one->img_s), fx(&f, xe), fy(&f, one->img_s * xe), col);
    }
    fprintf(s, "<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">%s %lld px b%lld, %s%s</text>\n", f.W - f.R + 10, f.T + 14 + 16.0 * k,
            col, r0->model, (long long)r0->image_size, (long long)r0->batch, r0->hardware, one ? "" : " (no 1-rank run)");
  }
  fprintf(s, "<text x=\"%.0f\" y=\"%.0f\">hollow: noisy (re-measure)</text>\n", f.W - f.R + 10, f.T + 14 + 16.0 * ns + 8);
  fprintf(s, "</svg>\n");
  free(rep);
  return finish(a, path, err, err_sz) ? -1 : ns;
}
