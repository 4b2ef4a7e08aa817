// The Markdown rendering of the study (see analysis.h). Every number carries
// its label: measured, published, modelled, table or assumed.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "study/analysis.h"
#include "study/plots.h"
#include "study/text.h"

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

// Markdown table cells: no '|' or newline inside.
static const char *cell(const char *s, char *buf, size_t n) {
  size_t k = 0;
  for (; *s && k + 1 < n; s++) buf[k++] = *s == '|' ? '/' : (*s == '\n' ? ' ' : *s);
  buf[k] = 0;
  return buf;
}

static const char *num(double v, const char *fmt, char *buf, size_t n) {
  if (isfinite(v)) snprintf(buf, n, fmt, v);
  else snprintf(buf, n, "n/a");
  return buf;
}

static void config_cells(const dc_config *c, FILE *f) {
  char a[32], b[32], d[32];
  fprintf(f, "%d x %s%s | %s | %s | %s | %s", c->devices, c->row->name, c->runnable ? "" : " (not runnable)",
          num(c->res.time_s / 3600, "%.2f", a, sizeof a), num(c->res.cost_usd, "%.0f", b, sizeof b),
          num(c->res.rate, "%.0f", d, sizeof d), sm_term_name(c->res.binding));
}

static void decision_table(const sa_study *a, const sa_scenario *s, FILE *f) {
  const dc_opts *o = &a->o->dc;
  fprintf(f, "| option | cheapest within %.0f h and $%.0f | time (h) | cost ($) | img/s | binding term | risk / complexity |\n",
          o->deadline_h, o->budget_usd);
  fprintf(f, "|---|---|---:|---:|---:|---|---|\n");
  char buf[800];
  for (int k = 0; k < OC_N; k++) {
    int i = s->g.best[k];
    fprintf(f, "| %s | ", dc_class_name(k));
    if (i >= 0) {
      config_cells(&s->g.c[i], f);
      fprintf(f, " | %s |\n", cell(s->g.c[i].risks[0] ? s->g.c[i].risks : "-", buf, sizeof buf));
    } else if (s->g.fastest[k] >= 0) {
      const dc_config *c = &s->g.c[s->g.fastest[k]];
      fprintf(f, "none meets both; fastest feasible: ");
      config_cells(c, f);
      fprintf(f, " | %s |\n", cell(c->risks[0] ? c->risks : "-", buf, sizeof buf));
    } else {
      fprintf(f, "no feasible configuration | | | | | |\n");
    }
  }
  fprintf(f, "\nAll times, costs and rates in this table are **modelled** (from the inputs below); prices are the "
             "table's estimates.\n\n");
}

static void inputs_table(const dc_config *c, FILE *f) {
  char b1[700], v[64];
  fprintf(f, "| input | value | label | source |\n|---|---:|---|---|\n");
  const struct {
    const char *name;
    const pv_num *p;
    const char *fmt;
    double scale;
  } rows[] = {
      {"MFU", &c->mfu, "%.1f %%", 100},
      {"decode + augment per core (img/s)", &c->input_rate, "%.0f", 1},
      {"host cores per device", &c->cores, "%.0f", 1},
      {"all-reduce bus bandwidth (GB/s)", &c->bus, "%.2f", 1e-9},
      {"communication hidden", &c->hidden, "%.0f %%", 100},
      {"step-time CV (stragglers)", &c->cv, "%.1f %%", 100},
      {"storage read per node (GB/s)", &c->storage, "%.1f", 1e-9},
      {"largest batch per device", &c->max_batch, "%.0f", 1},
  };
  for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++)
    fprintf(f, "| %s | %s | %s | %s |\n", rows[k].name, num(rows[k].p->v * rows[k].scale, rows[k].fmt, v, sizeof v),
            pv_name(rows[k].p->kind), cell(rows[k].p->src, b1, sizeof b1));
  char t[5][32];
  fprintf(f,
          "\nPer step of %lld images per device (modelled): compute %s ms, stragglers %s ms, exposed communication %s ms, "
          "input %s ms%s, storage %s ms.\n\n",
          (long long)c->batch, num(1e3 * c->res.t[SM_COMPUTE], "%.1f", t[0], 32), num(1e3 * c->res.t[SM_SYNC], "%.1f", t[1], 32),
          num(1e3 * c->res.t[SM_COMM], "%.1f", t[2], 32), num(1e3 * c->res.t[SM_INPUT], "%.1f", t[3], 32),
          c->in.input_shares_compute ? " (on the compute cores)" : " (overlapped, host cores)",
          num(1e3 * c->res.t[SM_STORAGE], "%.1f", t[4], 32));
}

