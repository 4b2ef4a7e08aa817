// Optimizers against torch 1.13 (fixture tests/optim/make_optim_fixtures.py):
// SGD with momentum and Nesterov, AdamW, clip_grad_norm_, LambdaLR warmup +
// cosine / step, no-decay groups, a head LR, a tensor frozen for the whole
// run, freezing below a stage and gradual unfreezing. Parameters are checked
// after every step (rel err <= 1e-5), plus the LR sequence and clip norms.
// The configurations repeat the script's CONFIGS; keep both in sync.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "nn/graph.h"
#include "testutil.h"
#include "nn/optim.h"

#define STEPS 10
#define STEPS_PER_EPOCH 3

typedef struct {
  const char *name;
  int ndim;
  int64_t shape[4];
  nn_param_kind kind;
  int stage, is_head, frozen;
} pdef;

static const pdef PARAMS[] = {
    {"stem.weight", 2, {4, 3}, NN_PARAM_WEIGHT, 0, 0, 0},
    {"stem.bias", 1, {4}, NN_PARAM_BIAS, 0, 0, 0},
    {"block.conv.weight", 4, {8, 3, 3, 3}, NN_PARAM_WEIGHT, 1, 0, 0},
    {"block.norm.weight", 1, {6}, NN_PARAM_NORM, 1, 0, 0},
    {"block.frozen.weight", 1, {5}, NN_PARAM_WEIGHT, 1, 0, 1},
    {"block.embed", 2, {2, 3}, NN_PARAM_EMBED, 1, 0, 0},
    {"fc.weight", 2, {3, 4}, NN_PARAM_WEIGHT, 2, 1, 0},
    {"fc.bias", 1, {3}, NN_PARAM_BIAS, 2, 1, 0},
};
#define NP ((int)(sizeof PARAMS / sizeof PARAMS[0]))

static char g_file[1024];

static float *fx(const char *name, int64_t want) {
  int64_t n = 0;
  float *v = tu_h5_read_f32(g_file, name, &n);
  if (!v || n != want) {
    fprintf(stderr, "FAIL fixture %s: got %lld elements, want %lld\n", name, (long long)n,
            (long long)want);
    exit(1);
  }
  return v;
}

static nn_graph *build_graph(void) {
  nn_graph *g = nn_graph_create(cpu_backend(), 1, 1);
  // Parameters only: the optimizer needs the table and the flat buffers, no ops.
  for (int i = 0; i < NP; i++) {
    int32_t id = nn_param_new(g, PARAMS[i].name, PARAMS[i].ndim, PARAMS[i].shape, PARAMS[i].kind,
                              NN_INIT_ZEROS, 0);
    g->params[id].stage = PARAMS[i].stage;
    g->params[id].is_head = PARAMS[i].is_head;
  }
  nn_graph_finalize(g);
  return g;
}

static void run_config(nn_graph *g, const char *cname, const optim_cfg *cfg, int apply_freezing) {
  char key[256];
  // Reset params to the fixture's initial values and the caller's frozen flags.
  for (int i = 0; i < NP; i++) {
    snprintf(key, sizeof key, "/init/%s", PARAMS[i].name);
    float *v = fx(key, g->params[i].numel);
    memcpy(nn_param_data(g, i), v, (size_t)g->params[i].numel * 4);
    free(v);
    g->params[i].frozen = PARAMS[i].frozen;
  }
  optimizer *o = optim_create(cfg, g, 0);
  TU_CHECK(o->num_stages == 3, "%s: derived stage count %d", cname, o->num_stages);
  snprintf(key, sizeof key, "/%s/lr", cname);
  float *want_lr = fx(key, STEPS);
  float *want_norm = NULL;
  if (cfg->clip_grad_norm > 0) {
    snprintf(key, sizeof key, "/%s/norm", cname);
    want_norm = fx(key, STEPS);
  }
  float got_lr[STEPS], got_norm[STEPS];
  double worst = 0;
  for (int s = 0; s < STEPS; s++) {
    if (apply_freezing) optim_apply_freezing(o, g, s / STEPS_PER_EPOCH);
    for (int i = 0; i < NP; i++) {   // every tensor gets a gradient, frozen ones too
      snprintf(key, sizeof key, "/grads/%s", PARAMS[i].name);
      float *gr = fx(key, STEPS * g->params[i].numel);
      memcpy(nn_param_grad(g, i), gr + s * g->params[i].numel, (size_t)g->params[i].numel * 4);
      free(gr);
    }
    got_lr[s] = optim_step(o, g);
    got_norm[s] = (float)o->last_grad_norm;
    for (int i = 0; i < NP; i++) {
      snprintf(key, sizeof key, "/%s/params/%s", cname, PARAMS[i].name);
      float *want = fx(key, STEPS * g->params[i].numel);
      double e = tu_rel_err(nn_param_data(g, i), want + s * g->params[i].numel, g->params[i].numel);
      if (e > worst) worst = e;
      if (e > 1e-5)
        fprintf(stderr, "FAIL %s step %d %s: rel err %.3g\n", cname, s, PARAMS[i].name, e), tu_failures++;
      free(want);
    }
  }
  printf("%-16s params after %d steps: worst rel err %.3g (tol 1e-5)\n", cname, STEPS, worst);
  snprintf(key, sizeof key, "%s lr", cname);
  tu_close(key, got_lr, want_lr, STEPS, 1e-6);
  if (want_norm) {
    snprintf(key, sizeof key, "%s clip norm", cname);
    tu_close(key, got_norm, want_norm, STEPS, 1e-5);
  }
  // The always-frozen tensor and its state never move.
  int fz = 4;
  snprintf(key, sizeof key, "/init/%s", PARAMS[fz].name);
  float *init = fx(key, g->params[fz].numel);
  int same = !memcmp(init, nn_param_data(g, fz), (size_t)g->params[fz].numel * 4);
  for (int64_t k = 0; k < g->params[fz].numel; k++) same &= o->state1[g->params[fz].offset + k] == 0.0f;
  TU_CHECK(same, "%s: frozen tensor or its state changed", cname);
  free(init);
  free(want_lr);
  free(want_norm);
  optim_destroy(o);
}

