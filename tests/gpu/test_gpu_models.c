// Whole models on the GPU against the CPU reference graph with the same
// weights and inputs: ResNet-50 (64 px, batch 2) and ViT-Ti (32 px, patch 8)
// loss and every parameter gradient, per precision; and a 10-step SGD loss
// trajectory of the baseline CNN (GPU fused optimizer vs train/optim.c).
// Label gpu: exits 77 with a message when no CUDA device is present.
//
// Tolerances (max |gpu - cpu| over a tensor, relative to that tensor's max
// |cpu|, so near-zero elements of a large tensor do not dominate):
//   fp32  1e-4 (brief's target; cuDNN/cuBLAS FMA vs oneDNN differ only in
//         summation order), loss 1e-5 relative;
//   tf32  3e-2: conv/GEMM inputs are rounded to 10 mantissa bits (~5e-4
//         each), compounded through 50 layers of ResNet-50;
//   bf16  8e-2: 8 mantissa bits (~4e-3 per rounding) on conv/GEMM operands,
//         fp32 accumulation, BN/LN/loss in fp32.
//   Trajectory (fp32, 10 steps): 1e-3 relative per step (the update feeds
//   back the small per-step differences).
// Deterministic cuDNN algorithms are requested so reruns compare equal.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cuda/cuda.h"
#include "gpu_util.h"
#include "backend/cuda/cuda_optim.h"
#include "core/rng.h"
#include "nn/backend.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "nn/optim.h"

typedef struct {
  const char *name;
  cuda_precision prec;
  double grad_tol, loss_tol;
} prec_case;

static const prec_case k_prec[] = {
    {"fp32", CUDA_PREC_FP32, 1e-4, 1e-5},
    {"tf32", CUDA_PREC_TF32, 3e-2, 1e-2},
    {"bf16", CUDA_PREC_BF16, 8e-2, 3e-2},
};