static void scenario_section(const sa_study *a, const sa_scenario *s, FILE *f) {
  const sc_scenario *sc = s->sc;
  fprintf(f, "## Scenario %s: %s\n\n", sc->name, sc->what);
  if (s->wl)
    fprintf(f,
            "Workload (counted from dptrain's graph): `%s` at %lld px, %.2f GFLOP forward per image, %.1f M parameters "
            "(%.0f MB of fp32 gradients per all-reduce), %lld classes, batch %lld per device, %s, %lld epochs of "
            "%.2f M images of %.0f KB.\n\n",
            sc->model, (long long)sc->image_size, s->wl->flops_fwd / 1e9, s->wl->params / 1e6, 4 * s->wl->params / 1e6,
            (long long)sc->classes, (long long)sc->batch, sc->optimizer, (long long)sc->epochs, a->o->dc.images / 1e6,
            a->o->dc.image_bytes / 1024);
  decision_table(a, s, f);
  fprintf(f, "- **Production:** %s\n", s->g.production_why);
  fprintf(f, "- **Fallback:** %s\n", s->g.fallback_why);
  fprintf(f, "- **Quality** (macro-F1 target %.2f): %s.\n\n", a->o->quality_target, s->q.src);
  if (s->g.production >= 0) {
    const dc_config *p = &s->g.c[s->g.production];
    fprintf(f, "Inputs of the production pick (%d x %s):\n\n", p->devices, p->row->name);
    inputs_table(p, f);
  }
  if (s->svg[0]) fprintf(f, "![%s: cost vs time](%s)\n\n", sc->name, base_name(s->svg));
}

static void sensitivity(const sa_study *a, FILE *f) {
  fprintf(f, "## Sensitivity (generated from the model)\n\n");
  fprintf(f, "Each row changes one input and recomputes the whole grid; the production pick is what the model then "
             "recommends (modelled).\n\n");
  for (int i = 0; i < a->ns; i++) {
    const sa_scenario *s = &a->s[i];
    fprintf(f, "### %s\n\n| change | production pick | time (h) | cost ($) | img/s | binding term | pick changes |\n"
               "|---|---|---:|---:|---:|---|---|\n", s->sc->name);
    const dc_config *base = s->g.production >= 0 ? &s->g.c[s->g.production] : NULL;
    fprintf(f, "| as specified | ");
    if (base) {
      config_cells(base, f);
      fprintf(f, " | - |\n");
    } else {
      fprintf(f, "none within the limits | | | | | - |\n");
    }
    for (int k = 0; k < s->nvar; k++) {
      const sa_variant *v = &s->var[k];
      fprintf(f, "| %s | ", v->change);
      const dc_config *p = v->g.production >= 0 ? &v->g.c[v->g.production] : NULL;
      if (p) config_cells(p, f);
      else fprintf(f, "none within the limits | | | | ");
      int changed = (p == NULL) != (base == NULL) ||
                    (p && base && (p->row != base->row || p->devices != base->devices));
      fprintf(f, " | %s |\n", changed ? "**yes**" : "no");
    }
    fprintf(f, "\n");
  }
}

