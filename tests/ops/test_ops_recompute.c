// The lifetime plan (nn/plan.h) and the outputs it does not keep.
//
//  1. Recompute is exact: for every op kind that may rebuild its output in
//     backward (batchnorm2d, batchnorm2d_relu, layernorm, gelu), the rebuilt
//     output equals what forward wrote, bit for bit (training and eval mode,
//     odd and blocked channel counts). The op's output is read by a later op's
//     backward (a conv or a linear), so the plan marks it recomputed.
//  2. The plan is sound for every model: no two arena items that are alive at
//     the same step share bytes, every tensor a backward reads is kept or
//     recomputed, and the planned arena is smaller than the flat layout.
//  3. The lifetime plan gives the same gradients as the flat layout (every
//     tensor for the whole step), bit for bit, over two training steps of a
//     small ResNet-18 and ViT (so reuse never lets a value be overwritten
//     before its last reader).
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "nn/backend.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "nn/plan.h"
#include "op_harness.h"
#include "testutil.h"

static void fill(float *x, int64_t n, uint64_t seed) { tu_fill_uniform(x, n, seed); }

// Runs forward op by op, saves the output of op `which` right after it ran,
// then clobbers it and rebuilds it with the backend's recompute hook.
static void check_rebuild(nn_graph *g, int which, const char *what) {
  nn_op *op = g->ops[which];
  nn_tensor *y = nn_t(g, op->out);
  TU_CHECK(y->recomputed, "%s: the plan should recompute %s, not keep it", what, y->name);
  float *want = malloc((size_t)y->numel * 4);
  for (int32_t i = 0; i < g->nops; i++) {
    g->ops[i]->vt->forward(g->ops[i], g, oh_step());
    if (i == which) memcpy(want, y->data, (size_t)y->numel * 4);
  }
  memset(y->data, 0xff, (size_t)y->numel * 4);   // NaNs: a partial rebuild would show
  g->be->recompute[op->kind](op, g);
  TU_CHECK(!memcmp(want, y->data, (size_t)y->numel * 4), "%s: rebuilt output differs from forward's", what);
  free(want);
}

static void case_bn(int64_t n, int64_t h, int64_t w, int64_t c, int relu, int training) {
  char what[96];
  snprintf(what, sizeof what, "bn%s %lldx%lldx%lldx%lld %s", relu ? "_relu" : "", (long long)n, (long long)h,
           (long long)w, (long long)c, training ? "train" : "eval");
  nn_graph *g = oh_graph(n, 3);
  nn_tid x = nn_tensor_new(g, "x", 4, (int64_t[]){n, h, w, c}, 1);
  nn_tid y = relu ? nn_batchnorm2d_relu(g, "bn", x, 0.1f, 1e-5f, 0) : nn_batchnorm2d(g, "bn", x, 0.1f, 1e-5f, 0);
  nn_conv2d(g, "conv", y, 8, 3, 1, 1, 0);   // reads y in its backward
  nn_graph_finalize(g);
  nn_graph_set_training(g, training);
  fill(nn_t(g, x)->data, nn_t(g, x)->numel, 11);
  fill(nn_param_data(g, nn_param_find(g, "bn.weight")), c, 12);
  fill(nn_param_data(g, nn_param_find(g, "bn.bias")), c, 13);
  float *rv = nn_buf(g, nn_buffer_find(g, "bn.running_var"));
  for (int64_t i = 0; i < c; i++) rv[i] = 0.5f + 0.01f * (float)i;
  check_rebuild(g, 0, what);
  nn_graph_destroy(g);
}

static void case_ln(int64_t rows, int64_t d) {
  char what[64];
  snprintf(what, sizeof what, "layernorm %lldx%lld", (long long)rows, (long long)d);
  nn_graph *g = oh_graph(rows, 4);
  nn_tid x = nn_tensor_new(g, "x", 2, (int64_t[]){rows, d}, 1);
  nn_tid y = nn_layernorm(g, "ln", x, 1e-6f);
  nn_linear(g, "fc", y, 5, 1);
  nn_graph_finalize(g);
  fill(nn_t(g, x)->data, rows * d, 21);
  fill(nn_param_data(g, nn_param_find(g, "ln.weight")), d, 22);
  fill(nn_param_data(g, nn_param_find(g, "ln.bias")), d, 23);
  check_rebuild(g, 0, what);
  nn_graph_destroy(g);
}

static void case_gelu(int64_t rows, int64_t d) {
  nn_graph *g = oh_graph(rows, 5);
  nn_tid x = nn_tensor_new(g, "x", 2, (int64_t[]){rows, d}, 1);
  nn_tid y = nn_gelu(g, "gelu", x);
  nn_linear(g, "fc", y, 3, 0);
  nn_graph_finalize(g);
  fill(nn_t(g, x)->data, rows * d, 31);
  for (int64_t i = 0; i < rows * d; i++) nn_t(g, x)->data[i] *= 4.0f;   // both tails of erf
  check_rebuild(g, 0, "gelu");
  nn_graph_destroy(g);
}

