#include "train/weights.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/json.h"
#include "core/jsonread.h"

// Header text is built in memory (JSON writer to an in-memory FILE).
static void kv_meta(dp_json *j, const char *k, const char *fmt, double v) {
  char b[64];
  snprintf(b, sizeof b, fmt, v);
  dp_json_kv_string(j, k, b);   // safetensors metadata values must be strings
}

static const char *bn_suffix = ".running_mean";

int weights_save(const char *path, nn_graph *g, const weights_meta *meta, char *err, int err_sz) {
  char *hdr = NULL;
  size_t hdr_len = 0;
  FILE *hf = open_memstream(&hdr, &hdr_len);
  if (!hf) {
    snprintf(err, err_sz, "open_memstream: %s", strerror(errno));
    return -1;
  }
  dp_json j;
  dp_json_init(&j, hf, 0);
  dp_json_begin_object(&j);
  dp_json_key(&j, "__metadata__");
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "format", "pt");
  dp_json_kv_string(&j, "dptrain.model", meta->model.name);
  kv_meta(&j, "dptrain.image_size", "%.0f", (double)meta->model.image_size);
  kv_meta(&j, "dptrain.channels", "%.0f", meta->model.channels);
  kv_meta(&j, "dptrain.classes", "%.0f", (double)meta->model.classes);
  kv_meta(&j, "dptrain.small_stem", "%.0f", meta->model.small_stem);
  kv_meta(&j, "dptrain.zero_init_residual", "%.0f", meta->model.zero_init_residual);
  kv_meta(&j, "dptrain.patch", "%.0f", meta->model.patch);
  kv_meta(&j, "dptrain.dropout", "%.9g", meta->model.dropout);
  kv_meta(&j, "dptrain.cnn_width", "%.0f", meta->model.cnn_width);
  kv_meta(&j, "dptrain.steps", "%.0f", (double)meta->steps);
  char b[256];
  snprintf(b, sizeof b, "%.9g,%.9g,%.9g", meta->mean[0], meta->mean[1], meta->mean[2]);
  dp_json_kv_string(&j, "dptrain.mean", b);
  snprintf(b, sizeof b, "%.9g,%.9g,%.9g", meta->std[0], meta->std[1], meta->std[2]);
  dp_json_kv_string(&j, "dptrain.std", b);
  // Class names joined by '\n' (names never contain newlines).
  char *names = NULL;
  size_t names_len = 0;
  FILE *nf = open_memstream(&names, &names_len);
  for (int c = 0; nf && c < meta->num_classes; c++)
    fprintf(nf, "%s%s", c ? "\n" : "", meta->class_names && meta->class_names[c] ? meta->class_names[c] : "");
  if (nf) fclose(nf);
  dp_json_kv_string(&j, "dptrain.class_names", names ? names : "");
  free(names);
  if (meta->augment_policy[0]) dp_json_kv_string(&j, "dptrain.augment_policy", meta->augment_policy);
  if (meta->logit_bias) {   // per-class offsets that `dptrain eval` adds to the logits
    char *lb = NULL;
    size_t lb_len = 0;
    FILE *lf = open_memstream(&lb, &lb_len);
    for (int c = 0; lf && c < meta->num_classes; c++) fprintf(lf, "%s%.9g", c ? "," : "", (double)meta->logit_bias[c]);
    if (lf) fclose(lf);
    dp_json_kv_string(&j, "dptrain.logit_bias", lb ? lb : "");
    free(lb);
  }
  dp_json_end_object(&j);
  int64_t off = 0;
  for (int32_t i = 0; i < g->nparams; i++) {
    const nn_param *p = &g->params[i];
    dp_json_key(&j, p->name);
    dp_json_begin_object(&j);
    dp_json_kv_string(&j, "dtype", "F32");
    dp_json_key(&j, "shape");
    dp_json_begin_array(&j);
    for (int d = 0; d < p->ndim; d++) dp_json_int(&j, p->shape[d]);
    dp_json_end_array(&j);
    int64_t range[2] = {off, off + p->numel * 4};
    dp_json_kv_int_array(&j, "data_offsets", range, 2);
    dp_json_end_object(&j);
    off += p->numel * 4;
  }
  for (int32_t i = 0; i < g->nbufs; i++) {
    const nn_buffer *bu = &g->bufs[i];
    dp_json_key(&j, bu->name);
    dp_json_begin_object(&j);
    dp_json_kv_string(&j, "dtype", "F32");
    dp_json_key(&j, "shape");
    dp_json_begin_array(&j);
    dp_json_int(&j, bu->numel);
    dp_json_end_array(&j);
    int64_t range[2] = {off, off + bu->numel * 4};
    dp_json_kv_int_array(&j, "data_offsets", range, 2);
    dp_json_end_object(&j);
    off += bu->numel * 4;
  }
  for (int32_t i = 0; i < g->nbufs; i++) {
    const char *nm = g->bufs[i].name;
    size_t n = strlen(nm), sl = strlen(bn_suffix);
    if (n <= sl || strcmp(nm + n - sl, bn_suffix)) continue;
    char key[NN_NAME_MAX + 32];
    snprintf(key, sizeof key, "%.*s.num_batches_tracked", (int)(n - sl), nm);
    dp_json_key(&j, key);
    dp_json_begin_object(&j);
    dp_json_kv_string(&j, "dtype", "I64");
    dp_json_key(&j, "shape");
    dp_json_begin_array(&j);
    dp_json_end_array(&j);
    int64_t range[2] = {off, off + 8};
    dp_json_kv_int_array(&j, "data_offsets", range, 2);
    dp_json_end_object(&j);
    off += 8;
  }
  dp_json_end_object(&j);
  fclose(hf);
  // Pad the header with spaces so the data starts 8-byte aligned.
  size_t padded = (hdr_len + 7) / 8 * 8;
  FILE *f = fopen(path, "wb");
  if (!f) {
    snprintf(err, err_sz, "cannot create '%s': %s", path, strerror(errno));
    free(hdr);
    return -1;
  }
  uint64_t n8 = padded;
  uint8_t le[8];
  for (int k = 0; k < 8; k++) le[k] = (uint8_t)(n8 >> (8 * k));
  int ok = fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, hdr_len, f) == hdr_len;
  for (size_t k = hdr_len; ok && k < padded; k++) ok = fputc(' ', f) != EOF;
  free(hdr);
  // x86-64 is little-endian: floats go out as they are in memory. A CUDA
  // graph's buffers are downloaded once each (host views).
  const float *pd = ok ? nn_params_host(g) : NULL, *bd = ok ? nn_bufs_host(g) : NULL;
  for (int32_t i = 0; ok && i < g->nparams; i++)
    ok = fwrite(pd + g->params[i].offset, 4, (size_t)g->params[i].numel, f) ==
         (size_t)g->params[i].numel;
  for (int32_t i = 0; ok && i < g->nbufs; i++)
    ok = fwrite(bd + g->bufs[i].offset, 4, (size_t)g->bufs[i].numel, f) == (size_t)g->bufs[i].numel;
  for (int32_t i = 0; ok && i < g->nbufs; i++) {
    const char *nm = g->bufs[i].name;
    size_t n = strlen(nm), sl = strlen(bn_suffix);
    if (n <= sl || strcmp(nm + n - sl, bn_suffix)) continue;
    int64_t nbt = meta->steps;
    ok = fwrite(&nbt, 8, 1, f) == 1;
  }
  if (fclose(f) != 0) ok = 0;
  if (!ok) {
    snprintf(err, err_sz, "writing '%s' failed: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

// Reads the header of a safetensors file: returns the parsed JSON and the
// file offset where data starts.
static jv *read_header(const char *path, int64_t *data_start, char *err, int err_sz) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, err_sz, "cannot open weights '%s': %s", path, strerror(errno));
    return NULL;
  }
  uint8_t le[8];
  if (fread(le, 1, 8, f) != 8) {
    snprintf(err, err_sz, "'%s' is not a safetensors file (too short)", path);
    fclose(f);
    return NULL;
  }
  uint64_t n = 0;
  for (int k = 7; k >= 0; k--) n = (n << 8) | le[k];
  if (n == 0 || n > (1u << 28)) {
    snprintf(err, err_sz, "'%s' is not a safetensors file (header length %llu)", path, (unsigned long long)n);
    fclose(f);
    return NULL;
  }
  char *h = dp_malloc(n, "safetensors header");
  size_t got = fread(h, 1, n, f);
  fclose(f);
  if (got != n) {
    snprintf(err, err_sz, "'%s': truncated header", path);
    free(h);
    return NULL;
  }
  jv *v = jv_parse(h, n, err, err_sz);
  free(h);
  *data_start = 8 + (int64_t)n;
  return v;
}

