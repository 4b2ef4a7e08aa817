// Model weights in safetensors through the validating core/safetensors.h
// reader and atomic writer. See weights.h.
#include "train/weights.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/safetensors.h"

static const char *bn_suffix = ".running_mean";

// "<bn>.running_mean" -> "<bn>.num_batches_tracked" in key; 0 if nm is not a running mean.
static int nbt_name(const char *nm, char *key, size_t n) {
  size_t len = strlen(nm), sl = strlen(bn_suffix);
  if (len <= sl || strcmp(nm + len - sl, bn_suffix)) return 0;
  snprintf(key, n, "%.*s.num_batches_tracked", (int)(len - sl), nm);
  return 1;
}

int weights_save(const char *path, nn_graph *g, const weights_meta *meta, char *err, int err_sz) {
  // Metadata values are strings (the format allows nothing else).
  enum { NMETA = 16 };
  char val[NMETA][256];
  const char *kv[2 * NMETA];
  int m = 0;
#define META(key, ...) (kv[2 * m] = key, snprintf(val[m], sizeof val[m], __VA_ARGS__), kv[2 * m + 1] = val[m], m++)
  META("format", "pt");
  META("dptrain.model", "%s", meta->model.name);
  META("dptrain.image_size", "%lld", (long long)meta->model.image_size);
  META("dptrain.channels", "%d", meta->model.channels);
  META("dptrain.classes", "%lld", (long long)meta->model.classes);
  META("dptrain.small_stem", "%d", meta->model.small_stem);
  META("dptrain.zero_init_residual", "%d", meta->model.zero_init_residual);
  META("dptrain.patch", "%d", meta->model.patch);
  META("dptrain.dropout", "%.9g", (double)meta->model.dropout);
  META("dptrain.cnn_width", "%d", meta->model.cnn_width);
  META("dptrain.steps", "%lld", (long long)meta->steps);
  META("dptrain.mean", "%.9g,%.9g,%.9g", (double)meta->mean[0], (double)meta->mean[1], (double)meta->mean[2]);
  META("dptrain.std", "%.9g,%.9g,%.9g", (double)meta->std[0], (double)meta->std[1], (double)meta->std[2]);
#undef META
  // Class names joined by '\n' (shard_open refuses names with control characters).
  char *names = NULL;
  size_t names_len = 0;
  FILE *nf = open_memstream(&names, &names_len);
  if (!nf) {
    snprintf(err, err_sz, "writing %s: open_memstream: %s", path, strerror(errno));
    return -1;
  }
  for (int c = 0; c < meta->num_classes; c++) {
    const char *nm = meta->class_names && meta->class_names[c] ? meta->class_names[c] : "";
    if (strchr(nm, '\n')) {
      fclose(nf);
      free(names);
      snprintf(err, err_sz, "writing %s: class name %d contains a newline", path, c);
      return -1;
    }
    fprintf(nf, "%s%s", c ? "\n" : "", nm);
  }
  fclose(nf);
  kv[2 * m] = "dptrain.class_names";
  kv[2 * m + 1] = names ? names : "";
  m++;
  if (meta->augment_policy[0]) {   // the training augmentation policy (issue 12)
    kv[2 * m] = "dptrain.augment_policy";
    kv[2 * m + 1] = meta->augment_policy;
    m++;
  }
  char *lbias = NULL;   // post-hoc logit offsets that `dptrain eval` adds to the logits
  if (meta->logit_bias) {
    size_t lb_len = 0;
    FILE *lf = open_memstream(&lbias, &lb_len);
    if (!lf) {
      free(names);
      snprintf(err, err_sz, "writing %s: open_memstream: %s", path, strerror(errno));
      return -1;
    }
    for (int c = 0; c < meta->num_classes; c++) fprintf(lf, "%s%.9g", c ? "," : "", (double)meta->logit_bias[c]);
    fclose(lf);
    kv[2 * m] = "dptrain.logit_bias";
    kv[2 * m + 1] = lbias ? lbias : "";
    m++;
  }

  // Tensors: every parameter (torch layout), every BN buffer, and per BN
  // module its num_batches_tracked (I64 scalar), so torch's strict
  // load_state_dict accepts the file. Host views: a CUDA graph's buffers are
  // downloaded once each.
  const float *pd = nn_params_host(g), *bd = nn_bufs_host(g);
  int nnbt = 0;
  char key[NN_NAME_MAX + 32];
  for (int32_t i = 0; i < g->nbufs; i++) nnbt += nbt_name(g->bufs[i].name, key, sizeof key);
  int ne = g->nparams + g->nbufs + nnbt;
  st_entry *e = dp_calloc((size_t)ne + 1, sizeof(st_entry), "weights entries");
  char (*nbt_keys)[NN_NAME_MAX + 32] = dp_calloc((size_t)nnbt + 1, sizeof *nbt_keys, "weights names");
  int64_t *nbt_vals = dp_calloc((size_t)nnbt + 1, sizeof(int64_t), "num_batches_tracked");
  int k = 0, q = 0;
  for (int32_t i = 0; i < g->nparams; i++, k++) {
    const nn_param *p = &g->params[i];
    e[k] = (st_entry){p->name, ST_F32, p->ndim, {0}, pd + p->offset};
    for (int d = 0; d < p->ndim; d++) e[k].shape[d] = p->shape[d];
  }
  for (int32_t i = 0; i < g->nbufs; i++, k++)
    e[k] = (st_entry){g->bufs[i].name, ST_F32, 1, {g->bufs[i].numel}, bd + g->bufs[i].offset};
  for (int32_t i = 0; i < g->nbufs; i++) {
    if (!nbt_name(g->bufs[i].name, nbt_keys[q], sizeof nbt_keys[q])) continue;
    nbt_vals[q] = meta->steps;
    e[k++] = (st_entry){nbt_keys[q], ST_I64, 0, {0}, &nbt_vals[q]};
    q++;
  }
  dp_err de;
  int rc = st_write(path, e, ne, kv, m, &de);
  if (rc) snprintf(err, err_sz, "%s", de.msg);
  free(e);
  free(nbt_keys);
  free(nbt_vals);
  free(names);
  free(lbias);
  return rc;
}