static void runs_section(const sa_study *a, FILE *f) {
  fprintf(f, "## Measured runs\n\n");
  if (!a->runs.n) {
    fprintf(f, "No results.json given: every compute figure comes from published sources or assumptions.\n\n");
    return;
  }
  fprintf(f, "Each row is one results.json (**measured**). Runs at different image sizes, batches or models are "
             "separate series and never merged; efficiency is against the 1-rank run of the same series only.\n\n");
  // Where the measurements come from: each distinct machine with its load and CPU share range.
  for (int i = 0; i < a->runs.n; i++) {
    const sr_run *r = &a->runs.r[i];
    int seen = 0;
    for (int k = 0; k < i && !seen; k++) seen = !strcmp(a->runs.r[k].host, r->host) && !strcmp(a->runs.r[k].cpu_model, r->cpu_model);
    if (seen) continue;
    double lo = INFINITY, hi = -INFINITY, slo = INFINITY, shi = -INFINITY;
    int n = 0;
    for (int k = i; k < a->runs.n; k++) {
      const sr_run *q = &a->runs.r[k];
      if (strcmp(q->host, r->host) || strcmp(q->cpu_model, r->cpu_model)) continue;
      n++;
      if (isfinite(q->load_start)) lo = fmin(lo, q->load_start), hi = fmax(hi, q->load_start);
      if (isfinite(q->load_end)) lo = fmin(lo, q->load_end), hi = fmax(hi, q->load_end);
      if (isfinite(q->cpu_share)) slo = fmin(slo, q->cpu_share), shi = fmax(shi, q->cpu_share);
    }
    char b1[32], b2[32], b3[32], b4[32];
    fprintf(f, "- Machine `%s` (%s, %d CPUs online): %d run(s), load average %s-%s during them, CPU share the ranks got "
               "%s-%s.\n",
            r->host, r->cpu_model, r->cpus_online, n, num(lo, "%.1f", b1, 32), num(hi, "%.1f", b2, 32),
            num(100 * slo, "%.0f %%", b3, 32), num(100 * shi, "%.0f %%", b4, 32));
  }
  if (a->src.ib.loaded)
    fprintf(f, "- Input bench `%s`: %s, %d CPUs, load average %.1f at its end.\n", a->src.ib.path, a->src.ib.cpu_model,
            a->src.ib.cpus, a->src.ib.load);
  fprintf(f, "\n");
  fprintf(f, "| file | model | px | batch/rank | ranks | hardware | img/s | MFU | efficiency (file / series) | comm hidden "
             "| step CV | macro-F1 | host, CPU, load | flags |\n");
  fprintf(f, "|---|---|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---|---|\n");
  char b[10][64], fl[700];
  for (int k = 0; k < a->nseries; k++) {
    const sa_series *s = &a->series[k];
    for (int i = 0; i < s->n; i++) {
      const sr_run *r = &a->runs.r[s->idx[i]];
      double se = sa_series_efficiency(a, s, i);
      fprintf(f, "| %s | %s | %lld | %lld | %d | %s | %s | %s | %s / %s | %s | %s | %s | %s, %s, load %s-%s | %s |\n",
              r->path, r->model, (long long)r->image_size, (long long)r->batch, r->world, r->hardware,
              num(r->img_s, "%.1f", b[0], 64), num(100 * r->mfu, "%.1f %%", b[1], 64), num(100 * r->eff, "%.1f %%", b[2], 64),
              num(100 * se, "%.1f %%", b[3], 64), num(100 * r->hidden, "%.0f %%", b[4], 64),
              num(100 * r->step_cv, "%.1f %%", b[5], 64), num(r->macro_f1, "%.3f", b[6], 64), r->host, r->cpu_model,
              num(r->load_start, "%.1f", b[7], 64), num(r->load_end, "%.1f", b[8], 64),
              cell(r->flags[0] ? r->flags : "-", fl, sizeof fl));
    }
  }
  for (int i = 0; i < a->runs.n; i++) {
    const sr_run *r = &a->runs.r[i];
    if (strcmp(r->kind, "eval")) continue;
    fprintf(f, "| %s (eval) | %s | %lld | | | | | | | | | %s | %s | quality only |\n", r->path, r->model,
            (long long)r->image_size, num(r->macro_f1, "%.3f", b[0], 64), r->host);
  }
  fprintf(f, "\n");
  if (a->scaling_svg[0]) fprintf(f, "![throughput vs ranks](%s)\n\n", base_name(a->scaling_svg));
}

