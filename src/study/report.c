#include "study/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/afile.h"
#include "core/check.h"
#include "study/analysis.h"
#include "study/plots.h"
#include "study/text.h"

void study_opts_defaults(study_opts *o) {
  memset(o, 0, sizeof *o);
  o->out = "study.md";
  o->dc.deadline_h = 8;
  o->dc.budget_usd = 250;
  o->dc.images = 1200000;
  o->dc.image_bytes = 180 * 1024;
  o->dc.max_devices = 64;
  o->dc.memory_margin = 0.10;
  o->dc.default_storage_bps = 2e9;
  o->dc.assume_gpu_cv = 0.02;
  o->dc.assume_mfu = 0.30;
  o->quality_target = 0.84;
}

static const char *src_path(const char *given, const char *rel, char *buf, size_t n) {
  if (given) return given;
  snprintf(buf, n, "%s/%s", DP_SOURCE_DIR, rel);
  if (access(buf, R_OK) == 0) return buf;
  snprintf(buf, n, "%s/%s", DP_INSTALL_DATADIR, strrchr(rel, '/') + 1);
  return buf;
}

double sa_series_efficiency(const sa_study *a, const sa_series *s, int k) {
  if (s->one < 0) return NAN;
  const sr_run *r = &a->runs.r[s->idx[k]], *one = &a->runs.r[s->one];
  return r->img_s / ((double)r->world * one->img_s);
}

static void build_series(sa_study *a) {
  a->series = dp_calloc((size_t)(a->runs.n + 1), sizeof(sa_series), "series");
  for (int i = 0; i < a->runs.n; i++) {
    const sr_run *r = &a->runs.r[i];
    if (strcmp(r->kind, "train")) continue;
    sa_series *s = NULL;
    for (int k = 0; k < a->nseries && !s; k++)
      if (sr_same_series(&a->runs.r[a->series[k].idx[0]], r)) s = &a->series[k];
    if (!s) {
      s = &a->series[a->nseries++];
      s->one = -1;
    }
    if (s->n < 64) s->idx[s->n++] = i;
  }
  for (int k = 0; k < a->nseries; k++) {
    sa_series *s = &a->series[k];
    for (int i = 1; i < s->n; i++)
      for (int q = i; q > 0 && a->runs.r[s->idx[q]].world < a->runs.r[s->idx[q - 1]].world; q--) {
        int t = s->idx[q];
        s->idx[q] = s->idx[q - 1], s->idx[q - 1] = t;
      }
    // The series' 1-rank run (the least noisy one when there are several).
    for (int i = 0; i < s->n; i++) {
      const sr_run *r = &a->runs.r[s->idx[i]];
      if (r->world != 1) continue;
      if (s->one < 0 || (a->runs.r[s->one].noisy && !r->noisy)) s->one = s->idx[i];
    }
  }
}

static void find_quality(sa_study *a, sa_scenario *s) {
  const sr_run *best = NULL;
  int same = 0;
  for (int i = 0; i < a->runs.n; i++) {
    const sr_run *r = &a->runs.r[i];
    if (!r->evaluated || !isfinite(r->macro_f1)) continue;
    int m = !strcmp(r->model, s->sc->model);
    if (!m && strcmp(r->family, sr_family(s->sc->model))) continue;
    if (!best || m > same || (m == same && r->eval_samples > best->eval_samples)) best = r, same = m;
  }
  s->q.run = best;
  double t = a->o->quality_target;
  if (!best) {
    s->q.kind = PV_ASSUMED;
    snprintf(s->q.src, sizeof s->q.src,
             "not measured: no evaluated run of %s (or its family) among the inputs, so the %.2f target is unchecked",
             s->sc->model, t);
    return;
  }
  s->q.kind = PV_MEASURED;
  tx_set(s->q.src, sizeof s->q.src,
         "measured: macro-F1 %.3f (accuracy %.3f) on %lld evaluation images, %s%s at %lld px after %lld training "
         "images (%lld steps), %s; %s the %.2f target (a small run, not the full dataset)",
         best->macro_f1, best->accuracy, (long long)best->eval_samples, same ? "" : "family proxy ", best->model,
         (long long)best->image_size, (long long)best->images_seen, (long long)best->steps, best->path,
         best->macro_f1 >= t ? "meets" : "below", t);
}

