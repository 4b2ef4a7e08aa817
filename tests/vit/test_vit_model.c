// Whole-model oracle: our ViT (vit_build, patch 8, ViT-Ti widths, 12 blocks,
// 32x32x3 input, batch 2, 10 classes) with torchvision's weights
// (vit_model.h5 from make_vit_fixtures.py) gives torch's logits, loss and
// every parameter gradient, and the same losses over 5 steps of SGD and of
// AdamW. Also checks names (one-to-one with torchvision's), stages, the timm
// name map, and the ViT-B/16 / S/16 parameter counts of torchvision.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "testutil.h"
#include "nn/optim.h"

// The step state (labels, num_valid, loss) of the graph under test.
static nn_step g_st;

// Logits/loss/grads: fp32 on both sides through 12 blocks; the measured
// errors are ~1e-6 relative to each tensor's scale. 1e-4 as the issue asks.
#define TOL 1e-4
// Losses after optimizer steps (LRs small enough that the 2-sample problem is
// not memorised in one step, where the trajectory turns chaotic): each step
// feeds the 1e-6-level gradient differences back into the weights.
#define TOL_STEPS 1e-4

static char fx[512];
static const int32_t *labels_fx;

static nn_graph *build(void) {
  model_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  snprintf(cfg.name, sizeof cfg.name, "vit_ti16");
  cfg.image_size = 32;
  cfg.channels = 3;
  cfg.classes = 10;
  cfg.patch = 8;
  nn_graph *g = nn_graph_create(cpu_backend(), 2, 1);
  vit_build(g, &cfg, 192, 3, 12);
  nn_xent_cfg xc = {0.0f, NULL, 10};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_finalize(g);
  return g;
}

// Loads torch's weights by name; returns the number of elements loaded.
static int64_t load_params(nn_graph *g) {
  int64_t total = 0;
  for (int32_t i = 0; i < g->nparams; i++) {
    char ds[160];
    snprintf(ds, sizeof ds, "params/%s", g->params[i].name);
    int64_t n = 0;
    float *v = tu_h5_read_f32(fx, ds, &n);
    TU_CHECK(v && n == g->params[i].numel, "param %s: fixture has %lld elements, we %lld", g->params[i].name,
             (long long)n, (long long)g->params[i].numel);
    if (v && n == g->params[i].numel) memcpy(nn_param_data(g, i), v, (size_t)n * 4);
    free(v);
    total += n;
  }
  return total;
}

static void set_input(nn_graph *g) {
  nn_tensor *in = nn_t(g, g->input);
  int64_t n = 0;
  float *x = tu_h5_read_f32(fx, "x", &n);
  if (!x || n != in->numel) {
    fprintf(stderr, "FAIL: fixture x has %lld elements, want %lld\n", (long long)n, (long long)in->numel);
    exit(1);
  }
  memcpy(in->data, x, (size_t)n * 4);
  free(x);
  nn_step_init(&g_st, g);
  g_st.labels = labels_fx;
  g_st.num_valid = 2;
}

static void check_losses(const char *which, optim_kind kind) {
  nn_graph *g = build();
  load_params(g);
  set_input(g);
  optim_cfg oc;
  optim_cfg_defaults(&oc, kind);
  // Same settings as the script: decay on conv/linear weights only.
  oc.no_decay_norm_bias = 1;
  if (kind == OPTIM_SGD) {
    oc.lr = 3e-4f;
    oc.momentum = 0.9f;
    oc.weight_decay = 1e-4f;
  } else {
    oc.lr = 1e-5f;
    oc.weight_decay = 0.05f;
  }
  optimizer *o = optim_create(&oc, g, 14);
  double got[6];
  for (int s = 0; s < 5; s++) {
    nn_forward(g, &g_st);
    got[s] = g_st.loss;
    nn_backward(g, &g_st);
    optim_step(o, g);
  }
  nn_forward(g, &g_st);
  got[5] = g_st.loss;
  char ds[32];
  snprintf(ds, sizeof ds, "%s_losses", which);
  int64_t n = 0;
  float *want = tu_h5_read_f32(fx, ds, &n);
  TU_CHECK(want && n == 6, "fixture %s", ds);
  if (want && n == 6) {
    float gotf[6];
    for (int s = 0; s < 6; s++) {
      gotf[s] = (float)got[s];
      printf("     %s loss[%d] ours %.7f torch %.7f\n", which, s, got[s], (double)want[s]);
    }
    // Error relative to the trajectory's scale (max |loss|), like tu_close
    // everywhere else: a loss near 0 late in the run does not blow it up.
    snprintf(ds, sizeof ds, "%s losses over 5 steps", which);
    tu_close(ds, gotf, want, 6, TOL_STEPS);
    TU_CHECK(want[5] < want[0], "%s: torch loss should fall over 5 steps", which);
  }
  free(want);
  optim_destroy(o);
  nn_graph_destroy(g);
}