int main(void) {
  snprintf(g_file, sizeof g_file, "%s/optim.h5", tu_fixture_dir());
  if (!tu_file_exists(g_file)) {
    fprintf(stderr, "FAIL: fixture %s missing (run make_optim_fixtures.py)\n", g_file);
    return 1;
  }
  nn_graph *g = build_graph();
  optim_cfg c;

  optim_cfg_defaults(&c, OPTIM_SGD);
  c.lr = 0.1f; c.momentum = 0.9f; c.weight_decay = 1e-2f; c.no_decay_norm_bias = 1;
  c.backbone_lr_mult = 0.1f; c.sched = SCHED_COSINE; c.warmup_steps = 3;
  c.warmup_start_factor = 0.1f; c.total_steps = 10; c.min_lr = 1e-3f;
  run_config(g, "sgd_mom", &c, 0);

  optim_cfg_defaults(&c, OPTIM_SGD);
  c.lr = 0.05f; c.momentum = 0.9f; c.nesterov = 1; c.weight_decay = 5e-4f; c.no_decay_norm_bias = 0;
  c.clip_grad_norm = 1.0f; c.sched = SCHED_STEP; c.warmup_steps = 2; c.warmup_start_factor = 0.5f;
  c.step_every = 3; c.step_gamma = 0.5f; c.freeze_below_stage = 1;
  run_config(g, "sgd_nest", &c, 1);

  optim_cfg_defaults(&c, OPTIM_ADAMW);
  c.lr = 1e-2f; c.beta1 = 0.9f; c.beta2 = 0.999f; c.eps = 1e-8f; c.weight_decay = 0.05f;
  c.no_decay_norm_bias = 1; c.backbone_lr_mult = 0.5f; c.clip_grad_norm = 2.0f;
  c.sched = SCHED_COSINE; c.warmup_steps = 3; c.warmup_start_factor = 0.1f; c.total_steps = 10;
  c.min_lr = 0;
  run_config(g, "adamw", &c, 0);

  optim_cfg_defaults(&c, OPTIM_ADAMW);
  c.lr = 1e-2f; c.beta1 = 0.8f; c.beta2 = 0.99f; c.eps = 1e-6f; c.weight_decay = 0.1f;
  c.no_decay_norm_bias = 0; c.sched = SCHED_CONSTANT; c.warmup_steps = 0; c.unfreeze_every = 1;
  run_config(g, "adamw_unfreeze", &c, 1);

  // Our schedule against torch's own SequentialLR(LinearLR, CosineAnnealingLR
  // / StepLR). Cosine is compared up to total_steps: past it we hold min_lr,
  // whereas CosineAnnealingLR starts rising again.
  {
    float *cs = fx("/sched/cos_seq", 14), *ss = fx("/sched/step_seq", 14), got[14];
    optim_cfg_defaults(&c, OPTIM_SGD);
    c.lr = 0.1f; c.sched = SCHED_COSINE; c.warmup_steps = 3; c.warmup_start_factor = 0.1f;
    c.total_steps = 10; c.min_lr = 1e-3f;
    for (int s = 0; s < 14; s++) got[s] = optim_lr_at(&c, s);
    tu_close("SequentialLR cosine", got, cs, 11, 1e-6);
    for (int s = 11; s < 14; s++) TU_CHECK(got[s] == got[10], "cosine holds min_lr past the end");
    optim_cfg_defaults(&c, OPTIM_SGD);
    c.lr = 0.05f; c.sched = SCHED_STEP; c.warmup_steps = 2; c.warmup_start_factor = 0.5f;
    c.step_every = 3; c.step_gamma = 0.5f;
    for (int s = 0; s < 14; s++) got[s] = optim_lr_at(&c, s);
    tu_close("SequentialLR step", got, ss, 14, 1e-6);
    free(cs);
    free(ss);
  }
  nn_graph_destroy(g);
  return tu_finish("test_optim_oracle");
}
