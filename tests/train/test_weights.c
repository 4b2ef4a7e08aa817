// weights_save / weights_load on the validating safetensors layer: a saved
// model loads back bitwise; a file whose tensor has the right element count
// but the wrong shape, a NaN/Inf value, an extra or a missing tensor, a wrong
// dtype, or malformed metadata is refused with a message naming the tensor.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "core/safetensors.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "testutil.h"
#include "train/weights.h"

static char g_dir[512];

static nn_graph *tiny_cnn(model_cfg *mc) {
  model_cfg_default(mc, "cnn", 16, 3, 3);
  mc->cnn_width = 4;
  nn_graph *g = nn_graph_create(cpu_backend(), 2, 7);
  model_build(g, mc);
  nn_xent_cfg xc = {0.0f, NULL, 3};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_finalize(g);
  return g;
}

static void meta_for(weights_meta *wm, const model_cfg *mc, char **names) {
  memset(wm, 0, sizeof *wm);
  wm->model = *mc;
  wm->num_classes = 3;
  wm->class_names = names;
  wm->steps = 5;
  for (int c = 0; c < 3; c++) wm->mean[c] = 0.5f, wm->std[c] = 0.25f;
}

// Rewrites `src` into `dst` with one tensor changed by `edit` (and optionally
// one added or dropped), keeping the metadata.
typedef void (*edit_fn)(st_entry *e, int *n, float *scratch);
static void rewrite(const char *src, const char *dst, edit_fn edit) {
  dp_err err;
  st_file *f = st_open(src, &err);
  TU_CHECK(f != NULL, "open %s: %s", src, f ? "" : err.msg);
  if (!f) return;
  int n = st_count(f);
  st_entry *e = calloc((size_t)n + 2, sizeof *e);
  void **bufs = calloc((size_t)n + 2, sizeof *bufs);
  for (int i = 0; i < n; i++) {
    const st_tensor *t = st_at(f, i);
    bufs[i] = malloc((size_t)(t->end - t->begin) + 1);
    st_copy(f, t, bufs[i]);
    e[i].name = t->name;
    e[i].dtype = t->dtype;
    e[i].ndim = t->ndim;
    memcpy(e[i].shape, t->shape, sizeof e[i].shape);
    e[i].data = bufs[i];
  }
  const char **meta = calloc((size_t)st_meta_count(f) * 2 + 2, sizeof *meta);
  for (int m = 0; m < st_meta_count(f); m++) meta[2 * m] = st_meta_key(f, m), meta[2 * m + 1] = st_meta_value(f, m);
  float scratch[64] = {0};
  edit(e, &n, scratch);
  TU_CHECK(st_write(dst, e, n, meta, st_meta_count(f), &err) == 0, "rewrite: %s", err.msg);
  for (int i = 0; i < st_count(f); i++) free(bufs[i]);
  free(bufs);
  free(e);
  free(meta);
  st_close(f);
}

// The first 2-D+ parameter: "features.0.weight"-like conv weight.
static int first_conv(const st_entry *e, int n) {
  for (int i = 0; i < n; i++)
    if (e[i].ndim == 4) return i;
  return -1;
}
static void edit_transpose(st_entry *e, int *n, float *s) {
  (void)s;
  int i = first_conv(e, *n);   // (O, I, kh, kw) -> (I, O, kh, kw): same element count
  int64_t t = e[i].shape[0];
  e[i].shape[0] = e[i].shape[1];
  e[i].shape[1] = t;
}
static void edit_nan(st_entry *e, int *n, float *s) {
  (void)s;
  int i = first_conv(e, *n);
  ((float *)e[i].data)[3] = NAN;
}
static void edit_inf(st_entry *e, int *n, float *s) {
  (void)s;
  int i = first_conv(e, *n);
  ((float *)e[i].data)[0] = -INFINITY;
}
static void edit_extra(st_entry *e, int *n, float *s) {
  e[*n] = (st_entry){"extra.weight", ST_F32, 1, {4}, s};
  (*n)++;
}
static void edit_drop(st_entry *e, int *n, float *s) {
  (void)s;
  int i = first_conv(e, *n);
  e[i] = e[*n - 1];
  (*n)--;
}
static void edit_dtype(st_entry *e, int *n, float *s) {
  (void)s;
  int i = first_conv(e, *n);   // same bytes read as I32
  e[i].dtype = ST_I32;
}