static void check_timm_names(void) {
  struct { const char *tv, *timm; } c[] = {
      {"class_token", "cls_token"},
      {"conv_proj.weight", "patch_embed.proj.weight"},
      {"encoder.pos_embedding", "pos_embed"},
      {"encoder.layers.encoder_layer_11.self_attention.in_proj_weight", "blocks.11.attn.qkv.weight"},
      {"encoder.layers.encoder_layer_0.self_attention.out_proj.bias", "blocks.0.attn.proj.bias"},
      {"encoder.layers.encoder_layer_3.ln_1.weight", "blocks.3.norm1.weight"},
      {"encoder.layers.encoder_layer_3.ln_2.bias", "blocks.3.norm2.bias"},
      {"encoder.layers.encoder_layer_7.mlp.0.weight", "blocks.7.mlp.fc1.weight"},
      {"encoder.layers.encoder_layer_7.mlp.3.bias", "blocks.7.mlp.fc2.bias"},
      {"encoder.ln.weight", "norm.weight"},
      {"heads.head.bias", "head.bias"},
  };
  char out[128];
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    int ok = vit_name_to_timm(c[i].tv, out, sizeof out);
    TU_CHECK(ok && !strcmp(out, c[i].timm), "timm name of %s: got %s", c[i].tv, ok ? out : "(none)");
  }
  TU_CHECK(!vit_name_to_timm("encoder.layers.encoder_layer_1.bogus", out, sizeof out), "bogus name mapped");
  TU_CHECK(!vit_name_to_timm("fc.weight", out, sizeof out), "non-ViT name mapped");
}

// torchvision parameter counts (vit_b_16(): 86,567,656; S/16 at 224 with 1000
// classes: 22,050,664), without allocating: count registered params only.
static void check_counts(int64_t dim, int heads, int64_t want, const char *what) {
  model_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.image_size = 224;
  cfg.channels = 3;
  cfg.classes = 1000;
  cfg.patch = 16;
  nn_graph *g = nn_graph_create(cpu_backend(), 1, 1);
  vit_build(g, &cfg, dim, heads, 12);
  int64_t n = 0;
  for (int32_t i = 0; i < g->nparams; i++) n += g->params[i].numel;
  printf("%-4s %s parameters %lld (torchvision %lld)\n", n == want ? "ok" : "FAIL", what, (long long)n, (long long)want);
  if (n != want) tu_failures++;
  nn_graph_destroy(g);
}

