#include "study/decide.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "study/text.h"

const char *pv_name(pv_kind k) {
  switch (k) {
    case PV_MEASURED: return "measured";
    case PV_PUBLISHED: return "published";
    case PV_MODELLED: return "modelled";
    case PV_ASSUMED: return "assumed";
    case PV_TABLE: return "table";
  }
  return "?";
}

const char *dc_class_name(dc_class c) {
  static const char *n[OC_N] = {"CPU", "1 GPU", "multi-GPU, one node", "multi-node GPU", "TPU"};
  return c < OC_N ? n[c] : "?";
}

static pv_num pv(double v, pv_kind k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static pv_num pv(double v, pv_kind k, const char *fmt, ...) {
  pv_num p;
  p.v = v;
  p.kind = k;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p.src, sizeof p.src, fmt, ap);
  va_end(ap);
  return p;
}

static void add_risk(dc_config *c, int score, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_risk(dc_config *c, int score, const char *fmt, ...) {
  c->risk += score;
  size_t len = strlen(c->risks);
  if (len + 3 >= sizeof c->risks) return;
  if (len) strcat(c->risks, "; "), len += 2;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->risks + len, sizeof c->risks - len, fmt, ap);
  va_end(ap);
}

// The precision a row trains in: fp32 on CPUs, bf16 (autocast) on accelerators.
static const char *row_precision(const hw_entry *e) {
  if (!strcmp(e->kind, "cpu")) return "fp32";
  if (e->peak_bf16 > 0) return "bf16";
  return e->peak_tf32 > 0 ? "tf32" : "fp32";
}

static double row_peak(const hw_entry *e) { return hw_rank_peak(e, row_precision(e), 1); }

static double median(double *v, int n) {
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && v[k] < v[k - 1]; k--) {
      double t = v[k];
      v[k] = v[k - 1], v[k - 1] = t;
    }
  return n == 0 ? NAN : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

void dc_ctx_init(dc_ctx *x, const dc_opts *o, const hw_table *hw, const study_sources *src, sr_set *runs, wl_cache *wl) {
  memset(x, 0, sizeof *x);
  x->o = o, x->hw = hw, x->src = src, x->runs = runs, x->wl = wl;
  int ntrain = 0;
  for (int i = 0; i < runs->n; i++) {
    const sr_run *r = &runs->r[i];
    if (strcmp(r->kind, "train")) continue;
    ntrain++;
    if (!strcmp(r->device, "cuda") && !x->cuda_verified) {
      x->cuda_verified = 1;
      tx_set(x->cuda_status, sizeof x->cuda_status, "CUDA path ran on a GPU: %s (%d rank(s), %s, %s)", r->path,
               r->world, r->hardware, r->created);
    }
  }
  if (!x->cuda_verified) {
#ifdef DP_HAVE_CUDA
    const char *bin = "this dptrain binary is built with CUDA";
#else
    const char *bin = "this dptrain binary is built without CUDA";
#endif
    snprintf(x->cuda_status, sizeof x->cuda_status,
             "CUDA path not verified on a GPU: none of the %d training results.json given ran on a GPU "
             "(build.device), and %s",
             ntrain, bin);
  }
}

// ---- where each input comes from ----------------------------------------------
static int run_on_class(const sr_run *r, const char *kind) {
  if (!strcmp(kind, "cpu")) return !strcmp(r->hw_kind, "cpu") && strcmp(r->device, "cuda");
  if (!strcmp(kind, "gpu")) return !strcmp(r->device, "cuda");
  return 0;   // no dptrain run can be on a TPU
}