// Metadata keys contain dots, so they are looked up directly.
static const char *md_str(const st_file *f, const char *k, const char *dflt) {
  const char *v = st_meta(f, k);
  return v ? v : dflt;
}

// Strict integer metadata in [lo, hi]: "abc" or "1e9" is an error, not 0.
static int meta_int(const st_file *f, const char *k, int64_t lo, int64_t hi, int required, int64_t *out,
                    char *err, int err_sz) {
  const char *s = st_meta(f, k);
  if (!s) {
    if (required) snprintf(err, err_sz, "'%s' has no %s metadata (not written by dptrain train?)", st_path(f), k);
    return required ? -1 : 0;
  }
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    snprintf(err, err_sz, "'%s': metadata %s = '%.40s' is not an integer in [%lld, %lld]", st_path(f), k, s,
             (long long)lo, (long long)hi);
    return -1;
  }
  *out = v;
  return 0;
}

static int meta_floats(const st_file *f, const char *k, float *out, int n, char *err, int err_sz) {
  const char *s = st_meta(f, k);
  if (!s) return 0;   // defaults stay
  const char *p = s;
  for (int i = 0; i < n; i++) {
    char *end = NULL;
    errno = 0;
    double v = strtod(p, &end);
    if (errno || end == p || !isfinite(v) || (i < n - 1 ? *end != ',' : *end != 0)) {
      snprintf(err, err_sz, "'%s': metadata %s = '%.60s' is not %d finite numbers", st_path(f), k, s, n);
      return -1;
    }
    out[i] = (float)v;
    p = end + 1;
  }
  return 0;
}

