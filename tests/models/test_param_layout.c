// The flat parameter layout of every model (issue 15): each parameter and
// buffer starts on a 256-byte boundary (NN_PARAM_ALIGN floats), the buffer is
// layer-major in backward-production order with only alignment padding
// between tensors, each op's [param_lo, param_hi) holds its own tensors, and
// the padding is zero after finalize and stays zero through backward, SGD and
// AdamW steps (with decay, clipping, freezing), while the grad-ready prefix
// that drives the gradient buckets is final when reported. Weights round-trip
// through safetensors with the padding untouched. CPU only (label unit).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "model_fixture.h"
#include "nn/optim.h"
#include "testutil.h"
#include "train/weights.h"

// Flags the elements of [0, n) that belong to no parameter (the padding).
static uint8_t *padding_mask(const nn_graph *g) {
  uint8_t *pad = malloc((size_t)g->nparam_elems);
  memset(pad, 1, (size_t)g->nparam_elems);
  for (int32_t i = 0; i < g->nparams; i++) memset(pad + g->params[i].offset, 0, (size_t)g->params[i].numel);
  return pad;
}

static int64_t nonzero_padding(const float *x, const uint8_t *pad, int64_t n) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; i++) bad += pad[i] && x[i] != 0.0f;
  return bad;
}

static void check_layout(const char *model, const nn_graph *g) {
  int64_t end_prev = -1;
  // Registration order is forward order; offsets must decrease along it.
  for (int32_t i = 0; i < g->nparams; i++) {
    const nn_param *p = &g->params[i];
    TU_CHECK(p->offset % NN_PARAM_ALIGN == 0, "%s: %s at element %lld (byte %lld) is not 256-byte aligned", model,
             p->name, (long long)p->offset, (long long)p->offset * 4);
    if (i + 1 < g->nparams) {
      const nn_param *q = &g->params[i + 1];   // produced earlier in backward: lower offset
      TU_CHECK(q->offset + q->numel <= p->offset, "%s: %s [%lld, +%lld) overlaps or follows %s at %lld", model,
               q->name, (long long)q->offset, (long long)q->numel, p->name, (long long)p->offset);
      TU_CHECK(p->offset - (q->offset + q->numel) < NN_PARAM_ALIGN, "%s: gap of %lld before %s is more than padding",
               model, (long long)(p->offset - (q->offset + q->numel)), p->name);
    }
    if (p->offset + p->numel > end_prev) end_prev = p->offset + p->numel;
  }
  TU_CHECK(g->nparam_elems == nn_param_align(end_prev) && g->nparam_elems % NN_PARAM_ALIGN == 0,
           "%s: buffer length %lld, last tensor ends at %lld", model, (long long)g->nparam_elems, (long long)end_prev);
  TU_CHECK(g->nparam_elems - nn_param_count(g) < (int64_t)g->nparams * NN_PARAM_ALIGN,
           "%s: %lld elements of padding for %d tensors", model, (long long)(g->nparam_elems - nn_param_count(g)),
           g->nparams);
  for (int32_t i = 0; i < g->nbufs; i++)
    TU_CHECK(g->bufs[i].offset % NN_PARAM_ALIGN == 0, "%s: buffer %s at %lld not aligned", model, g->bufs[i].name,
             (long long)g->bufs[i].offset);
  // Each op's range holds exactly its tensors (and the padding after them);
  // later ops sit lower, so walking the tape backwards the ranges go up.
  int64_t below = 0;
  for (int32_t k = g->nops - 1; k >= 0; k--) {
    const nn_op *op = g->ops[k];
    if (op->param_hi <= op->param_lo) continue;
    TU_CHECK(op->param_lo >= below && op->param_hi <= g->nparam_elems,
             "%s: op %s range [%lld, %lld) overlaps a later op's (which ends at %lld)", model, op->name,
             (long long)op->param_lo, (long long)op->param_hi, (long long)below);
    for (int32_t p = g->op_param_first[k]; p < g->op_param_first[k] + g->op_param_count[k]; p++) {
      const nn_param *t = &g->params[p];
      TU_CHECK(t->offset >= op->param_lo && t->offset + t->numel <= op->param_hi, "%s: %s outside op %s's range",
               model, t->name, op->name);
    }
    below = op->param_hi;
  }
}