// Measured MFU: 1-rank runs (multi-rank ones carry scaling losses the model
// adds itself) of the family on the class, not noisy; the same model first,
// then the nearest image size; several equally near: their median.
static int measured_mfu(dc_ctx *x, const char *model, const char *family, int64_t size, const char *kind,
                        const char *exclude, pv_num *out, const sr_run **from) {
  const sr_run *best = NULL;
  double best_score = INFINITY;
  for (int i = 0; i < x->runs->n; i++) {
    const sr_run *r = &x->runs->r[i];
    if (strcmp(r->kind, "train") || r->world != 1 || r->noisy || !(r->mfu > 0) || strcmp(r->family, family) ||
        !run_on_class(r, kind) || (exclude && !strcmp(exclude, r->path)))
      continue;
    double score = (strcmp(r->model, model) ? 100 : 0) + fabs(log((double)r->image_size / (double)size));
    if (score < best_score - 1e-9) best_score = score, best = r;
  }
  if (!best) return 0;
  double v[64];
  int nv = 0;
  char files[300] = "";
  for (int i = 0; i < x->runs->n && nv < 64; i++) {
    const sr_run *r = &x->runs->r[i];
    if (strcmp(r->kind, "train") || r->world != 1 || r->noisy || !(r->mfu > 0) || strcmp(r->family, family) ||
        !run_on_class(r, kind) || (exclude && !strcmp(exclude, r->path)))
      continue;
    double score = (strcmp(r->model, model) ? 100 : 0) + fabs(log((double)r->image_size / (double)size));
    if (fabs(score - best_score) > 1e-9) continue;
    v[nv++] = r->mfu_core;
    tx_append(files, sizeof files, "%s%s", files[0] ? ", " : "", r->path);
  }
  double m = median(v, nv);
  char how[160] = "";
  if (strcmp(best->model, model) || best->image_size != size)
    snprintf(how, sizeof how, "; transferred from %s at %lld px to %s at %lld px", best->model,
             (long long)best->image_size, model, (long long)size);
  char share[120] = "";
  if (best->cpu_share > 0 && best->cpu_share < 1)
    tx_set(share, sizeof share, " (MFU of the CPU time received: the run got %.0f %% of its cores)", 100 * best->cpu_share);
  tx_set(out->src, sizeof out->src, "measured: %s at %lld px, 1 rank of %s on %s (%s), %d run(s)%s%s: %s", best->model,
         (long long)best->image_size, best->hardware, best->host, best->cpu_model, nv, share, how, files);
  out->v = m;
  out->kind = PV_MEASURED;
  if (from) *from = best;
  return 1;
}

static int published_mfu(dc_ctx *x, const char *family, const hw_entry *row, pv_num *out) {
  const pub_entry *best = NULL;
  const hw_entry *best_row = NULL;
  double best_score = INFINITY;
  for (int i = 0; i < x->src->npub; i++) {
    const pub_entry *p = &x->src->pub[i];
    const hw_entry *pr = hw_table_find(x->hw, p->hardware);
    if (strcmp(p->family, family) || !pr) continue;
    if (strcmp(pr->kind, row->kind) && !(strcmp(row->kind, "tpu") == 0 && strcmp(pr->kind, "gpu") == 0)) continue;
    double score = !strcmp(pr->name, row->name) ? 0 : 1 + fabs(log(row_peak(pr) / row_peak(row)));
    if (strcmp(pr->kind, row->kind)) score += 100;   // a GPU figure for a TPU: last
    if (score < best_score) best_score = score, best = p, best_row = pr;
  }
  if (!best) return 0;
  const wl_model *m = wl_get(x->wl, best->model, best->image_size, best->classes, "sgd");
  double peak = hw_rank_peak(best_row, best->precision, 1);
  if (!m || !(peak > 0)) return 0;
  double mfu = 3 * m->flops_fwd * best->img_s / peak;
  char how[200] = "";
  if (strcmp(best_row->name, row->name))
    snprintf(how, sizeof how, "; figure from %s, applied to %s as MFU", best_row->name, row->name);
  *out = pv(mfu, strcmp(best_row->kind, row->kind) ? PV_ASSUMED : PV_PUBLISHED,
            "%s: %s, %.0f img/s per device at %lld px = 3 x %.2f GFLOP x img/s / %.0f TFLOP/s (%s)%s",
            strcmp(best_row->kind, row->kind) ? "assumed (no figure for this device kind)" : "published", best->source,
            best->img_s, (long long)best->image_size, m->flops_fwd / 1e9, peak / 1e12, best->precision, how);
  return 1;
}