static void expect_refused(nn_graph *g, const char *name, edit_fn edit, const char *needle) {
  char src[700], dst[700], err[512];
  snprintf(src, sizeof src, "%s/model.safetensors", g_dir);
  snprintf(dst, sizeof dst, "%s/%s.safetensors", g_dir, name);
  rewrite(src, dst, edit);
  int rc = weights_load(dst, g, 0, err, sizeof err);
  TU_CHECK(rc != 0, "%s: loaded (should be refused)", name);
  if (rc) TU_CHECK(strstr(err, needle) != NULL, "%s: '%s' lacks '%s'", name, err, needle);
  if (rc) printf("refused %-10s %s\n", name, err);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/dp_test_weights_%d", (int)getpid());
  char cmd[600];
  snprintf(cmd, sizeof cmd, "mkdir -p %s", g_dir);
  if (system(cmd) != 0) tu_skip("cannot make a temp dir");
  model_cfg mc;
  nn_graph *g = tiny_cnn(&mc), *h = tiny_cnn(&mc);
  char *names[3] = {"ok", "blurry", "watermark"};
  weights_meta wm;
  meta_for(&wm, &mc, names);
  char path[700], err[512];
  snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
  // Distinct values so a mix-up shows: params i * 1e-3, buffers 1 + i * 1e-3,
  // on every tensor's elements (the alignment padding between them stays zero,
  // as the graph keeps it; a file holds tensors, not padding).
  for (int32_t t = 0; t < g->nparams; t++)
    for (int64_t k = 0, i = g->params[t].offset; k < g->params[t].numel; k++, i++) g->params_data[i] = (float)i * 1e-3f;
  for (int32_t t = 0; t < g->nbufs; t++)
    for (int64_t k = 0, i = g->bufs[t].offset; k < g->bufs[t].numel; k++, i++) g->buf_data[i] = 1.0f + (float)i * 1e-3f;
  TU_CHECK(weights_save(path, g, &wm, err, sizeof err) == 0, "save: %s", err);
  TU_CHECK(weights_load(path, h, 0, err, sizeof err) == 0, "load: %s", err);
  TU_CHECK(!memcmp(g->params_data, h->params_data, (size_t)g->nparam_elems * 4), "params round-trip");
  TU_CHECK(!memcmp(g->buf_data, h->buf_data, (size_t)g->nbuf_elems * 4), "buffers round-trip");
  weights_meta rm;
  TU_CHECK(weights_read_meta(path, &rm, err, sizeof err) == 0, "read meta: %s", err);
  TU_CHECK(rm.num_classes == 3 && rm.class_names && !strcmp(rm.class_names[2], "watermark") &&
               rm.model.cnn_width == 4 && rm.steps == 5 && rm.std[1] == 0.25f,
           "metadata round-trip");
  weights_meta_free(&rm);

  expect_refused(h, "transposed", edit_transpose, "has shape");
  expect_refused(h, "nan", edit_nan, "NaN");
  expect_refused(h, "inf", edit_inf, "Inf");
  expect_refused(h, "extra", edit_extra, "which the model does not have");
  expect_refused(h, "missing", edit_drop, "has no tensor");
  expect_refused(h, "dtype", edit_dtype, "is I32");
  // The flag lets a NaN file load (e.g. to inspect a diverged run).
  char nanp[700];
  snprintf(nanp, sizeof nanp, "%s/nan.safetensors", g_dir);
  TU_CHECK(weights_load(nanp, h, WEIGHTS_ALLOW_NONFINITE, err, sizeof err) == 0, "allow flag: %s", err);

  // Metadata must be strict integers.
  float one = 1;
  const char *bad_meta[8] = {"dptrain.model", "cnn", "dptrain.image_size", "16x", "dptrain.channels", "3",
                             "dptrain.classes", "3"};
  st_entry e = {"w", ST_F32, 1, {1}, &one};
  snprintf(path, sizeof path, "%s/badmeta.safetensors", g_dir);
  dp_err de;
  TU_CHECK(st_write(path, &e, 1, bad_meta, 4, &de) == 0, "write: %s", de.msg);
  TU_CHECK(weights_read_meta(path, &rm, err, sizeof err) != 0 && strstr(err, "image_size"),
           "metadata '16x' accepted: %s", err);
  bad_meta[3] = "16";
  bad_meta[5] = "2";
  TU_CHECK(st_write(path, &e, 1, bad_meta, 4, &de) == 0, "write: %s", de.msg);
  TU_CHECK(weights_read_meta(path, &rm, err, sizeof err) != 0 && strstr(err, "channels"),
           "channels 2 accepted: %s", err);
  nn_graph_destroy(g);
  nn_graph_destroy(h);
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  return tu_finish("test_weights");
}