// grad_ready: the reported prefix must only grow, and what it covers must be
// final: each newly covered range is copied when first reported and compared
// with the gradients after the whole backward.
typedef struct {
  const nn_graph *g;
  int64_t last;
  int shrank;
  float *snap;   // (nparam_elems) gradients as they were when their range was reported
} ready_log;

static void on_ready(void *ctx, int64_t upto) {
  ready_log *r = ctx;
  if (upto < r->last) r->shrank++;
  if (upto > r->last) memcpy(r->snap + r->last, r->g->grads + r->last, (size_t)(upto - r->last) * 4);
  if (upto > r->last) r->last = upto;
}

static void fill_batch(nn_graph *g, nn_step *s, int32_t *labels, uint64_t seed, int64_t classes) {
  nn_tensor *x = nn_t(g, g->input);
  tu_fill_uniform(x->data, x->numel, seed);
  for (int64_t i = 0; i < g->batch; i++) labels[i] = (int32_t)((i * 7 + (int64_t)seed) % classes);
  s->labels = labels;
}

// Forward/backward/optimizer steps of a small model; padding stays zero.
static void check_training(const char *model, int64_t size, int ch, int patch, optim_kind kind) {
  model_cfg mc;
  TU_CHECK(model_cfg_default(&mc, model, size, ch, 5), "unknown model %s", model);
  if (patch > 0) mc.patch = patch;
  if (!strncmp(model, "resnet", 6)) mc.small_stem = 1;
  nn_graph *g = mf_build(&mc, 2);
  nn_graph_finalize(g);
  check_layout(model, g);
  uint8_t *pad = padding_mask(g);
  const char *k = kind == OPTIM_SGD ? "sgd" : "adamw";
  TU_CHECK(nonzero_padding(g->params_data, pad, g->nparam_elems) == 0, "%s: parameter padding not zero after init",
           model);
  TU_CHECK(nonzero_padding(g->grads, pad, g->nparam_elems) == 0, "%s: gradient padding not zero after init", model);

  optim_cfg oc;
  optim_cfg_defaults(&oc, kind);
  oc.lr = kind == OPTIM_SGD ? 0.05f : 1e-3f;
  oc.weight_decay = 0.05f;
  oc.no_decay_norm_bias = 0;   // decay everywhere: padding must still not move
  oc.nesterov = kind == OPTIM_SGD;
  oc.clip_grad_norm = 0.5f;
  oc.freeze_below_stage = 1;   // the stem frozen
  optimizer *o = optim_create(&oc, g, 0);
  int32_t labels[2];
  nn_step s;
  nn_step_init(&s, g);
  ready_log rl = {g, 0, 0, malloc((size_t)g->nparam_elems * 4)};
  s.grad_ready = on_ready;
  s.grad_ready_ctx = &rl;
  float *frozen0 = malloc((size_t)g->nparam_elems * 4);
  memcpy(frozen0, g->params_data, (size_t)g->nparam_elems * 4);
  for (int step = 0; step < 3; step++) {
    fill_batch(g, &s, labels, 100 + (uint64_t)step, 5);
    rl.last = 0;
    nn_forward(g, &s);
    nn_backward(g, &s);
    TU_CHECK(rl.shrank == 0, "%s: grad_ready prefix shrank", model);
    TU_CHECK(rl.last == g->nparam_elems, "%s: final grad_ready %lld of %lld", model, (long long)rl.last,
             (long long)g->nparam_elems);
    TU_CHECK(memcmp(rl.snap, g->grads, (size_t)g->nparam_elems * 4) == 0,
             "%s: gradients changed after grad_ready reported them final", model);
    TU_CHECK(nonzero_padding(g->grads, pad, g->nparam_elems) == 0, "%s: backward wrote gradient padding", model);
    // The optimizer's (pre-clip) norm is the norm over the trainable tensors.
    double per = 0;
    for (int32_t i = 0; i < g->nparams; i++)
      if (!g->params[i].frozen)
        for (int64_t e = 0; e < g->params[i].numel; e++) {
          double v = g->grads[g->params[i].offset + e];
          per += v * v;
        }
    optim_step(o, g);
    TU_CHECK(fabs(o->last_grad_norm - sqrt(per)) <= 1e-6 * sqrt(per) + 1e-12, "%s %s: grad norm %.9g, want %.9g",
             model, k, o->last_grad_norm, sqrt(per));
    TU_CHECK(nonzero_padding(g->params_data, pad, g->nparam_elems) == 0, "%s %s: the optimizer moved padding", model,
             k);
    TU_CHECK(nonzero_padding(o->state1, pad, g->nparam_elems) == 0, "%s %s: optimizer state in padding", model, k);
    if (o->state2)
      TU_CHECK(nonzero_padding(o->state2, pad, g->nparam_elems) == 0, "%s %s: second moment in padding", model, k);
  }
  int64_t moved = 0, frozen_moved = 0;
  for (int32_t i = 0; i < g->nparams; i++) {
    const nn_param *p = &g->params[i];
    int diff = memcmp(g->params_data + p->offset, frozen0 + p->offset, (size_t)p->numel * 4) != 0;
    if (p->frozen) frozen_moved += diff;
    else moved += diff;
  }
  TU_CHECK(frozen_moved == 0, "%s %s: %lld frozen tensors changed", model, k, (long long)frozen_moved);
  TU_CHECK(moved > 0, "%s %s: no trainable tensor changed (optimizer did nothing?)", model, k);

  // safetensors round trip: same tensors, padding still zero.
  char path[] = "/tmp/dp_layout_XXXXXX";
  int fd = mkstemp(path);
  TU_CHECK(fd >= 0, "mkstemp");
  if (fd >= 0) close(fd);
  weights_meta meta;
  memset(&meta, 0, sizeof meta);
  meta.model = mc;
  meta.num_classes = 5;
  char err[256] = "";
  TU_CHECK(weights_save(path, g, &meta, err, sizeof err) == 0, "%s: save: %s", model, err);
  nn_graph *h = mf_build(&mc, 2);
  nn_graph_finalize(h);
  TU_CHECK(weights_load(path, h, 0, err, sizeof err) == 0, "%s: load: %s", model, err);
  TU_CHECK(memcmp(h->params_data, g->params_data, (size_t)g->nparam_elems * 4) == 0,
           "%s: flat buffer differs after a weights round trip", model);
  unlink(path);
  printf("%s %s: %d tensors, %lld parameters + %lld padding, 3 steps with padding zero\n", model, k, g->nparams,
         (long long)nn_param_count(g), (long long)(g->nparam_elems - nn_param_count(g)));
  nn_graph_destroy(h);
  free(rl.snap);
  free(frozen0);
  free(pad);
  optim_destroy(o);
  nn_graph_destroy(g);
}

