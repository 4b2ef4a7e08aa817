// dptrain's side of the export tests (tests/export/check_export.py): makes
// random weights files and runs dptrain's CPU graph on given inputs, so the
// Python side can compare ONNX Runtime and the torch twin against dptrain.
//
//   export_helper init MODELOPTS --seed S --out W.safetensors
//       builds the model, initialises it as training does, then perturbs every
//       constant-initialised parameter (BN/LN 1/0, zero heads, class token)
//       and randomises the BN running statistics, so no tensor can be swapped
//       or ignored unnoticed; writes it with weights_save (class names cls_k).
//   export_helper forward --weights W --input X.h5 --output Y.npy [MODELOPTS]
//       X.h5:/input is float32 (N, C, S, S) (NCHW, as ONNX takes it); writes
//       the eval-mode logits (N, K) as .npy. The model comes from W's metadata,
//       or from MODELOPTS (for files without it, e.g. tools/torch2safetensors.py).
//   export_helper loader --weights W --data GLOB --inputs X.npy --output Y.npy
//       runs dptrain's eval input pipeline (resize + center crop + normalise,
//       as W's metadata says) on the shards' first (up to 64) records and
//       writes the preprocessed batch (N, C, S, S) and its logits (N, K).
//   export_helper names MODELOPTS
//       prints "<torchvision name> <timm name>" for each ViT parameter.
// MODELOPTS: --model M --image-size S --channels C --classes K [--small-stem]
//            [--zero-init-residual] [--patch P] [--cnn-width W]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/afile.h"
#include "input/loader.h"
#include "input/shard.h"
#include "nn/graph.h"
#include "nn/models/models.h"
#include "train/weights.h"
#include "../models/model_fixture.h"
#include "testutil.h"

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "export_helper: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  exit(2);
}

typedef struct {
  const char *model, *weights, *input, *output, *out, *data, *inputs;
  int64_t image_size, classes;
  int channels, small_stem, zero_init, patch, cnn_width;
  uint64_t seed;
} opts;

static void parse(int argc, char **argv, opts *o) {
  memset(o, 0, sizeof *o);
  o->channels = 3;
  o->seed = 1;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--small-stem")) { o->small_stem = 1; continue; }
    if (!strcmp(a, "--zero-init-residual")) { o->zero_init = 1; continue; }
    if (i + 1 >= argc) die("option needs a value", a);
    const char *v = argv[++i];
    if (!strcmp(a, "--model")) o->model = v;
    else if (!strcmp(a, "--weights")) o->weights = v;
    else if (!strcmp(a, "--input")) o->input = v;
    else if (!strcmp(a, "--inputs")) o->inputs = v;
    else if (!strcmp(a, "--output")) o->output = v;
    else if (!strcmp(a, "--out")) o->out = v;
    else if (!strcmp(a, "--data")) o->data = v;
    else if (!strcmp(a, "--image-size")) o->image_size = atoll(v);
    else if (!strcmp(a, "--classes")) o->classes = atoll(v);
    else if (!strcmp(a, "--channels")) o->channels = atoi(v);
    else if (!strcmp(a, "--patch")) o->patch = atoi(v);
    else if (!strcmp(a, "--cnn-width")) o->cnn_width = atoi(v);
    else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
    else die("unknown option", a);
  }
}

// The model config from the command line (o->model set) or W's metadata.
static void model_from(const opts *o, weights_meta *wm) {
  char err[512];
  if (!o->model) {
    if (!o->weights) die("need --model or --weights", NULL);
    if (weights_read_meta(o->weights, wm, err, sizeof err)) die(err, NULL);
    return;
  }
  memset(wm, 0, sizeof *wm);
  if (!model_cfg_default(&wm->model, o->model, o->image_size, o->channels, o->classes))
    die("unknown model", o->model);
  wm->model.small_stem = o->small_stem;
  wm->model.zero_init_residual = o->zero_init;
  if (o->patch) wm->model.patch = o->patch;
  if (o->cnn_width) wm->model.cnn_width = o->cnn_width;
  wm->num_classes = (int)o->classes;
  loader_cfg d;
  loader_cfg_defaults(&d);
  memcpy(wm->mean, d.mean, sizeof wm->mean);
  memcpy(wm->std, d.std, sizeof wm->std);
}

