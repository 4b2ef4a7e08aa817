// Model structure against torchvision: ResNet-50 and ResNet-18 (1000 classes,
// 224 px) have exactly torchvision's parameter and buffer names and shapes
// (fixture models_<arch>_names.txt written by make_model_fixtures.py from
// torchvision 0.14), ResNet-50 has 25,557,032 parameters. Also: the CNN's
// documented count, stages and head flags, model_num_stages, NHWC input,
// small stem, zero_init_residual and the init distributions.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"
#include "nn/ops.h"
#include "testutil.h"

static int64_t count_params(const nn_graph *g) {
  int64_t n = 0;
  for (int32_t i = 0; i < g->nparams; i++) n += g->params[i].numel;
  return n;
}

static nn_graph *build(const char *name, int64_t size, int ch, int64_t classes, int64_t batch,
                       int small_stem, int zero_init) {
  model_cfg cfg;
  TU_CHECK(model_cfg_default(&cfg, name, size, ch, classes), "unknown model %s", name);
  cfg.small_stem = small_stem;
  cfg.zero_init_residual = zero_init;
  return mf_build(&cfg, batch);
}

// Every line "param|buffer NAME d0,d1,..." must exist in g with that shape,
// and g must hold nothing else.
static void compare_names(const char *arch, const nn_graph *g) {
  char path[512];
  snprintf(path, sizeof path, "%s/models_%s_names.txt", tu_fixture_dir(), arch);
  FILE *f = fopen(path, "r");
  if (!f) {
    TU_CHECK(0, "cannot open %s (did make_model_fixtures run?)", path);
    return;
  }
  char kind[16], name[NN_NAME_MAX], shape[128];
  int np = 0, nb = 0, bad = 0;
  int64_t total = 0;
  while (fscanf(f, "%15s %95s %127s", kind, name, shape) == 3) {
    int64_t dims[8], nd = 0, numel = 1;
    for (char *s = shape; *s && nd < 8;) {
      dims[nd] = strtoll(s, &s, 10);
      numel *= dims[nd++];
      if (*s == ',') s++;
    }
    if (!strcmp(kind, "param")) {
      np++;
      total += numel;
      int32_t i = nn_param_find(g, name);
      if (i < 0) {
        TU_CHECK(0, "%s: torchvision parameter %s missing", arch, name);
        bad++;
        continue;
      }
      const nn_param *p = &g->params[i];
      int same = p->ndim == nd;
      for (int d = 0; same && d < nd; d++) same = p->shape[d] == dims[d];
      TU_CHECK(same, "%s: %s shape differs from torchvision's %s", arch, name, shape);
      bad += !same;
    } else {
      nb++;
      int32_t i = nn_buffer_find(g, name);
      TU_CHECK(i >= 0 && g->bufs[i].numel == numel, "%s: buffer %s missing or wrong size", arch, name);
      bad += !(i >= 0 && g->bufs[i].numel == numel);
    }
  }
  fclose(f);
  TU_CHECK(np == g->nparams, "%s: torchvision has %d parameter tensors, we have %d", arch, np, g->nparams);
  TU_CHECK(nb == g->nbufs, "%s: torchvision has %d buffers, we have %d", arch, nb, g->nbufs);
  TU_CHECK(total == count_params(g), "%s: %lld vs %lld parameters", arch, (long long)total,
           (long long)count_params(g));
  printf("%-4s %s: %d parameter tensors (%lld values), %d buffers equal torchvision's\n",
         bad ? "FAIL" : "ok", arch, np, (long long)total, nb);
}

static void check_stages(const char *name, const nn_graph *g, const model_cfg *cfg) {
  int maxs = -1, heads = 0, bad = 0;
  for (int32_t i = 0; i < g->nparams; i++) {
    const nn_param *p = &g->params[i];
    if (p->stage > maxs) maxs = p->stage;
    heads += p->is_head;
    if (p->is_head && p->stage != model_num_stages(cfg) - 1) bad++;
  }
  TU_CHECK(maxs + 1 == model_num_stages(cfg), "%s: max stage %d, model_num_stages %d", name, maxs,
           model_num_stages(cfg));
  TU_CHECK(heads == 2 && !bad, "%s: %d head tensors (want 2: weight, bias), %d off the top stage",
           name, heads, bad);
}

static double stddev(const float *x, int64_t n) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) {
    s += x[i];
    s2 += (double)x[i] * x[i];
  }
  return sqrt(s2 / n - (s / n) * (s / n));
}

