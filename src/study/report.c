#include "study/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "train/cost.h"
#include "core/jsonread.h"

typedef struct {
  const char *path;
  char model[32], hardware[64];
  int world;
  double img_s, eff, hidden, f1, price, mfu;
  int64_t flops;
  double time_s, cost;
  int64_t epochs;
  int meets;
} run_row;

typedef struct {
  char label[160];
  double time_s, cost;
  int measured;
} option;

static void fmt(char *b, size_t n, double v, const char *f) {
  if (isfinite(v)) snprintf(b, n, f, v);
  else snprintf(b, n, "n/a");
}

static int cmp_row(const void *a, const void *b) {
  const run_row *x = a, *y = b;
  int c = strcmp(x->model, y->model);
  if (c) return c;
  c = strcmp(x->hardware, y->hardware);
  if (c) return c;
  return x->world - y->world;
}

// Throughput vs ranks, one polyline per (model, hardware), with the ideal
// linear scaling from each series' smallest run dashed. rows are sorted.
static int write_svg(const char *path, const run_row *rows, int n) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  const double W = 640, H = 400, L = 70, R = 20, T = 30, B = 50;
  double xmax = 1, ymax = 1;
  for (int i = 0; i < n; i++) {
    if (rows[i].world > xmax) xmax = rows[i].world;
    if (isfinite(rows[i].img_s) && rows[i].img_s > ymax) ymax = rows[i].img_s;
  }
  ymax *= 1.15;
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  fprintf(f, "<text x=\"%.0f\" y=\"18\">training throughput (img/s) vs ranks; dashed: ideal linear scaling</text>\n", L);
  fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, H - B, W - R, H - B);
  fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, T, L, H - B);
  fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">ranks (max %.0f)</text>\n", W / 2, H - 12, xmax);
  fprintf(f, "<text x=\"5\" y=\"%.0f\">%.0f</text><text x=\"5\" y=\"%.0f\">0</text>\n", T + 4, ymax, H - B);
#define PX(x) (L + ((x) / xmax) * (W - L - R))
#define PY(y) (H - B - ((y) / ymax) * (H - T - B))
  static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  int series = 0;
  for (int i = 0; i < n;) {
    int j = i;
    while (j < n && !strcmp(rows[j].model, rows[i].model) && !strcmp(rows[j].hardware, rows[i].hardware)) j++;
    const char *col = colors[series % 6];
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
    for (int k = i; k < j; k++)
      if (isfinite(rows[k].img_s)) fprintf(f, "%.1f,%.1f ", PX(rows[k].world), PY(rows[k].img_s));
    fprintf(f, "\"/>\n");
    if (isfinite(rows[i].img_s) && rows[i].world > 0) {
      double per = rows[i].img_s / rows[i].world;
      double xe = per * xmax > ymax ? ymax / per : xmax;   // clip the ideal line at the top
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"4 4\"/>\n",
              PX(rows[i].world), PY(rows[i].img_s), PX(xe), PY(per * xe), col);
    }
    for (int k = i; k < j; k++)
      if (isfinite(rows[k].img_s))
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(rows[k].world), PY(rows[k].img_s), col);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">%s on %s</text>\n", L + 10, T + 16 + 14 * series, col,
            rows[i].model, rows[i].hardware);
    series++;
    i = j;
  }
#undef PX
#undef PY
  fprintf(f, "</svg>\n");
  return fclose(f) == 0 ? 0 : -1;
}

