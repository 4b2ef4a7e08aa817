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
#include "nn/models/models.h"
#include "input/loader.h"

static const char *bn_suffix = ".running_mean";

// The eval transform's resize ratio when the caller leaves it 0 (and when an
// older file has none): the loader's default, one source of truth.
static float default_resize_ratio(void) {
  loader_cfg d;
  loader_cfg_defaults(&d);
  return d.eval_resize_ratio;
}

// "<bn>.running_mean" -> "<bn>.num_batches_tracked" in key; 0 if nm is not a running mean.
static int nbt_name(const char *nm, char *key, size_t n) {
  size_t len = strlen(nm), sl = strlen(bn_suffix);
  if (len <= sl || strcmp(nm + len - sl, bn_suffix)) return 0;
  snprintf(key, n, "%.*s.num_batches_tracked", (int)(len - sl), nm);
  return 1;
}

int weights_pack_add(st_pack *pk, const nn_graph *g, const float *params, const float *bufs,
                     const weights_meta *meta, int copy, char *err, int err_sz) {
  // Metadata values are strings (the format allows nothing else).
  st_pack_meta(pk, "format", "pt");
  st_pack_meta(pk, "dptrain.model", "%s", meta->model.name);
  st_pack_meta(pk, "dptrain.image_size", "%lld", (long long)meta->model.image_size);
  st_pack_meta(pk, "dptrain.channels", "%d", meta->model.channels);
  st_pack_meta(pk, "dptrain.classes", "%lld", (long long)meta->model.classes);
  st_pack_meta(pk, "dptrain.small_stem", "%d", meta->model.small_stem);
  st_pack_meta(pk, "dptrain.zero_init_residual", "%d", meta->model.zero_init_residual);
  st_pack_meta(pk, "dptrain.patch", "%d", meta->model.patch);
  st_pack_meta(pk, "dptrain.dropout", "%.9g", (double)meta->model.dropout);
  st_pack_meta(pk, "dptrain.cnn_width", "%d", meta->model.cnn_width);
  st_pack_meta(pk, "dptrain.steps", "%lld", (long long)meta->steps);
  st_pack_meta(pk, "dptrain.mean", "%.9g,%.9g,%.9g", (double)meta->mean[0], (double)meta->mean[1],
               (double)meta->mean[2]);
  st_pack_meta(pk, "dptrain.std", "%.9g,%.9g,%.9g", (double)meta->std[0], (double)meta->std[1],
               (double)meta->std[2]);
  // The eval transform (src/input/augment.c, aug_eval_params): resize the
  // shorter side to int(image_size / ratio), bilinear with half-pixel centres
  // and no antialiasing, then center-crop image_size x image_size.
  st_pack_meta(pk, "dptrain.eval_resize_ratio", "%.9g",
               (double)(meta->eval_resize_ratio > 0 ? meta->eval_resize_ratio : default_resize_ratio()));
  st_pack_meta(pk, "dptrain.eval_resize_filter", "bilinear");
  st_pack_meta(pk, "dptrain.eval_resize_antialias", "0");
  st_pack_meta(pk, "dptrain.eval_crop", "center");
  // Class names joined by '\n' (shard_open refuses names with control characters).
  char *names = NULL;
  size_t names_len = 0;
  FILE *nf = open_memstream(&names, &names_len);
  if (!nf) {
    snprintf(err, err_sz, "building the weights metadata: open_memstream: %s", strerror(errno));
    return -1;
  }
  for (int c = 0; c < meta->num_classes; c++) {
    const char *nm = meta->class_names && meta->class_names[c] ? meta->class_names[c] : "";
    if (strchr(nm, '\n')) {
      fclose(nf);
      free(names);
      snprintf(err, err_sz, "building the weights metadata: class name %d contains a newline", c);
      return -1;
    }
    fprintf(nf, "%s%s", c ? "\n" : "", nm);
  }
  fclose(nf);
  st_pack_meta_str(pk, "dptrain.class_names", names ? names : "");
  free(names);

  // Tensors: every parameter (torch layout), every BN buffer, and per BN
  // module its num_batches_tracked (I64 scalar), so torch's strict
  // load_state_dict accepts the file.
  void (*add)(st_pack *, const char *, st_dtype, int, const int64_t *, const void *) =
      copy ? st_pack_add_copy : st_pack_add;
  for (int32_t i = 0; i < g->nparams; i++) {
    const nn_param *p = &g->params[i];
    add(pk, p->name, ST_F32, p->ndim, p->shape, params + p->offset);
  }
  for (int32_t i = 0; i < g->nbufs; i++) add(pk, g->bufs[i].name, ST_F32, 1, &g->bufs[i].numel, bufs + g->bufs[i].offset);
  char key[NN_NAME_MAX + 32];
  int64_t nbt = meta->steps;
  for (int32_t i = 0; i < g->nbufs; i++)
    if (nbt_name(g->bufs[i].name, key, sizeof key)) st_pack_add_copy(pk, key, ST_I64, 0, NULL, &nbt);
  return 0;
}

