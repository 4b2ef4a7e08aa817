// Pure-C checks of the optimizer module: exact LR schedule values, the stage
// freezing rule, the global gradient norm, one hand-computed SGD and AdamW
// step, and that the threaded update gives bit-identical results for any
// thread count (the slices cross tensor boundaries).
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "nn/graph.h"
#include "testutil.h"
#include "nn/optim.h"

static void check_lr(const optim_cfg *c, int64_t s, double want) {
  float got = optim_lr_at(c, s);
  TU_CHECK(fabs(got - want) <= 1e-7 * fabs(want) + 1e-12, "lr at step %lld: %.9g want %.9g",
           (long long)s, (double)got, want);
}

static void test_schedules(void) {
  optim_cfg c;
  optim_cfg_defaults(&c, OPTIM_SGD);
  c.lr = 1.0f;
  c.warmup_steps = 4;
  c.warmup_start_factor = 0.25f;
  c.sched = SCHED_COSINE;
  c.total_steps = 12;
  c.min_lr = 0;
  check_lr(&c, 0, 0.25);
  check_lr(&c, 1, 0.4375);
  check_lr(&c, 2, 0.625);
  check_lr(&c, 4, 1.0);                                 // warmup done: peak
  check_lr(&c, 6, 0.5 * (1 + cos(M_PI * 0.25)));        // a quarter into the cosine
  check_lr(&c, 8, 0.5);                                 // half way
  check_lr(&c, 12, 0.0);
  check_lr(&c, 40, 0.0);                                // held at the floor
  c.min_lr = 0.1f;
  check_lr(&c, 8, 0.1 + 0.9 * 0.5);
  check_lr(&c, 30, 0.1f);
  c.total_steps = 4;                                    // no decay phase: stays at lr
  check_lr(&c, 9, 1.0);

  optim_cfg_defaults(&c, OPTIM_SGD);
  c.lr = 2.0f;
  c.sched = SCHED_STEP;
  c.warmup_steps = 1;
  c.warmup_start_factor = 0.5f;
  c.step_every = 3;
  c.step_gamma = 0.1f;
  check_lr(&c, 0, 1.0);
  check_lr(&c, 1, 2.0);
  check_lr(&c, 3, 2.0);
  check_lr(&c, 4, 0.2);
  check_lr(&c, 7, 0.02);

  optim_cfg_defaults(&c, OPTIM_SGD);
  c.lr = 0.3f;                                          // constant, no warmup
  check_lr(&c, 0, 0.3f);
  check_lr(&c, 1000, 0.3f);
}

static void test_stage_rule(void) {
  optim_cfg c;
  optim_cfg_defaults(&c, OPTIM_SGD);
  // 5 stages (0..4, head = 4), unfreeze every 2 epochs, never below stage 1.
  c.unfreeze_every = 2;
  c.freeze_below_stage = 1;
  static const int want[6][5] = {   // [epoch][stage]
      {0, 0, 0, 0, 1}, {0, 0, 0, 0, 1}, {0, 0, 0, 1, 1},
      {0, 0, 0, 1, 1}, {0, 0, 1, 1, 1}, {0, 0, 1, 1, 1}};
  for (int e = 0; e < 6; e++)
    for (int s = 0; s < 5; s++)
      TU_CHECK(optim_stage_trainable(&c, 5, s, e) == want[e][s], "epoch %d stage %d", e, s);
  for (int s = 0; s < 5; s++)
    TU_CHECK(optim_stage_trainable(&c, 5, s, 100) == (s >= 1), "late epoch stage %d", s);
  c.unfreeze_every = 0;
  c.freeze_below_stage = 0;
  for (int s = 0; s < 5; s++) TU_CHECK(optim_stage_trainable(&c, 5, s, 0), "no freezing");
}

// Graph with many odd-sized tensors so thread slices cross tensor boundaries.
static nn_graph *make_graph(int nparams, int64_t base, int with_frozen) {
  nn_graph *g = nn_graph_create(cpu_backend(), 1, 3);
  for (int i = 0; i < nparams; i++) {
    char name[32];
    snprintf(name, sizeof name, "p%d", i);
    int64_t shape[1] = {base + 37 * i};
    int32_t id = nn_param_new(g, name, 1, shape, (nn_param_kind)(i % 4), NN_INIT_UNIFORM, 1.0f);
    g->params[id].stage = i * 3 / nparams;
    g->params[id].is_head = i == nparams - 1;
    g->params[id].frozen = with_frozen && i % 5 == 2;
  }
  nn_graph_finalize(g);
  tu_fill_uniform(g->grads, g->nparam_elems, 99);
  return g;
}

