// --init-weights (train/weights.h weights_init_load) against torch: a
// torchvision ResNet-18 with random weights and BN statistics, converted by
// tools/torch2safetensors.py (make_init_fixture.py), loaded into dptrain's
// ResNet-18:
//   * into a 5-class model: the 1000-class head is skipped (shape differs),
//     everything else loads, and the penultimate features equal torch's;
//   * into a 1000-class model: the logits equal torch's;
//   * a 5-class file into a 5-class model: the logits equal torch's;
//   * --init-exclude drops a prefix; --init-strict refuses a file that lacks
//     tensors; a file with none of the model's tensors is refused.
// usage: test_init_weights FIXTURE_DIR
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/model_fixture.h"
#include "nn/op_linear.h"
#include "testutil.h"
#include "train/weights.h"

static char dir[1024];
#define TOL 1e-4

static const char *fx(const char *name) {
  static char p[4][1200];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

static nn_graph *build(int64_t classes) {
  model_cfg mc;
  model_cfg_default(&mc, "resnet18", 64, 3, classes);
  nn_graph *g = mf_build(&mc, 2);
  nn_graph_finalize(g);
  return g;
}

// Eval-mode forward on the fixture input; returns the fc op (for its input).
static const nn_linear_op *forward(nn_graph *g, nn_step *st) {
  int64_t n = 0;
  float *x = tu_h5_read_f32(fx("ref.h5"), "input", &n);
  TU_CHECK(x && n == nn_t(g, g->input)->numel, "fixture input");
  mf_set_input_nchw(g, x);
  free(x);
  nn_graph_set_training(g, 0);
  static int32_t labels[2] = {0, 0};
  nn_step_init(st, g);
  st->labels = labels;
  nn_forward(g, st);
  for (int32_t i = 0; i < g->nops; i++)
    if (!strcmp(g->ops[i]->name, "fc")) return (const nn_linear_op *)g->ops[i];
  TU_CHECK(0, "no fc op");
  return NULL;
}

static void compare(const char *what, const float *got, const char *ref_name, int64_t n) {
  int64_t m = 0;
  float *want = tu_h5_read_f32(fx("ref.h5"), ref_name, &m);
  TU_CHECK(want && m == n, "%s: reference %s has %lld elements, dptrain %lld", what, ref_name, (long long)m,
           (long long)n);
  if (want && m == n) tu_close(what, got, want, n, TOL);
  free(want);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_init_weights FIXTURE_DIR\n");
    return 2;
  }
  snprintf(dir, sizeof dir, "%s", argv[1]);
  char err[1024];
  weights_init_report rep;
  weights_init_opts o = {"", 0, 0};

  // 1. 1000-class torchvision weights into a 5-class model: head skipped.
  nn_graph *g = build(5);
  int rc = weights_init_load(fx("tv1000.safetensors"), g, &o, &rep, err, sizeof err);
  TU_CHECK(rc == 0, "load: %s", err);
  int want_loaded = g->nparams + g->nbufs - 2;   // all but fc.weight, fc.bias
  printf("1000-class file -> 5-class model: loaded %d, head skipped %d, missing %d, mismatched %d, unexpected %d\n",
         rep.loaded, rep.head_skipped, rep.missing, rep.mismatched, rep.unexpected);
  TU_CHECK(rep.loaded == want_loaded && rep.head_skipped == 2 && rep.missing == 0 && rep.mismatched == 0 &&
               rep.unexpected == 0,
           "counts: loaded %d (want %d), head skipped %d (want 2)", rep.loaded, want_loaded, rep.head_skipped);
  nn_step st;
  const nn_linear_op *fc = forward(g, &st);
  if (fc) compare("features (penultimate, 1000-class file into a 5-class model)", nn_t(g, fc->x)->data, "features",
                  nn_t(g, fc->x)->numel);
  // --init-strict accepts the automatic head skip (a new class count is the point).
  weights_init_opts so = {"", 1, 0};
  TU_CHECK(weights_init_load(fx("tv1000.safetensors"), g, &so, &rep, err, sizeof err) == 0,
           "strict with a skipped head: %s", err);
  // --init-exclude: layer4 keeps its fresh values.
  weights_init_opts eo = {"layer4.,bn1.", 0, 0};
  TU_CHECK(weights_init_load(fx("tv1000.safetensors"), g, &eo, &rep, err, sizeof err) == 0, "exclude: %s", err);
  int nex = 0;
  for (int32_t i = 0; i < g->nparams; i++)
    nex += !strncmp(g->params[i].name, "layer4.", 7) || !strncmp(g->params[i].name, "bn1.", 4);
  for (int32_t i = 0; i < g->nbufs; i++)
    nex += !strncmp(g->bufs[i].name, "layer4.", 7) || !strncmp(g->bufs[i].name, "bn1.", 4);
  TU_CHECK(rep.excluded == nex, "excluded %d, want %d", rep.excluded, nex);
  nn_graph_destroy(g);

  // 2. Same class count: the logits themselves.
  g = build(1000);
  TU_CHECK(weights_init_load(fx("tv1000.safetensors"), g, &so, &rep, err, sizeof err) == 0, "1000: %s", err);
  TU_CHECK(rep.loaded == g->nparams + g->nbufs && rep.head_skipped == 0, "1000-class: loaded %d of %d", rep.loaded,
           g->nparams + g->nbufs);
  forward(g, &st);
  compare("logits (1000 classes)", nn_t(g, g->logits)->data, "logits1000", nn_t(g, g->logits)->numel);
  nn_graph_destroy(g);
  g = build(5);
  TU_CHECK(weights_init_load(fx("tv5.safetensors"), g, &so, &rep, err, sizeof err) == 0, "5: %s", err);
  forward(g, &st);
  compare("logits (5-class file, 5 classes)", nn_t(g, g->logits)->data, "logits5", nn_t(g, g->logits)->numel);
  nn_graph_destroy(g);

  // 3. Strict refuses what does not fit; nothing of the model is an error.
  model_cfg cm;
  model_cfg_default(&cm, "cnn", 64, 3, 5);
  g = mf_build(&cm, 2);
  nn_graph_finalize(g);
  rc = weights_init_load(fx("tv1000.safetensors"), g, &so, &rep, err, sizeof err);
  TU_CHECK(rc != 0 && strstr(err, "tv1000.safetensors"), "a ResNet file into the CNN must fail, naming it: %s", err);
  printf("refused as expected: %.200s\n", err);
  nn_graph_destroy(g);
  return tu_finish("test_init_weights");
}