static void add_variant(sa_scenario *s, const char *change, dc_variant v) {
  if (s->nvar >= SA_MAX_VARIANTS) return;
  sa_variant *x = &s->var[s->nvar++];
  snprintf(x->change, sizeof x->change, "%s", change);
  x->v = v;
}

static int analyse(sa_study *a, char *err, int err_sz) {
  for (int i = 0; i < a->ns; i++) {
    sa_scenario *s = &a->s[i];
    s->wl = wl_get(&a->wl, s->sc->model, s->sc->image_size, s->sc->classes, s->sc->optimizer);
    if (dc_grid_build(&a->x, s->sc, NULL, &s->g, err, err_sz)) return -1;
    find_quality(a, s);
    char c[96];
    dc_variant v;
    memset(&v, 0, sizeof v);
    v.images_mult = 10;
    snprintf(c, sizeof c, "dataset x10 (%.0fM images)", a->o->dc.images * 10 / 1e6);
    add_variant(s, c, v);
    static const int64_t sizes[] = {128, 224, 384};
    for (int k = 0; k < 3; k++) {
      if (sizes[k] == s->sc->image_size) continue;
      memset(&v, 0, sizeof v);
      v.image_size = sizes[k];
      snprintf(c, sizeof c, "image size %lld px (from %lld)", (long long)sizes[k], (long long)s->sc->image_size);
      add_variant(s, c, v);
    }
    static const double bm[] = {0.25, 4};
    for (int k = 0; k < 2; k++) {
      memset(&v, 0, sizeof v);
      v.batch_mult = bm[k];
      snprintf(c, sizeof c, "batch %lld per device (from %lld)", (long long)fmax(1, floor(s->sc->batch * bm[k] + 0.5)),
               (long long)s->sc->batch);
      add_variant(s, c, v);
    }
    static const double cores[] = {4, 8, 32};
    for (int k = 0; k < 3; k++) {
      memset(&v, 0, sizeof v);
      v.cores_per_device = cores[k];
      snprintf(c, sizeof c, "%.0f host cores per GPU/TPU for the input pipeline", cores[k]);
      add_variant(s, c, v);
    }
    memset(&v, 0, sizeof v);
    v.cpu_mfu_mult = 0.5;
    add_variant(s, "CPU sockets at half the per-core efficiency measured on 1 core", v);
    memset(&v, 0, sizeof v);
    v.gpu_mfu_mult = 0.5;
    add_variant(s, "GPU/TPU MFU x0.5 (dptrain's CUDA path below the tuned published frameworks)", v);
    for (int k = 0; k < s->nvar; k++)
      if (dc_grid_build(&a->x, s->sc, &s->var[k].v, &s->var[k].g, err, err_sz)) return -1;
  }
  build_series(a);
  a->ncal = cal_build(&a->x, &a->cal);
  return 0;
}

// Plot paths next to the Markdown: <out without .md>-<name>.svg
static void plot_path(const char *out, const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s", out);
  char *dot = strrchr(buf, '.');
  if (dot && !strchr(dot, '/')) *dot = 0;
  size_t l = strlen(buf);
  snprintf(buf + l, n - l, "-%s.svg", name);
}

// One output file through core/afile.h; 0, or 1 after printing why.
static int write_atomic(const char *path, int (*render)(const sa_study *, FILE *), const sa_study *a) {
  dp_err e;
  dp_err_clear(&e);
  dp_afile *f = dp_afile_open(path, &e);
  if (!f) {
    fprintf(stderr, "dptrain study: %s\n", e.msg);
    return 1;
  }
  render(a, dp_afile_stream(f));
  if (dp_afile_commit(f, &e)) {
    fprintf(stderr, "dptrain study: %s\n", e.msg);
    return 1;
  }
  return 0;
}