static nn_graph *graph_for(const model_cfg *mc, int64_t batch) {
  nn_graph *g = nn_graph_create(cpu_backend(), batch, 1);
  model_build(g, mc);
  nn_graph_finalize(g);
  return g;
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

static int all_equal(const float *x, int64_t n) {
  for (int64_t i = 1; i < n; i++)
    if (x[i] != x[0]) return 0;
  return 1;
}

static int cmd_init(const opts *o) {
  if (!o->out || !o->model) die("init needs --model and --out", NULL);
  weights_meta wm;
  model_from(o, &wm);
  nn_graph *g = graph_for(&wm.model, 1);
  nn_params_init(g, o->seed);
  float *p = nn_params_host(g), *b = nn_bufs_host(g);
  uint64_t s = o->seed * 1000;
  for (int32_t i = 0; i < g->nparams; i++) {
    float *x = p + g->params[i].offset;
    int64_t n = g->params[i].numel;
    if (!all_equal(x, n)) continue;
    float *u = malloc((size_t)n * sizeof *u);
    tu_fill_uniform(u, n, s++);
    for (int64_t k = 0; k < n; k++) x[k] += 0.2f * u[k];   // 1 -> [0.8, 1.2], 0 -> [-0.2, 0.2]
    free(u);
  }
  for (int32_t i = 0; i < g->nbufs; i++) {
    float *x = b + g->bufs[i].offset;
    int64_t n = g->bufs[i].numel;
    tu_fill_uniform(x, n, s++);
    int var = has_suffix(g->bufs[i].name, "running_var");
    for (int64_t k = 0; k < n; k++) x[k] = var ? 1.0f + 0.5f * x[k] : 0.1f * x[k];
  }
  nn_params_push(g);
  nn_bufs_push(g);
  char **names = calloc((size_t)wm.num_classes, sizeof *names);
  for (int k = 0; k < wm.num_classes; k++) {
    names[k] = malloc(32);
    snprintf(names[k], 32, "cls_%d", k);
  }
  wm.class_names = names;
  wm.steps = 1;
  char err[512];
  if (weights_save(o->out, g, &wm, err, sizeof err)) die(err, NULL);
  printf("wrote %s: %s, %lld parameters\n", o->out, wm.model.name, (long long)g->nparam_elems);
  weights_meta_free(&wm);
  nn_graph_destroy(g);
  return 0;
}

// x (N, K) float32 as a version-1.0 .npy file.
static void write_npy(const char *path, const float *x, int ndim, const int64_t *dim) {
  char shape[128] = "", hdr[256];
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    size_t l = strlen(shape);
    snprintf(shape + l, sizeof shape - l, "%lld,%s", (long long)dim[d], d + 1 < ndim ? " " : "");
    n *= dim[d];
  }
  int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
  while ((10 + hl + 1) % 64) hdr[hl++] = ' ';
  hdr[hl++] = '\n';
  size_t total = 10 + (size_t)hl + (size_t)n * 4;
  unsigned char *buf = malloc(total);
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)(hl & 0xff);
  buf[9] = (unsigned char)(hl >> 8);
  memcpy(buf + 10, hdr, (size_t)hl);
  memcpy(buf + 10 + hl, x, (size_t)n * 4);
  dp_err e;
  dp_err_clear(&e);
  if (dp_write_file_atomic(path, buf, total, &e)) die(e.msg, NULL);
  free(buf);
}

static void write_logits(nn_graph *g, const char *path, int64_t n) {
  nn_tensor *t = nn_t(g, g->logits);   // (N, K)
  int64_t dim[2] = {n, t->dim[1]};
  write_npy(path, t->data, 2, dim);
}

static int cmd_forward(const opts *o) {
  if (!o->weights || !o->input || !o->output) die("forward needs --weights, --input and --output", NULL);
  weights_meta wm;
  model_from(o, &wm);
  int64_t n = 0;
  float *x = tu_h5_read_f32(o->input, "input", &n);
  if (!x) die("cannot read /input of", o->input);
  int64_t per = wm.model.channels * wm.model.image_size * wm.model.image_size;
  if (n == 0 || n % per) die("/input is not (N, C, S, S) for the model", o->input);
  nn_graph *g = graph_for(&wm.model, n / per);
  char err[512];
  if (weights_load(o->weights, g, 0, err, sizeof err)) die(err, NULL);
  nn_graph_set_training(g, 0);
  mf_set_input_nchw(g, x);
  nn_step st;
  nn_step_init(&st, g);
  nn_forward(g, &st);
  write_logits(g, o->output, n / per);
  printf("forward: %s on %lld inputs -> %s\n", wm.model.name, (long long)(n / per), o->output);
  free(x);
  weights_meta_free(&wm);
  nn_graph_destroy(g);
  return 0;
}