int weights_read_meta(const char *path, weights_meta *meta, char *err, int err_sz) {
  memset(meta, 0, sizeof *meta);
  dp_err de;
  st_file *f = st_open(path, &de);
  if (!f) {
    snprintf(err, err_sz, "%s", de.msg);
    return -1;
  }
  int rc = -1;
  const char *model = md_str(f, "dptrain.model", NULL);
  int64_t isz = 0, ch = 0, cl = 0, ss = 0, zi = 0, pa = 0, cw = 0, st = 0;
  if (!model) {
    snprintf(err, err_sz, "'%s' has no dptrain model metadata (dptrain.model, image_size, channels, classes)", path);
    goto done;
  }
  if (meta_int(f, "dptrain.image_size", 8, 8192, 1, &isz, err, err_sz) ||
      meta_int(f, "dptrain.channels", 1, 3, 1, &ch, err, err_sz) ||
      meta_int(f, "dptrain.classes", 1, 1024, 1, &cl, err, err_sz) ||
      meta_int(f, "dptrain.small_stem", 0, 1, 0, &ss, err, err_sz) ||
      meta_int(f, "dptrain.zero_init_residual", 0, 1, 0, &zi, err, err_sz) ||
      meta_int(f, "dptrain.patch", 0, 1024, 0, &pa, err, err_sz) ||
      meta_int(f, "dptrain.cnn_width", 0, 4096, 0, &cw, err, err_sz) ||
      meta_int(f, "dptrain.steps", 0, INT64_MAX, 0, &st, err, err_sz))
    goto done;
  if (ch == 2) {
    snprintf(err, err_sz, "'%s': metadata dptrain.channels = 2 (1 or 3)", path);
    goto done;
  }
  if (!model_cfg_default(&meta->model, model, isz, (int)ch, cl)) {
    snprintf(err, err_sz, "'%s': unknown model '%.40s'", path, model);
    goto done;
  }
  meta->model.small_stem = (int)ss;
  meta->model.zero_init_residual = (int)zi;
  if (pa) meta->model.patch = (int)pa;
  if (cw) meta->model.cnn_width = (int)cw;
  float dropout = 0;
  if (meta_floats(f, "dptrain.dropout", &dropout, 1, err, err_sz)) goto done;
  if (dropout < 0 || dropout >= 1) {
    snprintf(err, err_sz, "'%s': metadata dptrain.dropout = %g outside [0, 1)", path, (double)dropout);
    goto done;
  }
  meta->model.dropout = dropout;
  meta->steps = st;
  meta->num_classes = (int)cl;
  const float dm[3] = {0.485f, 0.456f, 0.406f}, dsd[3] = {0.229f, 0.224f, 0.225f};
  memcpy(meta->mean, dm, sizeof dm);
  memcpy(meta->std, dsd, sizeof dsd);
  if (meta_floats(f, "dptrain.mean", meta->mean, 3, err, err_sz) ||
      meta_floats(f, "dptrain.std", meta->std, 3, err, err_sz))
    goto done;
  for (int c = 0; c < 3; c++)
    if (!(meta->std[c] > 0)) {
      snprintf(err, err_sz, "'%s': metadata dptrain.std has a non-positive value", path);
      goto done;
    }
  const char *names = md_str(f, "dptrain.class_names", NULL);
  if (names) {
    int count = 1;
    for (const char *p = names; *p; p++) count += *p == '\n';
    if (count != cl) {
      snprintf(err, err_sz, "'%s': metadata dptrain.class_names has %d names, dptrain.classes is %lld", path, count,
               (long long)cl);
      goto done;
    }
    meta->class_names = dp_calloc((size_t)cl, sizeof(char *), "class names");
    const char *p = names;
    for (int c = 0; c < cl; c++) {
      const char *e = strchr(p, '\n');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      meta->class_names[c] = dp_malloc(n + 1, "class name");
      memcpy(meta->class_names[c], p, n);
      meta->class_names[c][n] = 0;
      p = e ? e + 1 : p + n;
    }
  }
  const char *pol = md_str(f, "dptrain.augment_policy", NULL);
  if (pol) snprintf(meta->augment_policy, sizeof meta->augment_policy, "%s", pol);
  if (st_meta(f, "dptrain.logit_bias") && cl > 0) {
    meta->logit_bias = dp_calloc((size_t)cl, sizeof(float), "logit bias");
    if (meta_floats(f, "dptrain.logit_bias", meta->logit_bias, (int)cl, err, err_sz)) goto done;
  }
  rc = 0;
done:
  st_close(f);
  if (rc) weights_meta_free(meta);
  return rc;
}

