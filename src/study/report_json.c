// The machine-readable study (`dptrain study --json FILE`): the same content
// as the Markdown; the production and fallback picks with every input's
// value, label and source, the grid with its terms and MFU.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "study/analysis.h"

static void pv_obj(dp_json *j, const char *key, const pv_num *p) {
  dp_json_key(j, key);
  dp_json_begin_object(j);
  dp_json_kv_double(j, "value", p->v);
  dp_json_kv_string(j, "label", pv_name(p->kind));
  dp_json_kv_string(j, "source", p->src);
  dp_json_end_object(j);
}

static void config_obj(dp_json *j, const char *key, const dc_config *c, int full) {
  if (key) dp_json_key(j, key);
  if (!c) {
    dp_json_null(j);
    return;
  }
  dp_json_begin_object(j);
  dp_json_kv_string(j, "hardware", c->row->name);
  dp_json_kv_int(j, "devices", c->devices);
  dp_json_kv_int(j, "nodes", c->res.nodes);
  dp_json_kv_string(j, "class", dc_class_name(c->cls));
  dp_json_kv_int(j, "image_size", c->image_size);
  dp_json_kv_int(j, "batch_per_device", c->batch);
  dp_json_kv_double(j, "images_per_s", c->res.rate);
  dp_json_kv_double(j, "time_s", c->res.time_s);
  dp_json_kv_double(j, "cost_usd", c->res.cost_usd);
  dp_json_kv_string(j, "binding", sm_term_name(c->res.binding));
  dp_json_kv_bool(j, "feasible", c->res.feasible);
  dp_json_kv_bool(j, "runnable", c->runnable);
  dp_json_kv_bool(j, "meets", c->meets);
  dp_json_kv_int(j, "risk", c->risk);
  dp_json_kv_string(j, "risks", c->risks);
  if (full >= 1) {   // the terms; full >= 2: every input with its label and source
    dp_json_key(j, "step_s");
    dp_json_begin_object(j);
    for (int k = 0; k < SM_MEMORY; k++) dp_json_kv_double(j, sm_term_name(k), c->res.t[k]);
    dp_json_end_object(j);
    dp_json_key(j, "caps_images_per_s");
    dp_json_begin_object(j);
    for (int k = 0; k < SM_MEMORY; k++) dp_json_kv_double(j, sm_term_name(k), c->res.cap[k]);
    dp_json_end_object(j);
    if (full < 2) {
      dp_json_kv_double(j, "mfu", c->mfu.v);
      dp_json_kv_string(j, "mfu_label", pv_name(c->mfu.kind));
      dp_json_kv_double(j, "max_batch", c->max_batch.v);
      dp_json_end_object(j);
      return;
    }
    pv_obj(j, "mfu", &c->mfu);
    pv_obj(j, "input_rate_per_core", &c->input_rate);
    pv_obj(j, "cores_per_device", &c->cores);
    pv_obj(j, "bus_bandwidth_Bps", &c->bus);
    pv_obj(j, "comm_hidden_fraction", &c->hidden);
    pv_obj(j, "step_cv", &c->cv);
    pv_obj(j, "storage_Bps", &c->storage);
    pv_obj(j, "max_batch", &c->max_batch);
  }
  dp_json_end_object(j);
}