pv_num dc_mfu(dc_ctx *x, const char *model, int64_t image_size, const hw_entry *row, const char *exclude,
              const sr_run **from) {
  const char *family = sr_family(model);
  pv_num p;
  if (from) *from = NULL;
  const sr_run *got = NULL;
  if (strcmp(row->kind, "tpu") && measured_mfu(x, model, family, image_size, row->kind, exclude, &p, &got)) {
    if (strcmp(got->hardware, row->name)) {   // e.g. this machine's cores -> a server socket
      char buf[sizeof p.src];
      snprintf(buf, sizeof buf, "%s", p.src);
      tx_set(p.src, sizeof p.src, "%s; applied to %s as MFU", buf, row->name);
    }
    if (from) *from = got;
    return p;
  }
  if (published_mfu(x, family, row, &p)) return p;
  // Another family's figure on the same class, labelled as such.
  static const char *fams[] = {"resnet", "vit", "cnn"};
  for (int k = 0; k < 3; k++) {
    if (!strcmp(fams[k], family)) continue;
    const char *proxy = !strcmp(fams[k], "resnet") ? "resnet50" : !strcmp(fams[k], "vit") ? "vit_b16" : "cnn";
    if ((strcmp(row->kind, "tpu") && measured_mfu(x, proxy, fams[k], image_size, row->kind, exclude, &p, from)) ||
        published_mfu(x, fams[k], row, &p)) {
      char buf[sizeof p.src];
      snprintf(buf, sizeof buf, "%s", p.src);
      tx_set(p.src, sizeof p.src, "assumed: the %s family's figure as a proxy (no %s figure on %s): %s", fams[k],
               family, row->kind, buf);
      p.kind = PV_ASSUMED;
      return p;
    }
  }
  return pv(x->o->assume_mfu, PV_ASSUMED, "assumed: --assume-mfu %.2f (no measured or published figure at all)",
            x->o->assume_mfu);
}

// Median over multi-rank, not noisy runs of the family on a device class.
static int measured_median(dc_ctx *x, const char *family, const char *kind, const char *exclude, int hidden,
                           pv_num *out) {
  double v[64];
  int nv = 0;
  char files[300] = "";
  for (int i = 0; i < x->runs->n && nv < 64; i++) {
    const sr_run *r = &x->runs->r[i];
    if (strcmp(r->kind, "train") || r->noisy || strcmp(r->family, family) || !run_on_class(r, kind) ||
        (exclude && !strcmp(exclude, r->path)))
      continue;
    double val = hidden ? (r->world > 1 ? r->hidden : NAN) : (r->world == 1 ? r->step_cv : NAN);
    if (!isfinite(val)) continue;
    v[nv++] = val;
    tx_append(files, sizeof files, "%s%s", files[0] ? ", " : "", r->path);
  }
  if (!nv) return 0;
  *out = pv(median(v, nv), PV_MEASURED, "measured: median of %d %s run(s) of the %s family on %s: %s", nv,
            hidden ? "multi-rank" : "1-rank", family, kind, files);
  return 1;
}

pv_num dc_hidden(dc_ctx *x, const char *family, const char *kind, const char *exclude) {
  pv_num p;
  if (measured_median(x, family, kind, exclude, 1, &p)) return p;
  const char *other = !strcmp(kind, "cpu") ? "gpu" : "cpu";
  if (measured_median(x, family, other, exclude, 1, &p)) {
    p.kind = PV_ASSUMED;
    char buf[sizeof p.src];
    snprintf(buf, sizeof buf, "%s", p.src);
    tx_set(p.src, sizeof p.src, "assumed: the %s figure applied to %s (%s)", other, kind, buf);
    return p;
  }
  return pv(0, PV_ASSUMED, "assumed: nothing hidden (no multi-rank %s run of the %s family)", kind, family);
}

pv_num dc_cv(dc_ctx *x, const char *family, const char *kind, const char *exclude) {
  pv_num p;
  if (measured_median(x, family, kind, exclude, 0, &p)) return p;
  if (!strcmp(kind, "cpu")) return pv(0, PV_ASSUMED, "assumed: 0 (no 1-rank CPU run of the %s family)", family);
  return pv(x->o->assume_gpu_cv, PV_ASSUMED, "assumed: --assume-gpu-cv %.2f (no %s measurement)", x->o->assume_gpu_cv,
            kind);
}