// Metadata keys contain dots, so look them up directly (jv_str splits paths).
static const char *md_str(const jv *md, const char *k, const char *dflt) {
  const jv *v = jv_get(md, k);
  return v && v->type == JV_STR ? v->str : dflt;
}

static int meta_int(const jv *md, const char *k, int64_t *out) {
  const char *s = md_str(md, k, NULL);
  if (!s) return -1;
  *out = strtoll(s, NULL, 10);
  return 0;
}

int weights_read_meta(const char *path, weights_meta *meta, char *err, int err_sz) {
  memset(meta, 0, sizeof *meta);
  int64_t ds;
  jv *v = read_header(path, &ds, err, err_sz);
  if (!v) return -1;
  const jv *md = jv_get(v, "__metadata__");
  const char *model = md_str(md, "dptrain.model", NULL);
  int64_t isz = 0, ch = 0, cl = 0, ss = 0, zi = 0, pa = 0, cw = 0, st = 0;
  if (!model || meta_int(md, "dptrain.image_size", &isz) || meta_int(md, "dptrain.channels", &ch) ||
      meta_int(md, "dptrain.classes", &cl)) {
    snprintf(err, err_sz, "'%s' has no dptrain model metadata (dptrain.model, image_size, channels, classes)", path);
    jv_free(v);
    return -1;
  }
  meta_int(md, "dptrain.small_stem", &ss);
  meta_int(md, "dptrain.zero_init_residual", &zi);
  meta_int(md, "dptrain.patch", &pa);
  meta_int(md, "dptrain.cnn_width", &cw);
  meta_int(md, "dptrain.steps", &st);
  if (!model_cfg_default(&meta->model, model, isz, (int)ch, cl)) {
    snprintf(err, err_sz, "'%s': unknown model '%s'", path, model);
    jv_free(v);
    return -1;
  }
  meta->model.small_stem = (int)ss;
  meta->model.zero_init_residual = (int)zi;
  if (pa) meta->model.patch = (int)pa;
  if (cw) meta->model.cnn_width = (int)cw;
  meta->model.dropout = (float)atof(md_str(md, "dptrain.dropout", "0"));
  meta->steps = st;
  meta->num_classes = (int)cl;
  const float dm[3] = {0.485f, 0.456f, 0.406f}, dsd[3] = {0.229f, 0.224f, 0.225f};
  memcpy(meta->mean, dm, sizeof dm);
  memcpy(meta->std, dsd, sizeof dsd);
  const char *ms = md_str(md, "dptrain.mean", NULL), *ss2 = md_str(md, "dptrain.std", NULL);
  if (ms) sscanf(ms, "%f,%f,%f", &meta->mean[0], &meta->mean[1], &meta->mean[2]);
  if (ss2) sscanf(ss2, "%f,%f,%f", &meta->std[0], &meta->std[1], &meta->std[2]);
  const char *names = md_str(md, "dptrain.class_names", NULL);
  if (names && cl > 0) {
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
  meta->logit_bias = NULL;
  meta->augment_policy[0] = 0;
  const char *pol = md_str(md, "dptrain.augment_policy", NULL);
  if (pol) snprintf(meta->augment_policy, sizeof meta->augment_policy, "%s", pol);
  const char *lb = md_str(md, "dptrain.logit_bias", NULL);
  if (lb && lb[0] && cl > 0) {
    meta->logit_bias = dp_calloc((size_t)cl, sizeof(float), "logit bias");
    const char *p = lb;
    for (int c = 0; c < cl; c++) {
      char *end;
      meta->logit_bias[c] = strtof(p, &end);
      if (end == p || (c < cl - 1 && *end != ',')) {
        snprintf(err, err_sz, "'%s': dptrain.logit_bias '%s' is not %lld comma-separated numbers", path, lb, (long long)cl);
        free(meta->logit_bias);
        meta->logit_bias = NULL;
        weights_meta_free(meta);
        jv_free(v);
        return -1;
      }
      p = end + (*end == ',');
    }
  }
  jv_free(v);
  return 0;
}

void weights_meta_free(weights_meta *meta) {
  for (int c = 0; meta->class_names && c < meta->num_classes; c++) free(meta->class_names[c]);
  free(meta->class_names);
  meta->class_names = NULL;
  free(meta->logit_bias);
  meta->logit_bias = NULL;
}

static int load_one(FILE *f, int64_t ds, const jv *hdr, const char *name, float *dst, int64_t numel,
                    const char *path, char *err, int err_sz) {
  const jv *e = jv_get(hdr, name);
  if (!e) {
    snprintf(err, err_sz, "'%s' has no tensor '%s' (different model or config?)", path, name);
    return -1;
  }
  const char *dt = jv_str(e, "dtype", "");
  const jv *offs = jv_get(e, "data_offsets");
  if (strcmp(dt, "F32") || !offs || offs->type != JV_ARR || offs->n != 2) {
    snprintf(err, err_sz, "'%s': tensor '%s' is not F32 with data_offsets", path, name);
    return -1;
  }
  int64_t lo = (int64_t)offs->items[0].num, hi = (int64_t)offs->items[1].num;
  if (hi - lo != numel * 4) {
    snprintf(err, err_sz, "'%s': tensor '%s' has %lld elements, the model expects %lld", path, name,
             (long long)((hi - lo) / 4), (long long)numel);
    return -1;
  }
  if (fseeko(f, ds + lo, SEEK_SET) != 0 || fread(dst, 4, (size_t)numel, f) != (size_t)numel) {
    snprintf(err, err_sz, "'%s': reading tensor '%s' failed (truncated file?)", path, name);
    return -1;
  }
  return 0;
}

int weights_load(const char *path, nn_graph *g, char *err, int err_sz) {
  int64_t ds;
  jv *v = read_header(path, &ds, err, err_sz);
  if (!v) return -1;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, err_sz, "cannot open weights '%s': %s", path, strerror(errno));
    jv_free(v);
    return -1;
  }
  int rc = 0;
  // Read into the host views (the buffers themselves on the CPU), then upload.
  float *pd = nn_params_host(g), *bd = nn_bufs_host(g);
  for (int32_t i = 0; !rc && i < g->nparams; i++)
    rc = load_one(f, ds, v, g->params[i].name, pd + g->params[i].offset, g->params[i].numel,
                  path, err, err_sz);
  for (int32_t i = 0; !rc && i < g->nbufs; i++)
    rc = load_one(f, ds, v, g->bufs[i].name, bd + g->bufs[i].offset, g->bufs[i].numel, path,
                  err, err_sz);
  fclose(f);
  jv_free(v);
  if (!rc) {
    nn_params_push(g);
    nn_bufs_push(g);
  }
  return rc;
}