int main(void) {
  // Layout of every model at its usual size, RGB and grayscale, 5 classes (the
  // issue's case: a 5-class CNN's fc.weight started at byte 20).
  static const char *const models[] = {"cnn", "resnet18", "resnet50", "vit_ti16", "vit_s16", "vit_b16"};
  for (size_t m = 0; m < sizeof models / sizeof *models; m++)
    for (int ch = 1; ch <= 3; ch += 2) {
      model_cfg mc;
      TU_CHECK(model_cfg_default(&mc, models[m], 64, ch, 5), "unknown model %s", models[m]);
      if (!strncmp(models[m], "vit", 3)) mc.patch = 16;
      nn_graph *g = mf_build(&mc, 1);
      nn_graph_finalize(g);
      check_layout(models[m], g);
      int32_t fc = nn_param_find(g, !strncmp(models[m], "vit", 3) ? "heads.head.weight" : "fc.weight");
      TU_CHECK(fc >= 0 && g->params[fc].offset * 4 % 256 == 0, "%s: head weight at byte %lld", models[m],
               fc >= 0 ? (long long)g->params[fc].offset * 4 : -1LL);
      nn_graph_destroy(g);
    }
  check_training("cnn", 32, 3, 0, OPTIM_SGD);
  check_training("cnn", 32, 1, 0, OPTIM_ADAMW);
  check_training("resnet18", 32, 3, 0, OPTIM_ADAMW);
  check_training("vit_ti16", 32, 3, 8, OPTIM_SGD);
  check_training("vit_ti16", 32, 3, 8, OPTIM_ADAMW);
  return tu_finish("test_param_layout");
}