int weights_save(const char *path, nn_graph *g, const weights_meta *meta, char *err, int err_sz) {
  // Host views: a CUDA graph's buffers are downloaded once each.
  const float *pd = nn_params_host(g), *bd = nn_bufs_host(g);
  st_pack pk;
  st_pack_init(&pk);
  int rc = weights_pack_add(&pk, g, pd, bd, meta, 0, err, err_sz);
  if (!rc) {
    dp_err de;
    rc = st_pack_write(&pk, path, &de);
    if (rc) snprintf(err, err_sz, "%s", de.msg);
  }
  st_pack_free(&pk);
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
  meta->eval_resize_ratio = default_resize_ratio();
  if (meta_floats(f, "dptrain.eval_resize_ratio", &meta->eval_resize_ratio, 1, err, err_sz)) goto done;
  if (!(meta->eval_resize_ratio > 0 && meta->eval_resize_ratio <= 1)) {
    snprintf(err, err_sz, "'%s': metadata dptrain.eval_resize_ratio = %g is not in (0, 1]", path,
             (double)meta->eval_resize_ratio);
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
  // file was written for another architecture or config. A checkpoint
  // (train/checkpoint.h) also carries optimizer state and other ranks' BN
  // buffers; those are its own, not the model's.
  int is_ckpt = st_meta(f, "dptrain.checkpoint") != NULL;
  for (int i = 0; !rc && i < st_count(f); i++) {
    const char *nm = st_at(f, i)->name;
    int known = is_ckpt && (!strncmp(nm, "optimizer.", 10) || !strncmp(nm, "dptrain.", 8));
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

// ---- pretrained initialisation ---------------------------------------------------
static int prefix_excluded(const char *name, const char *list) {
  if (!list || !*list) return 0;
  const char *p = list;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n > 0 && !strncmp(name, p, n)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

// Converts a tensor of a float dtype to F32 into dst (numel elements).
static int read_as_f32(const st_file *f, const st_tensor *t, float *dst) {
  const unsigned char *d = st_data(f, t);
  for (int64_t i = 0; i < t->numel; i++) {
    switch (t->dtype) {
      case ST_F32: memcpy(&dst[i], d + 4 * i, 4); break;
      case ST_F64: {
        double v;
        memcpy(&v, d + 8 * i, 8);
        dst[i] = (float)v;
        break;
      }
      case ST_BF16: {
        uint16_t h;
        memcpy(&h, d + 2 * i, 2);
        uint32_t u = (uint32_t)h << 16;
        memcpy(&dst[i], &u, 4);
        break;
      }
      case ST_F16: {
        uint16_t h;
        memcpy(&h, d + 2 * i, 2);
        uint32_t sign = (uint32_t)(h >> 15) << 31, ex = (h >> 10) & 31, man = h & 1023, u;
        if (ex == 0) {   // zero or subnormal
          float v = ldexpf((float)man, -24);
          memcpy(&u, &v, 4);
          u |= sign;
        } else if (ex == 31) {
          u = sign | 0x7f800000u | (man << 13);
        } else {
          u = sign | ((ex + 112) << 23) | (man << 13);
        }
        memcpy(&dst[i], &u, 4);
        break;
      }
      default: return -1;
    }
  }
  return 0;
}

static int is_extra_name(const char *nm) {
  size_t n = strlen(nm);
  const char *suf = ".num_batches_tracked";
  size_t sl = strlen(suf);
  if (n > sl && !strcmp(nm + n - sl, suf)) return 1;
  return !strncmp(nm, "dptrain.", 8) || !strncmp(nm, "optimizer.", 10);
}

int weights_init_load(const char *path, nn_graph *g, const weights_init_opts *o, weights_init_report *rep, char *err,
                      int err_sz) {
  memset(rep, 0, sizeof *rep);
  dp_err de;
  st_file *f = st_open(path, &de);
  if (!f) {
    snprintf(err, err_sz, "%s", de.msg);
    return -1;
  }
  int n = st_count(f);
  uint8_t *used = dp_calloc((size_t)n + 1, 1, "init weights");
  float *pd = nn_params_host(g), *bd = nn_bufs_host(g);
  int rc = 0;
  int total = g->nparams + g->nbufs;
  for (int k = 0; k < total && !rc; k++) {
    int is_param = k < g->nparams;
    const nn_param *p = is_param ? &g->params[k] : NULL;
    const nn_buffer *b = is_param ? NULL : &g->bufs[k - g->nparams];
    const char *name = is_param ? p->name : b->name;
    int ndim = is_param ? p->ndim : 1;
    const int64_t *shape = is_param ? p->shape : &b->numel;
    int64_t numel = is_param ? p->numel : b->numel;
    float *dst = is_param ? pd + p->offset : bd + b->offset;
    if (prefix_excluded(name, o->exclude)) {
      rep->excluded++;
      continue;
    }
    const st_tensor *t = st_find(f, name);
    char alt[NN_NAME_MAX + 32];
    if (!t && vit_name_to_timm(name, alt, sizeof alt)) t = st_find(f, alt);
    if (!t) {
      if (!rep->missing++) snprintf(rep->first_missing, sizeof rep->first_missing, "%s", name);
      continue;
    }
    used[t - st_at(f, 0)] = 1;
    int same = t->numel == numel;
    // Same element count in another layout (timm's (1, T, D) pos_embed for
    // (T, D)) is the same tensor; a count difference is a real mismatch.
    (void)ndim;
    (void)shape;
    if (!same) {
      if (is_param && p->is_head) {
        rep->head_skipped++;
        continue;
      }
      if (!rep->mismatched++) {
        char a[96] = "", bb[96] = "";
        shape_str(t->shape, t->ndim, a, sizeof a);
        shape_str(shape, ndim, bb, sizeof bb);
        snprintf(rep->first_mismatch, sizeof rep->first_mismatch, "%s: file %s, model %s", name, a, bb);
      }
      continue;
    }
    if (read_as_f32(f, t, dst)) {
      snprintf(err, err_sz, "'%s': tensor '%s' is %s, not a float type", path, t->name, st_dtype_name(t->dtype));
      rc = -1;
      break;
    }
    if (!o->allow_nonfinite)
      for (int64_t i = 0; i < numel; i++)
        if (!isfinite(dst[i])) {
          snprintf(err, err_sz, "'%s': tensor '%s' holds a non-finite value at element %lld", path, t->name,
                   (long long)i);
          rc = -1;
          break;
        }
    rep->loaded++;
  }
  // st_at() index of a tensor: tensors are stored in offset order; map back.
  for (int i = 0; i < n && !rc; i++) {
    const st_tensor *t = st_at(f, i);
    if (used[i] || is_extra_name(t->name)) continue;
    if (!rep->unexpected++) snprintf(rep->first_unexpected, sizeof rep->first_unexpected, "%s", t->name);
  }
  free(used);
  st_close(f);
  if (!rc && o->strict && (rep->missing || rep->mismatched || rep->unexpected)) {
    snprintf(err, err_sz, "'%s' does not fit the model under --init-strict: %d missing (first: %s), %d "
             "shape-mismatched (first: %s), %d unexpected (first: %s)", path, rep->missing,
             rep->missing ? rep->first_missing : "-", rep->mismatched, rep->mismatched ? rep->first_mismatch : "-",
             rep->unexpected, rep->unexpected ? rep->first_unexpected : "-");
    rc = -1;
  }
  if (!rc && rep->loaded == 0) {
    snprintf(err, err_sz, "'%s' has none of the model's tensors (torchvision or timm names expected; first model "
             "tensor: %s)", path, g->nparams ? g->params[0].name : "-");
    rc = -1;
  }
  if (!rc) {
    nn_params_push(g);
    nn_bufs_push(g);
  }
  return rc;
}