// ---- 2. plan soundness on every model ----------------------------------------
static void case_plan(const char *model, int64_t size, int64_t batch) {
  model_cfg cfg;
  TU_CHECK(model_cfg_default(&cfg, model, size, 3, 10), "model %s", model);
  nn_graph *g = nn_graph_create_planning(cpu_backend(), batch);
  model_build(g, &cfg);
  nn_xent_cfg xc = {0, NULL, 10};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_plan p;
  nn_plan_build(g, 1, &p);
  TU_CHECK(p.overlaps == 0, "%s: %lld pairs of live items share bytes", model, (long long)p.overlaps);
  // Every tensor some backward reads must be kept (its data interval reaches
  // that backward) or recomputed: checked through the plan's own rule by
  // comparing with the flat layout, which keeps everything.
  TU_CHECK(p.arena_bytes < p.flat_bytes, "%s: arena %lld not below flat %lld", model, (long long)p.arena_bytes,
           (long long)p.flat_bytes);
  TU_CHECK(p.peak_live_bytes <= p.arena_bytes, "%s: live %lld > arena %lld", model, (long long)p.peak_live_bytes,
           (long long)p.arena_bytes);
  printf("plan %-9s %3lldpx b%-3lld arena %8.1f MiB (flat %8.1f, live peak %8.1f at step %d, kept %8.1f, "
         "%d recomputed)\n",
         model, (long long)size, (long long)batch, p.arena_bytes / 1048576.0, p.flat_bytes / 1048576.0,
         p.peak_live_bytes / 1048576.0, p.peak_step, p.kept_bytes / 1048576.0, p.nrecompute);
  nn_plan_free(&p);
  nn_graph_destroy(g);
}

// ---- 3. lifetime plan == flat layout, bit for bit -----------------------------
static float *train_grads(const char *model, int64_t size, int small_stem, int mode, int64_t *n) {
  model_cfg cfg;
  model_cfg_default(&cfg, model, size, 3, 10);
  cfg.small_stem = small_stem;
  if (!strncmp(model, "vit", 3)) cfg.patch = 8;
  nn_graph *g = nn_graph_create(cpu_backend(), 4, 7);
  model_build(g, &cfg);
  nn_xent_cfg xc = {0.1f, NULL, 10};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_set_plan(g, mode, 1);
  nn_graph_finalize(g);
  int32_t labels[4] = {1, 7, 3, 3};
  nn_step s;
  nn_step_init(&s, g);
  s.labels = labels;
  float *out = malloc((size_t)(g->nparam_elems + 1) * 4);
  for (int step = 0; step < 2; step++) {   // the second step runs on a dirty arena
    fill(nn_t(g, g->input)->data, nn_t(g, g->input)->numel, 40 + (uint64_t)step);
    s.accumulate_grads = step;             // and accumulates
    nn_forward(g, &s);
    nn_backward(g, &s);
  }
  memcpy(out, g->grads, (size_t)g->nparam_elems * 4);
  out[g->nparam_elems] = s.loss;
  *n = g->nparam_elems + 1;
  nn_graph_destroy(g);
  return out;
}

static void case_same_as_flat(const char *model, int64_t size, int small_stem) {
  int64_t n1, n2;
  float *a = train_grads(model, size, small_stem, NN_PLAN_LIFETIME, &n1);
  float *b = train_grads(model, size, small_stem, NN_PLAN_FLAT, &n2);
  TU_CHECK(n1 == n2 && !memcmp(a, b, (size_t)n1 * 4), "%s: gradients with the lifetime plan differ from the flat layout",
           model);
  printf("%s %lldpx: lifetime plan and flat layout give the same gradients and loss (%lld values)\n", model,
         (long long)size, (long long)n1);
  free(a);
  free(b);
}

int main(void) {
  case_bn(2, 5, 3, 4, 1, 1);
  case_bn(2, 5, 3, 4, 1, 0);
  case_bn(3, 4, 4, 32, 1, 1);
  case_bn(2, 7, 5, 48, 0, 1);
  case_bn(2, 6, 6, 64, 1, 1);
  case_bn(1, 3, 3, 3, 0, 0);
  case_ln(7, 5);
  case_ln(13, 192);
  case_gelu(9, 33);
  const char *models[] = {"cnn", "resnet18", "resnet50", "vit_ti16", "vit_b16"};
  for (int i = 0; i < 5; i++) case_plan(models[i], models[i][0] == 'c' ? 128 : 224, 32);
  case_plan("resnet50", 224, 1);
  case_same_as_flat("resnet18", 32, 1);
  case_same_as_flat("resnet50", 32, 0);
  case_same_as_flat("cnn", 32, 0);
  case_same_as_flat("vit_ti16", 32, 0);
  return tu_finish("test_ops_recompute");
}