int main(void) {
  // torchvision names, shapes and counts (no finalize: nothing big allocated).
  nn_graph *g = build("resnet50", 224, 3, 1000, 2, 0, 0);
  TU_CHECK(count_params(g) == 25557032, "resnet50 has %lld parameters, torchvision 25557032",
           (long long)count_params(g));
  compare_names("resnet50", g);
  int32_t i = nn_param_find(g, "layer2.0.conv2.weight");
  TU_CHECK(i >= 0 && g->params[i].stage == 2, "layer2 params are stage 2");
  i = nn_param_find(g, "conv1.weight");
  TU_CHECK(i >= 0 && g->params[i].stage == 0 && g->params[i].shape[3] == 7, "7x7 stem is stage 0");
  nn_tensor *in = nn_t(g, g->input);
  TU_CHECK(in->ndim == 4 && in->dim[0] == 2 && in->dim[1] == 224 && in->dim[3] == 3 && !in->needs_grad,
           "input is (N, H, W, C) without gradient");
  nn_tensor *lg = nn_t(g, g->logits);
  TU_CHECK(lg->ndim == 2 && lg->dim[0] == 2 && lg->dim[1] == 1000, "logits (N, classes)");
  nn_graph_destroy(g);

  g = build("resnet18", 224, 3, 1000, 2, 0, 0);
  TU_CHECK(count_params(g) == 11689512, "resnet18 has %lld parameters", (long long)count_params(g));
  compare_names("resnet18", g);
  nn_graph_destroy(g);

  // Stages and head flags of every registered model; CNN count as documented.
  static const char *models[] = {"cnn", "resnet18", "resnet50", "vit_ti16", "vit_s16", "vit_b16"};
  for (int m = 0; m < 6; m++) {
    model_cfg cfg;
    model_cfg_default(&cfg, models[m], 32, 3, 7);
    cfg.patch = 8;
    g = mf_build(&cfg, 1);
    check_stages(models[m], g, &cfg);
    if (m == 0)
      TU_CHECK(count_params(g) == 1173216 + 257 * 7, "cnn: %lld parameters", (long long)count_params(g));
    nn_graph_destroy(g);
  }
  g = build("cnn", 28, 1, 10, 1, 0, 0);
  TU_CHECK(count_params(g) == 1173216 - 576 + 2570, "grayscale cnn: %lld", (long long)count_params(g));
  nn_graph_destroy(g);
  TU_CHECK(!model_known("resnet34") && model_known("vit_b16"), "model_known");

  // Small stem: 3x3 stride-1 conv1, no max-pool, layer1 at full resolution.
  g = build("resnet18", 32, 1, 10, 2, 1, 1);
  i = nn_param_find(g, "conv1.weight");
  TU_CHECK(i >= 0 && g->params[i].shape[1] == 1 && g->params[i].shape[2] == 3, "small stem conv1 (64, 1, 3, 3)");
  for (int32_t k = 0; k < g->nops; k++)
    TU_CHECK(strcmp(g->ops[k]->vt->kind, "maxpool2d"), "small stem has no max-pool (%s)", g->ops[k]->name);
  // zero_init_residual: the last BN of each block starts at 0, the others at 1.
  nn_graph_finalize(g);
  int zeros_ok = 1;
  for (int32_t k = 0; k < g->nparams; k++) {
    const nn_param *p = &g->params[k];
    const float *w = nn_param_data(g, k);
    int last_bn = strstr(p->name, ".bn2.weight") != NULL;
    int bn_w = strstr(p->name, "bn") && strstr(p->name, ".weight");
    for (int64_t e = 0; bn_w && e < p->numel; e++)
      if (w[e] != (last_bn ? 0.0f : 1.0f)) zeros_ok = 0;
  }
  TU_CHECK(zeros_ok, "zero_init_residual: bn2.weight 0, other BN weights 1");
  // Init: kaiming-normal fan_out for convs, U(+-1/sqrt(in)) for fc.
  i = nn_param_find(g, "layer3.0.conv2.weight");   // (256, 256, 3, 3): std sqrt(2 / 2304)
  double sd = stddev(nn_param_data(g, i), g->params[i].numel), want = sqrt(2.0 / (256 * 9));
  TU_CHECK(fabs(sd / want - 1) < 0.02, "kaiming fan_out std %.5f, want %.5f", sd, want);
  i = nn_param_find(g, "fc.weight");
  float mx = 0;
  for (int64_t e = 0; e < g->params[i].numel; e++) mx = fmaxf(mx, fabsf(nn_param_data(g, i)[e]));
  TU_CHECK(mx <= 1.0f / sqrtf(512.0f) && mx > 0.9f / sqrtf(512.0f), "fc init bound %g", (double)mx);
  nn_graph_destroy(g);

  g = build("resnet50", 32, 3, 10, 1, 0, 1);
  nn_graph_finalize(g);
  i = nn_param_find(g, "layer4.2.bn3.weight");
  int32_t j = nn_param_find(g, "layer4.2.bn2.weight");
  TU_CHECK(i >= 0 && nn_param_data(g, i)[0] == 0.0f && nn_param_data(g, j)[0] == 1.0f,
           "resnet50 zero_init_residual on bn3");
  nn_graph_destroy(g);
  return tu_finish("test_model_names");
}