static int cmd_loader(const opts *o) {
  if (!o->weights || !o->data || !o->inputs || !o->output)
    die("loader needs --weights, --data, --inputs and --output", NULL);
  weights_meta wm;
  model_from(o, &wm);
  char **paths = NULL;
  int np = shard_glob(o->data, &paths);
  if (np <= 0) die("no shards match", o->data);
  loader_cfg lc;
  loader_cfg_defaults(&lc);
  lc.shards = paths;
  lc.nshards = np;
  lc.batch = 64;
  lc.drop_last = 0;
  lc.shuffle = 0;
  lc.train = 0;
  lc.threads = 1;
  lc.out_size = (int)wm.model.image_size;
  lc.out_channels = wm.model.channels;
  memcpy(lc.mean, wm.mean, sizeof lc.mean);
  memcpy(lc.std, wm.std, sizeof lc.std);
  lc.eval_resize_ratio = wm.eval_resize_ratio;
  lc.num_classes = wm.num_classes;
  lc.clamp_batch = 1;   // 64 > the 16 test records
  dp_err e;
  dp_err_clear(&e);
  loader *l = loader_create(&lc, &e);
  if (!l) die(e.msg, NULL);
  loader_start_epoch(l, 0);
  const loader_batch *lb = loader_next_batch(l);
  if (!lb || lb->n <= 0) die("the shards gave no batch", o->data);
  nn_graph *g = graph_for(&wm.model, loader_batch_size(l));
  char err[512];
  if (weights_load(o->weights, g, 0, err, sizeof err)) die(err, NULL);
  nn_graph_set_training(g, 0);
  nn_tensor *t = nn_t(g, g->input);   // (B, S, S, C), B = the loader's (clamped) batch
  memcpy(t->data, lb->images, (size_t)t->numel * sizeof(float));
  nn_step st;
  nn_step_init(&st, g);
  nn_forward(g, &st);
  int64_t S = wm.model.image_size, C = wm.model.channels, N = lb->n;
  float *nchw = malloc((size_t)(N * C * S * S) * sizeof *nchw);
  for (int64_t i = 0; i < N; i++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t p = 0; p < S * S; p++) nchw[(i * C + c) * S * S + p] = lb->images[(i * S * S + p) * C + c];
  int64_t dim[4] = {N, C, S, S};
  write_npy(o->inputs, nchw, 4, dim);
  write_logits(g, o->output, N);
  printf("loader: %lld records of %s -> %s, %s\n", (long long)N, o->data, o->inputs, o->output);
  free(nchw);
  nn_graph_destroy(g);
  loader_destroy(l);
  shard_paths_free(paths, np);
  weights_meta_free(&wm);
  return 0;
}

static int cmd_names(const opts *o) {
  weights_meta wm;
  model_from(o, &wm);
  nn_graph *g = nn_graph_create(cpu_backend(), 1, 1);
  model_build(g, &wm.model);
  for (int32_t i = 0; i < g->nparams; i++) {
    char timm[NN_NAME_MAX + 32];
    if (!vit_name_to_timm(g->params[i].name, timm, sizeof timm)) die("no timm name for", g->params[i].name);
    printf("%s %s\n", g->params[i].name, timm);
  }
  nn_graph_destroy(g);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: export_helper init|forward|loader|names [options] (see the source)", NULL);
  opts o;
  parse(argc, argv, &o);
  if (!strcmp(argv[1], "init")) return cmd_init(&o);
  if (!strcmp(argv[1], "forward")) return cmd_forward(&o);
  if (!strcmp(argv[1], "loader")) return cmd_loader(&o);
  if (!strcmp(argv[1], "names")) return cmd_names(&o);
  die("unknown mode", argv[1]);
  return 2;
}