// ---- the grid -----------------------------------------------------------------
static dc_class class_of(const hw_entry *e, int n) {
  if (!strcmp(e->kind, "cpu")) return OC_CPU;
  if (!strcmp(e->kind, "tpu")) return OC_TPU;
  int dpn = e->devices_per_node > 0 ? (int)e->devices_per_node : 1;
  return n == 1 ? OC_GPU1 : (n <= dpn ? OC_GPU_NODE : OC_MULTINODE);
}

static pv_num table_or_default(double v, double dflt, const char *what, const char *row, double scale, const char *unit) {
  if (isfinite(v)) return pv(v, PV_TABLE, "table: %s of %s = %g %s", what, row, v / scale, unit);
  return pv(dflt, PV_ASSUMED, "assumed: %s %g %s (not in the table's row %s)", what, dflt / scale, unit, row);
}

static void eval_config(dc_ctx *x, const sc_scenario *sc, const dc_variant *v, const hw_entry *e, int n, dc_config *c) {
  memset(c, 0, sizeof *c);
  const dc_opts *o = x->o;
  c->row = e;
  c->devices = n;
  c->cls = class_of(e, n);
  c->image_size = v && v->image_size > 0 ? v->image_size : sc->image_size;
  c->batch = sc->batch;
  if (v && v->batch_mult > 0) c->batch = (int64_t)fmax(1, floor((double)sc->batch * v->batch_mult + 0.5));
  c->epochs = sc->epochs;
  const wl_model *m = wl_get(x->wl, sc->model, c->image_size, sc->classes, sc->optimizer);
  c->flops_fwd = m ? m->flops_fwd : NAN;
  int cpu = !strcmp(e->kind, "cpu");
  int unit_core = !strcmp(e->unit, "core");

  c->mfu = dc_mfu(x, sc->model, c->image_size, e, NULL, NULL);
  double mult = v ? (cpu ? v->cpu_mfu_mult : v->gpu_mfu_mult) : 0;
  if (mult > 0) {
    char buf[sizeof c->mfu.src];
    snprintf(buf, sizeof buf, "%s", c->mfu.src);
    tx_set(c->mfu.src, sizeof c->mfu.src, "sensitivity: x%g of %s", mult, buf);
    c->mfu.v *= mult;
  }
  double ir = ib_rate(&x->src->ib, c->image_size, !cpu);
  if (isfinite(ir))
    c->input_rate = pv(ir, PV_MEASURED,
                       "measured: bench_decode, %s decode+augment of %dx%d q%d JPEGs (mean %.0f KB) to %lld px, "
                       "%.0f img/s per core on %s (load %.1f on %d CPUs), applied per host core of %s",
                       cpu ? "float" : "uint8", x->src->ib.width, x->src->ib.height, x->src->ib.quality,
                       x->src->ib.mean_bytes / 1024, (long long)c->image_size, ir, x->src->ib.cpu_model,
                       x->src->ib.load, x->src->ib.cpus, e->name);
  else
    c->input_rate = pv(0, PV_ASSUMED, "not modelled: no input bench given (--input-bench)");
  double cores = isfinite(e->cores_per_device) ? e->cores_per_device : (cpu ? 1 : 8);
  c->cores = isfinite(e->cores_per_device) ? pv(cores, PV_TABLE, "table: cores_per_device of %s", e->name)
                                           : pv(cores, PV_ASSUMED, "assumed: %g host cores per device (not in the table)", cores);
  if (!cpu && v && v->cores_per_device > 0)
    c->cores = pv(v->cores_per_device, PV_ASSUMED, "sensitivity: %g host cores per device", v->cores_per_device);
  c->hidden = dc_hidden(x, sr_family(sc->model), cpu ? "cpu" : "gpu", NULL);
  c->cv = dc_cv(x, sr_family(sc->model), cpu ? "cpu" : "gpu", NULL);
  c->storage = table_or_default(e->storage_bps, o->default_storage_bps, "storage_GBps", e->name, 1e9, "GB/s");
  int dpn = isfinite(e->devices_per_node) && e->devices_per_node >= 1 ? (int)e->devices_per_node : 1;
  double budget = isfinite(e->memory_bytes) ? e->memory_bytes * (1 - o->memory_margin) : NAN;
  char msrc[300];
  int64_t mb = m ? wl_max_batch(x->wl, m, budget, e->name, x->src, msrc, sizeof msrc) : -1;
  if (isfinite(budget))
    c->max_batch = pv((double)mb, strncmp(msrc, "measured", 8) ? PV_MODELLED : PV_MEASURED,
                      "%s: largest batch within %.1f GiB (%s memory_gib less %.0f %% margin)", msrc, budget / 1073741824.0,
                      e->name, 100 * o->memory_margin);
  else
    c->max_batch = pv(-1, PV_ASSUMED, "not modelled: %s has no memory_gib", e->name);

  sm_input *in = &c->in;
  in->flops_fwd = c->flops_fwd;
  in->batch = c->batch;
  in->grad_bytes = m ? 4 * m->params : 0;
  in->bytes_per_image = o->image_bytes;
  in->devices = n;
  in->devices_per_node = dpn;
  in->peak_flops = unit_core ? hw_rank_peak(e, row_precision(e), 1) : row_peak(e);
  in->mfu = c->mfu.v;
  in->cores_per_device = c->cores.v;
  in->input_rate_per_core = c->input_rate.v;
  in->input_shares_compute = cpu;
  in->storage_bps = c->storage.v;
  in->intra_bps = isfinite(e->intra_bps) ? e->intra_bps : NAN;
  in->inter_bps = isfinite(e->inter_bps) ? e->inter_bps : NAN;
  in->hidden_fraction = c->hidden.v;
  in->step_cv = c->cv.v;
  in->max_batch = (int64_t)c->max_batch.v;
  in->price_per_device_hour = e->price_per_hour;
  in->images = o->images * (v && v->images_mult > 0 ? v->images_mult : 1);
  in->epochs = (double)c->epochs;
  sm_evaluate(in, &c->res);
  double bw = c->res.bus_bps;
  if (n > 1)
    c->bus = isfinite(bw) ? pv(bw, PV_TABLE, "table: %s of %s = %g GB/s", c->res.nodes > 1 ? "min(intra, inter)_node_GBps" : "intra_node_GBps",
                               e->name, bw / 1e9)
                          : pv(NAN, PV_ASSUMED, "not modelled: no bandwidth in the row %s", e->name);
  else
    c->bus = pv(NAN, PV_TABLE, "one device: no all-reduce");

  // Runnable by dptrain, and what could go wrong (the full CUDA status is
  // stated once in the report's header).
  c->runnable = strcmp(e->kind, "tpu") != 0;
  if (!c->runnable) add_risk(c, 100, "not runnable: dptrain runs on CPUs and CUDA GPUs only (a TPU needs JAX or PyTorch/XLA)");
  if (!strcmp(e->kind, "gpu")) {
    if (x->cuda_verified) add_risk(c, 0, "CUDA path ran on a GPU");
    else add_risk(c, 2, "CUDA path not verified on a GPU");
    if (c->mfu.kind != PV_MEASURED) add_risk(c, 0, "GPU speed from %s figure", c->mfu.kind == PV_PUBLISHED ? "a published" : "an assumed");
  }
  if (c->res.nodes > 1) add_risk(c, 1, "multi-node (%d nodes): needs a fast interconnect", c->res.nodes);
  if (cpu && !unit_core && c->mfu.kind == PV_MEASURED) add_risk(c, 0, "socket speed from a 1-core measurement");
  if (c->res.binding == SM_INPUT && !cpu) add_risk(c, 0, "JPEG decode on host cores (dptrain has no GPU decoder)");
  if (!c->res.feasible)
    add_risk(c, 0, "infeasible: batch %lld does not fit (largest %lld)", (long long)c->batch, (long long)in->max_batch);
  c->meets = c->res.feasible && c->res.time_s <= o->deadline_h * 3600 && c->res.cost_usd <= o->budget_usd;
}