// Grayscale input, another patch size and dropout on: builds, runs forward and
// backward, and gives a finite loss and finite gradients (no torch oracle for
// random dropout masks).
static void check_gray_dropout(void) {
  model_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.image_size = 16;
  cfg.channels = 1;
  cfg.classes = 5;
  cfg.patch = 4;
  cfg.dropout = 0.1f;
  nn_graph *g = nn_graph_create(cpu_backend(), 3, 1);
  vit_build(g, &cfg, 24, 2, 2);
  nn_xent_cfg xc = {0.0f, NULL, 5};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_finalize(g);
  TU_CHECK(nn_t(g, g->logits)->dim[1] == 5, "logits classes");
  TU_CHECK(nn_t(g, g->input)->dim[3] == 1, "grayscale input");
  tu_fill_uniform(nn_t(g, g->input)->data, nn_t(g, g->input)->numel, 9);
  int32_t lab[3] = {0, 4, 2};
  nn_step_init(&g_st, g);
  g_st.labels = lab;
  g_st.num_valid = 3;
  nn_forward(g, &g_st);
  nn_backward(g, &g_st);
  int finite = isfinite(g_st.loss);
  double gn = 0;
  for (int64_t i = 0; i < g->nparam_elems; i++) gn += (double)g->grads[i] * g->grads[i];
  finite = finite && isfinite(gn) && gn > 0;
  printf("%-4s grayscale/patch 4/dropout 0.1 ViT: loss %.4f, |grad| %.4g\n", finite ? "ok" : "FAIL", g_st.loss, sqrt(gn));
  if (!finite) tu_failures++;
  nn_graph_destroy(g);
}

int main(void) {
  snprintf(fx, sizeof fx, "%s/vit_model.h5", tu_fixture_dir());
  if (!tu_file_exists(fx)) {
    fprintf(stderr, "FAIL: fixture %s missing (run make_vit_fixtures.py)\n", fx);
    return 1;
  }
  check_timm_names();
  check_counts(768, 12, 86567656, "vit_b16");
  check_counts(384, 6, 22050664, "vit_s16");
  check_gray_dropout();

  int64_t nl = 0;
  int32_t *labels = tu_h5_read_i32(fx, "labels", &nl);
  TU_CHECK(labels && nl == 2, "labels");
  if (!labels) return tu_finish("test_vit_model");
  labels_fx = labels;

  nn_graph *g = build();
  int64_t loaded = load_params(g);
  double want_n = tu_h5_read_scalar(fx, "nparams"), want_t = tu_h5_read_scalar(fx, "ntensors");
  TU_CHECK(loaded == (int64_t)want_n && g->nparams == (int32_t)want_t,
           "parameters: we %lld in %d tensors, torch %.0f in %.0f", (long long)loaded, g->nparams, want_n, want_t);
  for (int32_t i = 0; i < g->nparams; i++) {
    const nn_param *p = &g->params[i];
    int head = !strncmp(p->name, "heads.", 6);
    TU_CHECK(p->is_head == head, "%s is_head %d", p->name, p->is_head);
    TU_CHECK(p->stage >= 0 && p->stage <= 13, "%s stage %d", p->name, p->stage);
    if (!strncmp(p->name, "encoder.layers.encoder_layer_", 29))
      TU_CHECK(p->stage == atoi(p->name + 29) + 1, "%s stage %d", p->name, p->stage);
  }
  set_input(g);
  nn_forward(g, &g_st);
  int64_t n = 0;
  float *want = tu_h5_read_f32(fx, "logits", &n);
  TU_CHECK(want && n == 20, "fixture logits");
  if (want) tu_close("logits", nn_t(g, g->logits)->data, want, 20, TOL);
  free(want);
  float loss = g_st.loss;
  want = tu_h5_read_f32(fx, "loss", &n);
  if (want) tu_close("loss", &loss, want, 1, TOL);
  free(want);

  nn_backward(g, &g_st);
  int bad = 0;
  for (int32_t i = 0; i < g->nparams; i++) {
    char ds[160];
    snprintf(ds, sizeof ds, "grads/%s", g->params[i].name);
    want = tu_h5_read_f32(fx, ds, &n);
    TU_CHECK(want && n == g->params[i].numel, "fixture %s", ds);
    if (want && n == g->params[i].numel) {
      snprintf(ds, sizeof ds, "grad %s", g->params[i].name);
      if (!tu_close(ds, nn_param_grad(g, i), want, n, TOL)) bad++;
    }
    free(want);
  }
  printf("%d of %d parameter gradients outside tolerance\n", bad, g->nparams);
  nn_graph_destroy(g);

  check_losses("sgd", OPTIM_SGD);
  check_losses("adamw", OPTIM_ADAMW);
  free(labels);
  return tu_finish("test_vit_model");
}