static void test_grad_norm(void) {
  nn_graph *g = make_graph(7, 5, 1);
  double want = 0;
  for (int32_t i = 0; i < g->nparams; i++) {
    if (g->params[i].frozen) continue;
    const float *gr = nn_param_grad(g, i);
    for (int64_t k = 0; k < g->params[i].numel; k++) want += (double)gr[k] * gr[k];
  }
  want = sqrt(want);
  double got = optim_grad_norm(g);
  TU_CHECK(fabs(got - want) <= 1e-12 * want, "grad norm %.15g want %.15g", got, want);
  nn_graph_destroy(g);
  // Bit-identical for any thread count (ranks must clip identically).
  g = make_graph(9, 40000, 1);
  omp_set_num_threads(1);
  double n1 = optim_grad_norm(g);
  omp_set_num_threads(3);
  double n3 = optim_grad_norm(g);
  TU_CHECK(n1 == n3, "grad norm differs with threads: %.17g vs %.17g", n1, n3);
  nn_graph_destroy(g);
}

static void test_hand_step(void) {
  nn_graph *g = nn_graph_create(cpu_backend(), 1, 3);
  int64_t sh[1] = {2};
  nn_param_new(g, "w", 1, sh, NN_PARAM_WEIGHT, NN_INIT_ZEROS, 0);
  nn_graph_finalize(g);
  float *p = g->params_data, *gr = g->grads;
  optim_cfg c;
  optim_cfg_defaults(&c, OPTIM_SGD);
  c.lr = 0.5f; c.momentum = 0.5f; c.weight_decay = 0.1f;
  optimizer *o = optim_create(&c, g, 0);
  p[0] = 1; p[1] = -2; gr[0] = 0.2f; gr[1] = 0.4f;
  optim_step(o, g);   // d = g + 0.1 p = (0.3, 0.2); buf = d; p -= 0.5 d
  TU_CHECK(fabsf(p[0] - 0.85f) < 1e-7f && fabsf(p[1] + 2.1f) < 1e-7f, "sgd step 1: %g %g", p[0], p[1]);
  optim_step(o, g);   // d = (0.285, 0.19); buf = 0.5*(0.3,0.2) + d = (0.435, 0.29)
  TU_CHECK(fabsf(p[0] - (0.85f - 0.5f * 0.435f)) < 1e-6f && fabsf(p[1] - (-2.1f - 0.5f * 0.29f)) < 1e-6f,
           "sgd step 2: %g %g", p[0], p[1]);
  optim_destroy(o);

  optim_cfg_defaults(&c, OPTIM_ADAMW);
  c.lr = 0.1f; c.weight_decay = 0.5f; c.eps = 1e-8f;
  o = optim_create(&c, g, 0);
  p[0] = 1; p[1] = -2; gr[0] = 0.2f; gr[1] = -0.4f;
  optim_step(o, g);   // first Adam step moves by ~lr * sign(g) after decay p *= 0.95
  TU_CHECK(fabsf(p[0] - (0.95f - 0.1f)) < 1e-6f && fabsf(p[1] - (-1.9f + 0.1f)) < 1e-6f,
           "adamw step 1: %g %g", p[0], p[1]);
  optim_destroy(o);
  nn_graph_destroy(g);
}

static void run_steps(optim_kind kind, int threads, float *out, int64_t *n) {
  omp_set_num_threads(threads);
  nn_graph *g = make_graph(23, 301, 1);
  optim_cfg c;
  optim_cfg_defaults(&c, kind);
  c.clip_grad_norm = 3.0f;
  c.backbone_lr_mult = 0.3f;
  optimizer *o = optim_create(&c, g, 0);
  for (int s = 0; s < 3; s++) {
    tu_fill_uniform(g->grads, g->nparam_elems, 10 + (uint64_t)s);
    optim_step(o, g);
  }
  *n = g->nparam_elems;
  memcpy(out, g->params_data, (size_t)*n * 4);
  optim_destroy(o);
  nn_graph_destroy(g);
}

static void test_threads(void) {
  for (int k = 0; k < 2; k++) {
    optim_kind kind = k ? OPTIM_ADAMW : OPTIM_SGD;
    static float a[200000], b[200000];
    int64_t na, nb;
    run_steps(kind, 1, a, &na);
    run_steps(kind, 3, b, &nb);
    TU_CHECK(na == nb && !memcmp(a, b, (size_t)na * 4), "%s: 1 vs 3 threads differ",
             k ? "adamw" : "sgd");
  }
}

int main(void) {
  test_schedules();
  test_stage_rule();
  test_grad_norm();
  test_hand_step();
  test_threads();
  return tu_finish("test_optim_sched");
}