void dc_explain(const dc_config *c, char *out, int n) {
  const sm_result *r = &c->res;
  const sm_input *in = &c->in;
  double B = (double)in->batch;
  switch (r->binding) {
    case SM_COMPUTE:
      snprintf(out, n,
               "compute-bound: 3 x %.2f GFLOP per image at %.1f %% MFU (%s) of %.1f TFLOP/s gives %.0f img/s per device",
               in->flops_fwd / 1e9, 100 * in->mfu, pv_name(c->mfu.kind), in->peak_flops / 1e12, r->cap[SM_COMPUTE] / c->devices);
      break;
    case SM_INPUT:
      snprintf(out, n,
               "input-bound: %g host cores per device decode and augment %.0f img/s each (%s, 180 KB JPEGs) = %.0f img/s "
               "per device, below the %.0f img/s its compute allows",
               in->cores_per_device, in->input_rate_per_core, pv_name(c->input_rate.kind), B / r->t[SM_INPUT],
               r->cap[SM_COMPUTE] / c->devices);
      break;
    case SM_COMM:
      snprintf(out, n,
               "communication-bound: the ring all-reduce of %.0f MB at %.0f GB/s leaves %.1f ms per step exposed "
               "(%.0f %% hidden, %s) against %.1f ms of compute",
               in->grad_bytes / 1e6, r->bus_bps / 1e9, 1e3 * r->t[SM_COMM], 100 * in->hidden_fraction,
               pv_name(c->hidden.kind), 1e3 * r->t[SM_COMPUTE]);
      break;
    case SM_STORAGE:
      snprintf(out, n, "storage-bound: %.0f GB per epoch read at %.1f GB/s per node over %d node(s)",
               in->images * in->bytes_per_image / 1e9, in->storage_bps / 1e9, r->nodes);
      break;
    case SM_SYNC:
      snprintf(out, n, "straggler-bound: a %.0f %% step-time spread costs %.1f ms per step waiting for the slowest of %d",
               100 * in->step_cv, 1e3 * r->t[SM_SYNC], c->devices);
      break;
    case SM_MEMORY:
      snprintf(out, n, "infeasible: batch %lld per device does not fit in memory (largest %lld, %s)", (long long)in->batch,
               (long long)in->max_batch, pv_name(c->max_batch.kind));
      break;
    default: snprintf(out, n, "?");
  }
}