static int write_outputs(sa_study *a) {
  const study_opts *o = a->o;
  char err[1200];
  const char *outs[2] = {strcmp(o->out, "-") ? o->out : NULL, o->json};
  for (int k = 0; k < 2; k++) {   // the report's folder may not exist yet
    if (!outs[k] || !strrchr(outs[k], '/')) continue;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", outs[k]);
    *strrchr(dir, '/') = 0;
    dp_err me;
    dp_err_clear(&me);
    if (dir[0] && dp_mkdir_p(dir, &me)) {
      fprintf(stderr, "dptrain study: %s\n", me.msg);
      return 1;
    }
  }
  if (strcmp(o->out, "-")) {
    for (int i = 0; i < a->ns; i++) {
      sa_scenario *s = &a->s[i];
      plot_path(o->out, s->sc->name, s->svg, sizeof s->svg);
      char title[200];
      snprintf(title, sizeof title, "%s: cost vs time of every configuration (modelled)", s->sc->name);
      if (plot_cost_time(s->svg, title, &s->g, &o->dc, err, sizeof err)) {
        fprintf(stderr, "dptrain study: %s\n", err);
        return 1;
      }
    }
    plot_path(o->out, "scaling", a->scaling_svg, sizeof a->scaling_svg);
    int ns = plot_scaling(a->scaling_svg, &a->runs, err, sizeof err);
    if (ns < 0) {
      fprintf(stderr, "dptrain study: %s\n", err);
      return 1;
    }
    if (ns == 0) a->scaling_svg[0] = 0;
  }
  if (!strcmp(o->out, "-")) sa_write_markdown(a, stdout);
  else if (write_atomic(o->out, sa_write_markdown, a)) return 1;
  if (o->json && write_atomic(o->json, sa_write_json, a)) return 1;
  return 0;
}

int study_report(const study_opts *o) {
  sa_study a;
  memset(&a, 0, sizeof a);
  a.o = o;
  a.wl.describe = o->describe;
  time_t now = time(NULL);
  struct tm tmv;
  gmtime_r(&now, &tmv);
  strftime(a.created, sizeof a.created, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  char err[1200], pbuf[1200];
  int rc = 2;
  const char *tpath = o->hardware_table ? o->hardware_table : hw_table_default_path();
  if (hw_table_load(&a.hw, tpath, err, sizeof err)) goto bad;
  if (sc_load(&a.src, src_path(o->scenarios, "bench/scenarios.tsv", pbuf, sizeof pbuf), err, sizeof err)) goto bad;
  if (pub_load(&a.src, src_path(o->published, "bench/published.tsv", pbuf, sizeof pbuf), err, sizeof err)) goto bad;
  for (int i = 0; i < o->ntune_batch; i++)
    if (tb_load(&a.src, o->tune_batch[i], err, sizeof err)) goto bad;
  if (!o->input_bench || o->input_bench[0]) {
    const char *ib = src_path(o->input_bench, "bench/results/input_180kb.json", pbuf, sizeof pbuf);
    if (ib_load(&a.src.ib, ib, err, sizeof err)) {
      if (o->input_bench) goto bad;   // asked for by name: must load
      tx_set(a.input_note, sizeof a.input_note, "input pipeline not modelled: %s", err);
    }
  } else {
    snprintf(a.input_note, sizeof a.input_note, "input pipeline not modelled: --input-bench \"\"");
  }
  if (sr_load(&a.runs, o->results, o->nresults, err, sizeof err)) goto bad;
  sr_check(&a.runs);
  a.ns = a.src.nsc;
  a.s = dp_calloc((size_t)(a.ns + 1), sizeof(sa_scenario), "scenarios");
  for (int i = 0; i < a.ns; i++) a.s[i].sc = &a.src.sc[i];
  dc_ctx_init(&a.x, &o->dc, &a.hw, &a.src, &a.runs, &a.wl);
  if (analyse(&a, err, sizeof err)) goto bad;
  rc = write_outputs(&a);
  if (rc == 0)
    printf("dptrain study: %d run(s), %d scenario(s) -> %s%s%s\n", a.runs.n, a.ns, o->out, o->json ? " and " : "",
           o->json ? o->json : "");
  goto done;
bad:
  fprintf(stderr, "dptrain study: bad input: %s\n", err);
done:
  for (int i = 0; i < a.ns; i++) {
    dc_grid_free(&a.s[i].g);
    for (int k = 0; k < a.s[i].nvar; k++) dc_grid_free(&a.s[i].var[k].g);
  }
  free(a.s);
  free(a.series);
  free(a.cal);
  sr_free(&a.runs);
  wl_cache_free(&a.wl);
  study_sources_free(&a.src);
  hw_table_free(&a.hw);
  return rc;
}