int study_report(const study_opts *o) {
  run_row *rows = dp_calloc((size_t)(o->nresults ? o->nresults : 1), sizeof(run_row), "study rows");
  int n = 0;
  for (int i = 0; i < o->nresults; i++) {
    char err[512];
    jv *v = jv_parse_file(o->results[i], err, sizeof err);
    if (!v) {
      fprintf(stderr, "dptrain study: bad input: %s\n", err);
      free(rows);
      return -2;
    }
    if (jv_num(v, "schema_version", 0) != 1 || strcmp(jv_str(v, "kind", ""), "train")) {
      fprintf(stderr, "dptrain study: bad input: %s is not a schema-1 training results.json\n", o->results[i]);
      jv_free(v);
      free(rows);
      return -2;
    }
    run_row *r = &rows[n++];
    r->path = o->results[i];
    snprintf(r->model, sizeof r->model, "%s", jv_str(v, "model.name", "?"));
    snprintf(r->hardware, sizeof r->hardware, "%s", jv_str(v, "hardware.name", "?"));
    r->world = (int)jv_num(v, "world_size", 1);
    r->img_s = jv_num(v, "images_per_s", NAN);
    r->eff = jv_num(v, "scaling_efficiency", NAN);
    r->hidden = jv_num(v, "comm_hidden_fraction", NAN);
    r->f1 = jv_num(v, "macro_f1", NAN);
    r->price = jv_num(v, "hardware.price_per_rank_hour", NAN);
    r->mfu = jv_num(v, "mfu", NAN);
    r->flops = (int64_t)jv_num(v, "model.flops_per_image_fwd", 0);
    int64_t ep = o->epochs > 0 ? o->epochs : (int64_t)jv_num(v, "cost.project_epochs", 30);
    r->epochs = ep;
    r->time_s = projected_time_s(o->images, ep, r->img_s);
    r->cost = run_cost_usd(r->world, r->time_s, r->price);
    r->meets = r->time_s <= o->deadline_hours * 3600 && r->cost <= o->budget_usd;
    jv_free(v);
  }
  qsort(rows, (size_t)n, sizeof *rows, cmp_row);
  hw_table hw;
  memset(&hw, 0, sizeof hw);
  char err[512];
  const char *tpath = o->hardware_table ? o->hardware_table : hw_table_default_path();
  int have_hw = hw_table_load(&hw, tpath, err, sizeof err) == 0;
  if (!have_hw) fprintf(stderr, "dptrain study: %s (no projections)\n", err);

  FILE *f = strcmp(o->out, "-") ? fopen(o->out, "w") : stdout;
  if (!f) {
    fprintf(stderr, "dptrain study: cannot write %s\n", o->out);
    free(rows);
    hw_table_free(&hw);
    return -1;
  }
  fprintf(f, "# dptrain scaling and cost study\n\n");
  char epbuf[64];
  if (o->epochs > 0) snprintf(epbuf, sizeof epbuf, "%lld", (long long)o->epochs);
  else snprintf(epbuf, sizeof epbuf, "(each run's --project-epochs)");
  fprintf(f, "Full run: %lld images x %s epochs. Deadline %.1f h, budget $%.0f per full run.\n",
          (long long)o->images, epbuf, o->deadline_hours, o->budget_usd);
  fprintf(f, "Prices come from the results files (rank-hour prices, user-editable estimates unless given with "
             "--price-per-hour).\n\n");
  if (f != stdout) {
    char svg[1200];
    snprintf(svg, sizeof svg, "%s", o->out);
    char *dot = strrchr(svg, '.');
    if (dot && !strchr(dot, '/')) *dot = 0;
    strncat(svg, ".svg", sizeof svg - strlen(svg) - 1);
    if (write_svg(svg, rows, n) == 0) {
      const char *base = strrchr(svg, '/');
      fprintf(f, "![throughput vs ranks](%s)\n\n", base ? base + 1 : svg);
    }
  }
  fprintf(f, "## Measured runs\n\n");
  fprintf(f, "| model | hardware | ranks | img/s | scaling eff. | comm hidden | MFU | full-run time (h) | full-run cost ($) | macro-F1 | meets deadline+budget | file |\n");
  fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---|\n");
  for (int i = 0; i < n; i++) {
    run_row *r = &rows[i];
    char a[32], b[32], c[32], d[32], e[32], g[32], h[32];
    fmt(a, sizeof a, r->img_s, "%.1f");
    fmt(b, sizeof b, 100 * r->eff, "%.1f %%");
    fmt(c, sizeof c, 100 * r->hidden, "%.0f %%");
    fmt(d, sizeof d, 100 * r->mfu, "%.2f %%");
    fmt(e, sizeof e, r->time_s / 3600, "%.2f");
    fmt(g, sizeof g, r->cost, "%.2f");
    fmt(h, sizeof h, r->f1, "%.4f");
    fprintf(f, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->model, r->hardware, r->world, a, b,
            c, d, e, g, h, r->meets ? "yes" : "no", r->path);
  }

  // Per model family: projections and a recommendation.
  for (int i = 0; i < n; i++) {
    if (i > 0 && !strcmp(rows[i].model, rows[i - 1].model)) continue;
    const char *model = rows[i].model;
    int64_t flops = rows[i].flops;
    int64_t ep = rows[i].epochs;
    option best = {"", INFINITY, INFINITY, 0}, fastest = {"", INFINITY, INFINITY, 0};
    for (int k = i; k < n && !strcmp(rows[k].model, model); k++) {
      run_row *r = &rows[k];
      option op;
      snprintf(op.label, sizeof op.label, "%d x %s (measured)", r->world, r->hardware);
      op.time_s = r->time_s, op.cost = r->cost, op.measured = 1;
      if (r->meets && op.cost < best.cost) best = op;
      if (op.time_s < fastest.time_s) fastest = op;
    }
    fprintf(f, "\n## %s\n\n", model);
    if (have_hw && flops > 0) {
      fprintf(f, "### Projections to other hardware (ESTIMATES, not measured)\n\n");
      fprintf(f, "Model used: img/s = %.0f %% assumed MFU x peak (bf16 on GPU/TPU, fp32 on CPU) x ranks x "
                 "%.0f %% assumed scaling efficiency (1 rank: 100 %%) / (3 x %.3f GFLOP forward per image). "
                 "Input pipeline, memory and communication limits are not modelled.\n\n",
              100 * o->assume_mfu, 100 * o->assume_efficiency, (double)flops / 1e9);
      fprintf(f, "| hardware | ranks | img/s (est.) | time (h) | cost ($) | meets |\n|---|---:|---:|---:|---:|:---:|\n");
      const int counts[] = {1, 2, 4, 8};
      for (int h = 0; h < hw.n; h++) {
        const hw_entry *e = &hw.e[h];
        if (!strcmp(e->kind, "cpu") && !strcmp(e->unit, "core")) continue;   // measured above
        double peak = strcmp(e->kind, "cpu") ? e->peak_bf16 : e->peak_fp32;
        if (!(peak > 0)) continue;
        for (int c = 0; c < 4; c++) {
          int ranks = counts[c];
          double effk = ranks == 1 ? 1.0 : o->assume_efficiency;
          double img_s = o->assume_mfu * peak * ranks * effk / (3.0 * (double)flops);
          double t = projected_time_s(o->images, ep, img_s);
          double cost = run_cost_usd(ranks, t, e->price_per_hour);
          int meets = t <= o->deadline_hours * 3600 && cost <= o->budget_usd;
          fprintf(f, "| %s | %d | %.0f | %.2f | %.2f | %s |\n", e->name, ranks, img_s, t / 3600, cost, meets ? "yes" : "no");
          option op;
          snprintf(op.label, sizeof op.label, "%d x %s (estimate)", ranks, e->name);
          op.time_s = t, op.cost = cost, op.measured = 0;
          if (meets && cost < best.cost) best = op;
          if (t < fastest.time_s) fastest = op;
        }
      }
    }
    fprintf(f, "\n**Recommendation for %s** (deadline %.1f h, budget $%.0f, %lld images x %lld epochs): ", model,
            o->deadline_hours, o->budget_usd, (long long)o->images, (long long)ep);
    if (isfinite(best.cost))
      fprintf(f, "%s: %.2f h, $%.2f per full run — the cheapest option that meets both limits%s.\n", best.label,
              best.time_s / 3600, best.cost, best.measured ? "" : " (an estimate: confirm with a measured run)");
    else if (isfinite(fastest.time_s))
      fprintf(f, "no option meets both limits; the fastest is %s at %.2f h and $%.2f.\n", fastest.label,
              fastest.time_s / 3600, fastest.cost);
    else
      fprintf(f, "no usable throughput figures.\n");
  }
  if (f != stdout) fclose(f);
  printf("dptrain study: %d run(s) -> %s\n", n, o->out);
  free(rows);
  hw_table_free(&hw);
  return 0;
}