static void calibration(const sa_study *a, FILE *f) {
  fprintf(f, "## Calibration: the model against this machine's runs\n\n");
  if (!a->ncal) {
    fprintf(f, "No CPU training runs were given, so the model is not calibrated here.\n\n");
    return;
  }
  int ok = 0, pred = 0;
  for (int i = 0; i < a->ncal; i++) pred += isfinite(a->cal[i].predicted), ok += a->cal[i].within;
  fprintf(f,
          "Each run is predicted from the *other* runs (leave-one-out): MFU (of the CPU time received) from the 1-rank "
          "run of the family at the nearest image size, hidden communication and step-time spread from the other runs; "
          "from the run itself only what describes the machine at that moment, as a hardware row would: the link "
          "bandwidth it measured at start-up and the share of its cores it got (CPU seconds / wall seconds, other "
          "jobs took the rest). **%d of %d** predictions are within +-%.0f %% (%d run(s) had no other run to "
          "predict from).\n\n",
          ok, a->ncal, 100 * CAL_TOLERANCE, a->ncal - pred);
  fprintf(f, "| run | model | px | ranks | measured img/s | CPU share (measured) | predicted img/s (modelled) | error "
             "| within +-%.0f %% | MFU from | binding | run flags |\n|---|---|---:|---:|---:|---:|---:|---:|:---:|---|---|---|\n",
          100 * CAL_TOLERANCE);
  char b[4][64], fl[700];
  for (int i = 0; i < a->ncal; i++) {
    const cal_row *c = &a->cal[i];
    const sr_run *r = c->run;
    char from[300];
    if (c->mfu_from)
      tx_set(from, sizeof from, "%s (%s %lld px, %.1f %%)", c->mfu_from->path, c->mfu_from->model,
               (long long)c->mfu_from->image_size, 100 * c->mfu.v);
    else
      snprintf(from, sizeof from, "no other run");
    fprintf(f, "| %s | %s | %lld | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->path, r->model, (long long)r->image_size,
            r->world, num(r->img_s, "%.1f", b[0], 64), num(100 * r->cpu_share, "%.0f %%", b[3], 64),
            num(c->predicted, "%.1f", b[1], 64),
            num(100 * c->error, "%+.1f %%", b[2], 64), !isfinite(c->error) ? "-" : c->within ? "yes" : "**no**", from,
            isfinite(c->predicted) ? sm_term_name(c->res.binding) : "-", cell(r->flags[0] ? r->flags : "-", fl, sizeof fl));
  }
  fprintf(f, "\nGPU and TPU rows are not calibrated: no GPU or TPU run is among the inputs (%s).\n\n", a->x.cuda_status);
}

static void model_section(const sa_study *a, FILE *f) {
  fprintf(f, "## The model\n\n");
  fprintf(f,
          "For N devices with B images each per step (seconds per step):\n\n"
          "- compute: t_c = B x 3 x F / (peak x MFU), F = forward FLOPs per image at the scenario's image size (counted "
          "from the graph), peak = the row's dense peak at its precision (fp32 on CPUs, bf16 on GPUs/TPUs), MFU per "
          "model family and device class: measured (1-rank results.json), else published (bench/published.tsv, "
          "converted with dptrain's own FLOP count), else a labelled proxy;\n"
          "- stragglers: t_s = t_c x CV x E[max of N standard normals] (each step waits for the slowest rank; CV "
          "measured in 1-rank runs);\n"
          "- communication: t_m = (1 - hidden) x 2 (N-1)/N x gradient bytes / bus bandwidth (the row's intra-node "
          "figure, the smaller of intra and inter beyond one node; hidden = measured `comm_hidden_fraction`);\n"
          "- input pipeline: t_i = B / (host cores per device x decode+augment img/s per core), measured by "
          "bench/bench_input_180kb.sh on %s-byte JPEGs; on CPU rows the loader shares the compute cores, so t_i adds "
          "to the step, on accelerators it overlaps;\n"
          "- storage: t_r = N x B x %.0f KB / (nodes x read bandwidth per node);\n"
          "- memory: the batch must fit the device's memory less %.0f %% by dptrain's memory plan (or a batch-size "
          "finder result): otherwise the configuration is **infeasible**, not slow.\n\n"
          "step = max(t_c + t_s + t_m [+ t_i on CPUs], t_i, t_r); rate = N x B / step; the binding term is the largest "
          "part. time = epochs x images / rate; cost = time x N x the row's price per device-hour.\n\n",
          a->src.ib.loaded ? "the dataset's 180 KB" : "(no bench given)", a->o->dc.image_bytes / 1024,
          100 * a->o->dc.memory_margin);
  fprintf(f, "Option classes: CPU (socket rows), 1 GPU, multi-GPU in one node (up to devices_per_node), multi-node GPU, "
             "TPU (modelled for comparison only: dptrain cannot run on it). Device counts 1, 2, 4, ... %d. Production = "
             "the cheapest runnable configuration within both limits (a lower-risk one within 10 %% of its cost wins); "
             "fallback = the lowest-risk, then cheapest, within both limits on another hardware row.\n\n",
          a->o->dc.max_devices);
  if (a->input_note[0]) fprintf(f, "Note: %s.\n\n", a->input_note);
}