void weights_meta_free(weights_meta *meta) {
  for (int c = 0; meta->class_names && c < meta->num_classes; c++) free(meta->class_names[c]);
  free(meta->class_names);
  meta->class_names = NULL;
  free(meta->logit_bias);
  meta->logit_bias = NULL;
}

static void shape_str(const int64_t *s, int nd, char *b, size_t n) {
  size_t k = (size_t)snprintf(b, n, "[");
  for (int d = 0; d < nd && k < n; d++) k += (size_t)snprintf(b + k, n - k, "%s%lld", d ? ", " : "", (long long)s[d]);
  if (k < n) snprintf(b + k, n - k, "]");
}

// Copies tensor `name` into dst after checking dtype and shape against the
// model's (ndim, shape), and its values unless nonfinite_ok.
static int load_one(const st_file *f, const char *name, int ndim, const int64_t *shape, float *dst,
                    int nonfinite_ok, char *err, int err_sz) {
  const st_tensor *t = st_find(f, name);
  if (!t) {
    snprintf(err, err_sz, "'%s' has no tensor '%s' (different model or config?)", st_path(f), name);
    return -1;
  }
  if (t->dtype != ST_F32) {
    snprintf(err, err_sz, "'%s': tensor '%s' is %s, the model needs F32", st_path(f), name, st_dtype_name(t->dtype));
    return -1;
  }
  int same = t->ndim == ndim;
  for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
  if (!same) {
    char a[128], b[128];
    shape_str(t->shape, t->ndim, a, sizeof a);
    shape_str(shape, ndim, b, sizeof b);
    snprintf(err, err_sz, "'%s': tensor '%s' has shape %s, the model expects %s", st_path(f), name, a, b);
    return -1;
  }
  st_copy(f, t, dst);
  if (!nonfinite_ok)
    for (int64_t i = 0; i < t->numel; i++)
      if (!isfinite(dst[i])) {
        snprintf(err, err_sz, "'%s': tensor '%s' holds %s at element %lld (a diverged run?); "
                 "--allow-nonfinite-weights loads it anyway", st_path(f), name, isnan(dst[i]) ? "NaN" : "Inf",
                 (long long)i);
        return -1;
      }
  return 0;
}

int weights_load(const char *path, nn_graph *g, int flags, char *err, int err_sz) {
  dp_err de;
  st_file *f = st_open(path, &de);
  if (!f) {
    snprintf(err, err_sz, "%s", de.msg);
    return -1;
  }
  int rc = 0, ok_nf = (flags & WEIGHTS_ALLOW_NONFINITE) != 0;
  // Read into the host views (the buffers themselves on the CPU), then upload.
  float *pd = nn_params_host(g), *bd = nn_bufs_host(g);
  for (int32_t i = 0; !rc && i < g->nparams; i++) {
    const nn_param *p = &g->params[i];
    rc = load_one(f, p->name, p->ndim, p->shape, pd + p->offset, ok_nf, err, err_sz);
  }
  for (int32_t i = 0; !rc && i < g->nbufs; i++)
    rc = load_one(f, g->bufs[i].name, 1, &g->bufs[i].numel, bd + g->bufs[i].offset, ok_nf, err, err_sz);
  // Every tensor of the file must belong to the model: extra ones mean the
  // file was written for another architecture or config.
  for (int i = 0; !rc && i < st_count(f); i++) {
    const char *nm = st_at(f, i)->name;
    int known = 0;
    for (int32_t k = 0; !known && k < g->nparams; k++) known = !strcmp(g->params[k].name, nm);
    for (int32_t k = 0; !known && k < g->nbufs; k++) {
      char key[NN_NAME_MAX + 32];
      known = !strcmp(g->bufs[k].name, nm) || (nbt_name(g->bufs[k].name, key, sizeof key) && !strcmp(key, nm));
    }
    if (!known) {
      snprintf(err, err_sz, "'%s' has tensor '%s', which the model does not have (different model or config?)", path,
               nm);
      rc = -1;
    }
  }
  st_close(f);
  if (!rc) {
    nn_params_push(g);
    nn_bufs_push(g);
  }
  return rc;
}