static int in_grid(const hw_entry *e, const dc_opts *o) {
  if (!strcmp(e->unit, "core") && !o->include_core_rows) return 0;
  return e->price_per_hour > 0 && row_peak(e) > 0;
}

static void pick(dc_grid *g, const dc_opts *o) {
  for (int k = 0; k < OC_N; k++) g->best[k] = g->fastest[k] = -1;
  g->production = g->fallback = -1;
  for (int i = 0; i < g->n; i++) {
    const dc_config *c = &g->c[i];
    if (!c->res.feasible) continue;
    int *b = &g->best[c->cls], *f = &g->fastest[c->cls];
    if (c->meets && (*b < 0 || c->res.cost_usd < g->c[*b].res.cost_usd)) *b = i;
    if (*f < 0 || c->res.time_s < g->c[*f].res.time_s) *f = i;
  }
  // Production: the cheapest runnable configuration within both limits; a
  // lower-risk one within 10 % of its cost wins.
  for (int i = 0; i < g->n; i++) {
    const dc_config *c = &g->c[i];
    if (!c->meets || !c->runnable) continue;
    if (g->production < 0) {
      g->production = i;
      continue;
    }
    const dc_config *p = &g->c[g->production];
    double lim = 1.10 * fmin(c->res.cost_usd, p->res.cost_usd);
    int better = c->res.cost_usd < p->res.cost_usd;
    if (c->res.cost_usd <= lim && p->res.cost_usd <= lim && c->risk != p->risk) better = c->risk < p->risk;
    if (better) g->production = i;
  }
  // Fallback: on another hardware row, within both limits, lowest risk then cost.
  for (int i = 0; i < g->n && g->production >= 0; i++) {
    const dc_config *c = &g->c[i];
    if (!c->meets || !c->runnable || c->row == g->c[g->production].row) continue;
    if (g->fallback < 0) {
      g->fallback = i;
      continue;
    }
    const dc_config *f = &g->c[g->fallback];
    if (c->risk < f->risk || (c->risk == f->risk && c->res.cost_usd < f->res.cost_usd)) g->fallback = i;
  }
  char ex[400];
  if (g->production >= 0) {
    const dc_config *p = &g->c[g->production];
    dc_explain(p, ex, sizeof ex);
    // The cheapest one, when the risk tie-break passed over it.
    int cheapest = g->production;
    for (int i = 0; i < g->n; i++)
      if (g->c[i].meets && g->c[i].runnable && g->c[i].res.cost_usd < g->c[cheapest].res.cost_usd) cheapest = i;
    char tie[200] = "";
    if (cheapest != g->production)
      tx_set(tie, sizeof tie, " (%d x %s costs $%.0f but carries more risk)", g->c[cheapest].devices,
             g->c[cheapest].row->name, g->c[cheapest].res.cost_usd);
    tx_set(g->production_why, sizeof g->production_why,
           "%d x %s, %.2f h and $%.0f per full run: the %s configuration dptrain can run within %.0f h and $%.0f%s; %s.",
           p->devices, p->row->name, p->res.time_s / 3600, p->res.cost_usd,
           cheapest == g->production ? "cheapest" : "lowest-risk of the near-cheapest", o->deadline_h, o->budget_usd,
           tie, ex);
  } else {
    int f = -1;
    for (int i = 0; i < g->n; i++)
      if (g->c[i].res.feasible && g->c[i].runnable && (f < 0 || g->c[i].res.time_s < g->c[f].res.time_s)) f = i;
    if (f >= 0) {
      dc_explain(&g->c[f], ex, sizeof ex);
      tx_set(g->production_why, sizeof g->production_why,
               "nothing dptrain can run meets %.0f h and $%.0f; the fastest runnable is %d x %s at %.2f h and $%.0f; %s.",
               o->deadline_h, o->budget_usd, g->c[f].devices, g->c[f].row->name, g->c[f].res.time_s / 3600,
               g->c[f].res.cost_usd, ex);
    } else {
      snprintf(g->production_why, sizeof g->production_why, "no feasible configuration.");
    }
  }
  if (g->fallback >= 0) {
    const dc_config *f = &g->c[g->fallback], *p = &g->c[g->production];
    dc_explain(f, ex, sizeof ex);
    const char *why = f->risk < p->risk ? (strcmp(f->row->kind, "cpu") ? "less to go wrong than the production pick"
                                                                       : "it runs on the CPU path that is tested here")
                                        : "another device type in case the production one is unavailable";
    tx_set(g->fallback_why, sizeof g->fallback_why, "%d x %s, %.2f h and $%.0f: %s; %s.", f->devices, f->row->name,
             f->res.time_s / 3600, f->res.cost_usd, why, ex);
  } else {
    snprintf(g->fallback_why, sizeof g->fallback_why, "no other hardware row meets both limits.");
  }
}

int dc_grid_build(dc_ctx *x, const sc_scenario *sc, const dc_variant *v, dc_grid *g, char *err, int err_sz) {
  memset(g, 0, sizeof *g);
  int64_t size = v && v->image_size > 0 ? v->image_size : sc->image_size;
  if (!wl_get(x->wl, sc->model, size, sc->classes, sc->optimizer)) {
    snprintf(err, err_sz, "scenario %s: unknown model '%s'", sc->name, sc->model);
    return -1;
  }
  int cap = 0;
  for (int h = 0; h < x->hw->n; h++) {
    const hw_entry *e = &x->hw->e[h];
    if (!in_grid(e, x->o)) continue;
    for (int n = 1; n <= x->o->max_devices; n *= 2) {
      if (g->n == cap) {
        cap = cap ? 2 * cap : 64;
        g->c = dp_realloc(g->c, (size_t)cap * sizeof *g->c, "study grid");
      }
      eval_config(x, sc, v, e, n, &g->c[g->n++]);
    }
  }
  pick(g, x->o);
  return 0;
}

void dc_grid_free(dc_grid *g) {
  free(g->c);
  memset(g, 0, sizeof *g);
}