static void appendix(const sa_study *a, FILE *f) {
  fprintf(f, "## Appendix: full grid (modelled)\n\n");
  char b[10][64];
  for (int i = 0; i < a->ns; i++) {
    const sa_scenario *s = &a->s[i];
    fprintf(f, "### %s\n\n", s->sc->name);
    fprintf(f, "| hardware | devices | nodes | class | img/s | binding | compute cap | input cap | comm cap | storage cap "
               "| largest batch | time (h) | cost ($) | meets |\n");
    fprintf(f, "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|:---:|\n");
    for (int k = 0; k < s->g.n; k++) {
      const dc_config *c = &s->g.c[k];
      fprintf(f, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c->row->name, c->devices,
              c->res.nodes, dc_class_name(c->cls), num(c->res.rate, "%.0f", b[0], 64), sm_term_name(c->res.binding),
              num(c->res.cap[SM_COMPUTE], "%.0f", b[1], 64), num(c->res.cap[SM_INPUT], "%.0f", b[2], 64),
              num(c->res.cap[SM_COMM], "%.0f", b[3], 64), num(c->res.cap[SM_STORAGE], "%.0f", b[4], 64),
              num(c->max_batch.v, "%.0f", b[5], 64), num(c->res.time_s / 3600, "%.2f", b[6], 64),
              num(c->res.cost_usd, "%.0f", b[7], 64), !c->runnable ? "not runnable" : c->meets ? "yes" : "no");
    }
    fprintf(f, "\n");
  }
}

int sa_write_markdown(const sa_study *a, FILE *f) {
  const study_opts *o = a->o;
  const dc_opts *d = &o->dc;
  fprintf(f, "# dptrain compute-selection study\n\n");
  fprintf(f, "Generated %s by `%s`.\n\n", a->created, o->command ? o->command : "dptrain study");
  fprintf(f,
          "Full run: %.2f M images of %.0f KB (JPEG), deadline %.0f h, budget $%.0f per full run, macro-F1 target "
          "%.2f.\n\n",
          d->images / 1e6, d->image_bytes / 1024, d->deadline_h, d->budget_usd, o->quality_target);
  fprintf(f, "Labels: **measured** (a run or bench, with the machine it ran on), **published** (a figure with its "
             "source), **modelled** (computed by the model from the other numbers), **table** (bench/hardware.tsv, "
             "user-editable; prices are estimates), **assumed** (a default, said where used).\n\n");
  fprintf(f, "GPU status: %s.\n\n", a->x.cuda_status);
  fprintf(f, "## Decision summary\n\n| scenario | production | fallback | binding term (production) | quality |\n"
             "|---|---|---|---|---|\n");
  char b1[800], b2[800], b3[700];
  for (int i = 0; i < a->ns; i++) {
    const sa_scenario *s = &a->s[i];
    const dc_config *p = s->g.production >= 0 ? &s->g.c[s->g.production] : NULL;
    const dc_config *fb = s->g.fallback >= 0 ? &s->g.c[s->g.fallback] : NULL;
    char ps[200] = "none within the limits", fs[200] = "none";
    if (p) snprintf(ps, sizeof ps, "%d x %s: %.2f h, $%.0f", p->devices, p->row->name, p->res.time_s / 3600, p->res.cost_usd);
    if (fb) snprintf(fs, sizeof fs, "%d x %s: %.2f h, $%.0f", fb->devices, fb->row->name, fb->res.time_s / 3600, fb->res.cost_usd);
    char q[200];
    if (s->q.run)
      snprintf(q, sizeof q, "%.3f measured after %lld training images of a small synthetic set (%s %.2f)",
               s->q.run->macro_f1, (long long)s->q.run->images_seen,
               s->q.run->macro_f1 >= o->quality_target ? "meets" : "below the target", o->quality_target);
    else snprintf(q, sizeof q, "not measured");
    fprintf(f, "| %s | %s | %s | %s | %s |\n", s->sc->name, cell(ps, b1, sizeof b1), cell(fs, b2, sizeof b2),
            p ? sm_term_name(p->res.binding) : "-", cell(q, b3, sizeof b3));
  }
  fprintf(f, "\n");
  for (int i = 0; i < a->ns; i++) scenario_section(a, &a->s[i], f);
  sensitivity(a, f);
  runs_section(a, f);
  calibration(a, f);
  model_section(a, f);
  appendix(a, f);
  return ferror(f) ? -1 : 0;
}