int sa_write_json(const sa_study *a, FILE *f) {
  const study_opts *o = a->o;
  dp_json j;
  dp_json_init(&j, f, 1);
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "kind", "study");
  dp_json_kv_int(&j, "schema_version", 1);
  dp_json_kv_string(&j, "created_utc", a->created);
  dp_json_kv_string(&j, "command", o->command ? o->command : "");
  dp_json_key(&j, "limits");
  dp_json_begin_object(&j);
  dp_json_kv_double(&j, "deadline_h", o->dc.deadline_h);
  dp_json_kv_double(&j, "budget_usd", o->dc.budget_usd);
  dp_json_kv_double(&j, "images", o->dc.images);
  dp_json_kv_double(&j, "image_bytes", o->dc.image_bytes);
  dp_json_kv_double(&j, "quality_target_macro_f1", o->quality_target);
  dp_json_end_object(&j);
  dp_json_key(&j, "cuda");
  dp_json_begin_object(&j);
  dp_json_kv_bool(&j, "verified_on_gpu", a->x.cuda_verified);
  dp_json_kv_string(&j, "status", a->x.cuda_status);
  dp_json_end_object(&j);
  dp_json_kv_string(&j, "input_note", a->input_note);

  dp_json_key(&j, "scenarios");
  dp_json_begin_array(&j);
  for (int i = 0; i < a->ns; i++) {
    const sa_scenario *s = &a->s[i];
    dp_json_begin_object(&j);
    dp_json_kv_string(&j, "name", s->sc->name);
    dp_json_kv_string(&j, "model", s->sc->model);
    dp_json_kv_int(&j, "image_size", s->sc->image_size);
    dp_json_kv_int(&j, "epochs", s->sc->epochs);
    dp_json_kv_int(&j, "batch_per_device", s->sc->batch);
    dp_json_kv_string(&j, "optimizer", s->sc->optimizer);
    dp_json_kv_double(&j, "flops_fwd", s->wl ? s->wl->flops_fwd : NAN);
    dp_json_kv_double(&j, "params", s->wl ? s->wl->params : NAN);
    dp_json_key(&j, "options");
    dp_json_begin_object(&j);
    for (int k = 0; k < OC_N; k++) {
      dp_json_key(&j, dc_class_name(k));
      dp_json_begin_object(&j);
      config_obj(&j, "cheapest_meeting_limits", s->g.best[k] >= 0 ? &s->g.c[s->g.best[k]] : NULL, 0);
      config_obj(&j, "fastest_feasible", s->g.fastest[k] >= 0 ? &s->g.c[s->g.fastest[k]] : NULL, 0);
      dp_json_end_object(&j);
    }
    dp_json_end_object(&j);
    config_obj(&j, "production", s->g.production >= 0 ? &s->g.c[s->g.production] : NULL, 2);
    dp_json_kv_string(&j, "production_reason", s->g.production_why);
    config_obj(&j, "fallback", s->g.fallback >= 0 ? &s->g.c[s->g.fallback] : NULL, 2);
    dp_json_kv_string(&j, "fallback_reason", s->g.fallback_why);
    dp_json_key(&j, "quality");
    dp_json_begin_object(&j);
    dp_json_kv_double(&j, "macro_f1", s->q.run ? s->q.run->macro_f1 : NAN);
    dp_json_kv_string(&j, "label", s->q.run ? "measured" : "not measured");
    dp_json_kv_string(&j, "source", s->q.src);
    dp_json_end_object(&j);
    dp_json_key(&j, "sensitivity");
    dp_json_begin_array(&j);
    for (int k = 0; k < s->nvar; k++) {
      dp_json_begin_object(&j);
      dp_json_kv_string(&j, "change", s->var[k].change);
      config_obj(&j, "production", s->var[k].g.production >= 0 ? &s->var[k].g.c[s->var[k].g.production] : NULL, 0);
      dp_json_end_object(&j);
    }
    dp_json_end_array(&j);
    dp_json_key(&j, "grid");
    dp_json_begin_array(&j);
    for (int k = 0; k < s->g.n; k++) config_obj(&j, NULL, &s->g.c[k], 1);
    dp_json_end_array(&j);
    dp_json_end_object(&j);
  }
  dp_json_end_array(&j);

  dp_json_key(&j, "runs");
  dp_json_begin_array(&j);
  for (int i = 0; i < a->runs.n; i++) {
    const sr_run *r = &a->runs.r[i];
    dp_json_begin_object(&j);
    dp_json_kv_string(&j, "path", r->path);
    dp_json_kv_string(&j, "kind", r->kind);
    dp_json_kv_string(&j, "model", r->model);
    dp_json_kv_int(&j, "image_size", r->image_size);
    dp_json_kv_int(&j, "batch_per_rank", r->batch);
    dp_json_kv_int(&j, "world_size", r->world);
    dp_json_kv_string(&j, "hardware", r->hardware);
    dp_json_kv_string(&j, "device", r->device);
    dp_json_kv_double(&j, "images_per_s", r->img_s);
    dp_json_kv_double(&j, "mfu", r->mfu);
    dp_json_kv_double(&j, "scaling_efficiency", r->eff);
    dp_json_kv_double(&j, "comm_hidden_fraction", r->hidden);
    dp_json_kv_double(&j, "step_cv", r->step_cv);
    dp_json_kv_double(&j, "macro_f1", r->macro_f1);
    dp_json_kv_bool(&j, "noisy", r->noisy);
    dp_json_kv_bool(&j, "loaded", r->loaded);
    dp_json_kv_bool(&j, "efficiency_refused", r->eff_refused);
    dp_json_kv_string(&j, "flags", r->flags);
    dp_json_kv_string(&j, "host", r->host);
    dp_json_kv_string(&j, "cpu_model", r->cpu_model);
    dp_json_kv_double(&j, "load_1m_start", r->load_start);
    dp_json_kv_double(&j, "load_1m_end", r->load_end);
    dp_json_end_object(&j);
  }
  dp_json_end_array(&j);

  dp_json_key(&j, "series");
  dp_json_begin_array(&j);
  for (int k = 0; k < a->nseries; k++) {
    const sa_series *s = &a->series[k];
    const sr_run *r0 = &a->runs.r[s->idx[0]];
    dp_json_begin_object(&j);
    dp_json_kv_string(&j, "model", r0->model);
    dp_json_kv_int(&j, "image_size", r0->image_size);
    dp_json_kv_int(&j, "batch_per_rank", r0->batch);
    dp_json_kv_string(&j, "hardware", r0->hardware);
    dp_json_key(&j, "points");
    dp_json_begin_array(&j);
    for (int i = 0; i < s->n; i++) {
      const sr_run *r = &a->runs.r[s->idx[i]];
      dp_json_begin_object(&j);
      dp_json_kv_string(&j, "path", r->path);
      dp_json_kv_int(&j, "ranks", r->world);
      dp_json_kv_double(&j, "images_per_s", r->img_s);
      dp_json_kv_double(&j, "efficiency_vs_series_1rank", sa_series_efficiency(a, s, i));
      dp_json_end_object(&j);
    }
    dp_json_end_array(&j);
    dp_json_end_object(&j);
  }
  dp_json_end_array(&j);

  dp_json_key(&j, "calibration");
  dp_json_begin_object(&j);
  dp_json_kv_double(&j, "tolerance", CAL_TOLERANCE);
  dp_json_key(&j, "rows");
  dp_json_begin_array(&j);
  for (int i = 0; i < a->ncal; i++) {
    const cal_row *c = &a->cal[i];
    dp_json_begin_object(&j);
    dp_json_kv_string(&j, "path", c->run->path);
    dp_json_kv_string(&j, "model", c->run->model);
    dp_json_kv_int(&j, "image_size", c->run->image_size);
    dp_json_kv_int(&j, "ranks", c->run->world);
    dp_json_kv_double(&j, "measured_images_per_s", c->run->img_s);
    dp_json_kv_double(&j, "predicted_images_per_s", c->predicted);
    dp_json_kv_double(&j, "error", c->error);
    dp_json_kv_bool(&j, "within_tolerance", c->within);
    dp_json_kv_string(&j, "mfu_from", c->mfu_from ? c->mfu_from->path : "");
    pv_obj(&j, "mfu", &c->mfu);
    pv_obj(&j, "comm_hidden_fraction", &c->hidden);
    pv_obj(&j, "step_cv", &c->cv);
    dp_json_kv_string(&j, "binding", sm_term_name(c->res.binding));
    dp_json_end_object(&j);
  }
  dp_json_end_array(&j);
  dp_json_end_object(&j);
  dp_json_end_object(&j);
  fputc('\n', f);
  return ferror(f) ? -1 : 0;
}