static nn_graph *build(const nn_backend_vt *b, const model_cfg *mc, int64_t batch) {
  nn_graph *g = nn_graph_create(b, batch, 7);
  model_build(g, mc);
  nn_xent_cfg xc = {0.0f, NULL, (int)mc->classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_finalize(g);
  return g;
}

// Same weights and BN buffers in the GPU graph as in the CPU graph.
static void copy_weights(nn_graph *gpu, nn_graph *cpu) {
  memcpy(nn_params_host(gpu), cpu->params_data, (size_t)cpu->nparam_elems * 4);
  nn_params_push(gpu);
  if (cpu->nbuf_elems) {
    memcpy(nn_bufs_host(gpu), cpu->buf_data, (size_t)cpu->nbuf_elems * 4);
    nn_bufs_push(gpu);
  }
}

typedef struct {
  float *x;          // host (N, H, W, C)
  int32_t *labels;   // host (N)
  int32_t *labels_dev;
} batch;

static batch make_batch(nn_graph *cpu, int64_t classes, uint64_t seed) {
  batch b;
  nn_tensor *x = nn_t(cpu, cpu->input);
  b.x = malloc((size_t)x->numel * 4);
  tu_fill_uniform(b.x, x->numel, seed);
  b.labels = malloc((size_t)cpu->batch * 4);
  for (int64_t i = 0; i < cpu->batch; i++) b.labels[i] = (int32_t)((i * 3 + (int64_t)seed) % classes);
  b.labels_dev = NULL;
  return b;
}

static void feed(nn_graph *g, nn_step *st, batch *b) {
  nn_tensor *x = nn_t(g, g->input);
  if (g->backend == NN_BACKEND_CPU) {
    memcpy(x->data, b->x, (size_t)x->numel * 4);
    st->labels = b->labels;
  } else {
    nn_backend_upload(g, x->data, b->x, (size_t)x->numel * 4);
    if (!b->labels_dev) b->labels_dev = gu_poison(g->batch * 4);
    // Through the compute stream (the backend's streams are non-blocking).
    nn_backend_upload(g, b->labels_dev, b->labels, (size_t)g->batch * 4);
    st->labels = b->labels_dev;
  }
  st->soft_targets = NULL;
  st->num_valid = g->batch;
}

static void free_batch(batch *b) {
  free(b->x);
  free(b->labels);
  if (b->labels_dev) cudaFree(b->labels_dev);
}

static void grads_vs_cpu(const char *model, int64_t size, int64_t batch_n, int patch) {
  model_cfg mc;
  if (!model_cfg_default(&mc, model, size, 3, 5)) {
    TU_CHECK(0, "unknown model %s", model);
    return;
  }
  if (patch > 0) mc.patch = patch;
  nn_graph *cpu = build(cpu_backend(), &mc, batch_n);
  batch b = make_batch(cpu, mc.classes, 11);
  nn_step cs, gs;
  nn_step_init(&cs, cpu);
  feed(cpu, &cs, &b);
  nn_forward(cpu, &cs);
  nn_backward(cpu, &cs);
  for (size_t pc = 0; pc < sizeof k_prec / sizeof *k_prec; pc++) {
    const prec_case *P = &k_prec[pc];
    cuda_backend_configure(0, P->prec, 1, 0);
    nn_graph *gpu = build(cuda_backend(), &mc, batch_n);
    copy_weights(gpu, cpu);
    nn_step_init(&gs, gpu);
    feed(gpu, &gs, &b);
    nn_forward(gpu, &gs);
    nn_backward(gpu, &gs);
    double lerr = fabs((double)gs.loss - (double)cs.loss) / (fabs((double)cs.loss) + 1e-12);
    TU_CHECK(lerr <= P->loss_tol, "%s %s: loss gpu %.8g cpu %.8g (rel %.3g > %.3g)", model, P->name,
             (double)gs.loss, (double)cs.loss, lerr, P->loss_tol);
    float *gg = malloc((size_t)cpu->nparam_elems * 4);
    nn_graph_read(gpu, gg, gpu->grads, cpu->nparam_elems);
    double worst = 0;
    const char *worst_name = "";
    for (int32_t i = 0; i < cpu->nparams; i++) {
      const nn_param *p = &cpu->params[i];
      double e = tu_rel_err(gg + p->offset, cpu->grads + p->offset, p->numel);
      if (e > worst || isnan(e)) {
        worst = e;
        worst_name = p->name;
      }
      TU_CHECK(e <= P->grad_tol, "%s %s: grad of %s rel err %.3g > %.3g", model, P->name, p->name, e, P->grad_tol);
    }
    printf("%s %s: loss %.6f (cpu %.6f), worst grad %s rel err %.3g (tol %.3g)\n", model, P->name,
           (double)gs.loss, (double)cs.loss, worst_name, worst, P->grad_tol);
    free(gg);
    if (b.labels_dev) {
      cudaFree(b.labels_dev);   // belongs to this graph's device context lifetime
      b.labels_dev = NULL;
    }
    nn_graph_destroy(gpu);
  }
  free_batch(&b);
  nn_graph_destroy(cpu);
}

static void sgd_trajectory(void) {
  model_cfg mc;
  model_cfg_default(&mc, "cnn", 32, 3, 5);
  const int64_t B = 8;
  const int steps = 10;
  nn_graph *cpu = build(cpu_backend(), &mc, B);
  cuda_backend_configure(0, CUDA_PREC_FP32, 1, 0);
  nn_graph *gpu = build(cuda_backend(), &mc, B);
  copy_weights(gpu, cpu);
  optim_cfg oc;
  optim_cfg_defaults(&oc, OPTIM_SGD);
  oc.lr = 0.05f;
  oc.momentum = 0.9f;
  oc.weight_decay = 5e-4f;
  optimizer *co = optim_create(&oc, cpu, 0);
  cuda_optimizer go;
  cuda_optim_init(&go, cuda_ctx_of(gpu->backend_ctx), &oc, gpu, 0, NULL);
  nn_step cs, gs;
  nn_step_init(&cs, cpu);
  nn_step_init(&gs, gpu);
  for (int s = 0; s < steps; s++) {
    batch b = make_batch(cpu, mc.classes, 100 + (uint64_t)s);
    feed(cpu, &cs, &b);
    nn_forward(cpu, &cs);
    nn_backward(cpu, &cs);
    optim_step(co, cpu);
    feed(gpu, &gs, &b);
    nn_forward(gpu, &gs);
    nn_backward(gpu, &gs);
    cuda_optim_step(&go, gpu, NULL, NULL);
    double rel = fabs((double)gs.loss - (double)cs.loss) / (fabs((double)cs.loss) + 1e-12);
    printf("cnn sgd step %d: loss gpu %.7f cpu %.7f (rel %.2g)\n", s, (double)gs.loss, (double)cs.loss, rel);
    TU_CHECK(rel <= 1e-3, "cnn sgd step %d: loss gpu %.8g cpu %.8g rel %.3g > 1e-3", s, (double)gs.loss,
             (double)cs.loss, rel);
    free_batch(&b);
  }
  // Final weights too (the trajectory could agree by luck on the loss alone).
  float *pg = malloc((size_t)cpu->nparam_elems * 4);
  nn_graph_read(gpu, pg, gpu->params_data, cpu->nparam_elems);
  tu_close("cnn params after 10 SGD steps", pg, cpu->params_data, cpu->nparam_elems, 1e-3);
  free(pg);
  cuda_optim_free(&go);
  optim_destroy(co);
  nn_graph_destroy(gpu);
  nn_graph_destroy(cpu);
}

int main(void) {
  gu_require_gpu();
  grads_vs_cpu("resnet50", 64, 2, 0);
  grads_vs_cpu("vit_ti16", 32, 2, 8);
  sgd_trajectory();
  return tu_finish("test_gpu_models");
}
