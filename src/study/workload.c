#include "study/workload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "train/model_plan.h"

static int plan_describe(const char *model, int64_t image_size, int64_t classes, const char *optimizer, int64_t batch,
                         double *flops, double *params, double *plan_bytes) {
  model_plan_info mi;
  if (model_plan_describe(model, image_size, classes, optimizer, batch, &mi)) return -1;
  *flops = mi.flops_fwd, *params = mi.params, *plan_bytes = mi.plan_bytes;
  return 0;
}

static wl_describe_fn fn(const wl_cache *c) { return c->describe ? c->describe : plan_describe; }

double wl_plan_bytes(wl_cache *c, const wl_model *m, int64_t batch) {
  double f, p, b;
  return fn(c)(m->model, m->image_size, m->classes, m->optimizer, batch, &f, &p, &b) ? NAN : b;
}

const wl_model *wl_get(wl_cache *c, const char *model, int64_t image_size, int64_t classes, const char *optimizer) {
  for (int i = 0; i < c->n; i++) {
    const wl_model *m = c->m[i];
    if (!strcmp(m->model, model) && m->image_size == image_size && m->classes == classes &&
        !strcmp(m->optimizer, optimizer))
      return m;
  }
  wl_model t;
  memset(&t, 0, sizeof t);
  snprintf(t.model, sizeof t.model, "%s", model);
  snprintf(t.optimizer, sizeof t.optimizer, "%s", optimizer);
  t.image_size = image_size;
  t.classes = classes;
  if (fn(c)(model, image_size, classes, optimizer, 1, &t.flops_fwd, &t.params, &t.plan1)) return NULL;
  t.plan2 = wl_plan_bytes(c, &t, 2);
  c->m = dp_realloc(c->m, (size_t)(c->n + 1) * sizeof *c->m, "workload cache");
  c->m[c->n] = dp_malloc(sizeof t, "workload");
  *c->m[c->n] = t;
  return c->m[c->n++];
}

int64_t wl_max_batch(wl_cache *c, const wl_model *m, double budget, const char *hardware, const study_sources *s,
                     char *src, int src_sz) {
  // A batch-size finder result for this model, size and device wins: it
  // also counts library workspaces and the loader's buffers, and was probed.
  for (int i = 0; s && i < s->ntb; i++) {
    const tb_entry *t = &s->tb[i];
    if (strcmp(t->model, m->model) || t->image_size != m->image_size) continue;
    int hw_ok = t->hardware[0] ? hardware && !strcmp(t->hardware, hardware)
                               : fabs(t->budget_bytes - budget) <= 0.01 * budget;
    if (!hw_ok) continue;
    snprintf(src, src_sz, "measured: batch-size finder %s", t->path);
    return t->batch;
  }
  snprintf(src, src_sz, "modelled: dptrain's memory plan (fp32)");
  if (!(budget > 0)) return -1;
  if (m->plan1 > budget) return 0;
  double slope = m->plan2 - m->plan1, fixed = m->plan1 - slope;
  double est = slope > 0 ? floor((budget - fixed) / slope) : (double)(1 << 20);
  int64_t b = est > (double)(1 << 20) ? (1 << 20) : (int64_t)est;
  if (b < 1) b = 1;
  // The plan is affine in the batch up to workspace rounding: confirm, and
  // step down while the exact plan does not fit.
  for (int it = 0; it < 16 && b > 1 && wl_plan_bytes(c, m, b) > budget; it++) b = (int64_t)floor((double)b * 0.98);
  return b;
}

void wl_cache_free(wl_cache *c) {
  for (int i = 0; i < c->n; i++) free(c->m[i]);
  free(c->m);
  c->m = NULL;
  c->n = 0;
}
