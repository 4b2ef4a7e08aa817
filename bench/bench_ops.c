// Per-op-kind time profile of one training step (forward + backward, no
// optimizer) of a registered model on the CPU backend.
//   bench_ops [model] [batch] [image_size] [iters] [classes]
//   e.g. OMP_NUM_THREADS=2 ./bench_ops resnet50 32 224 3
// Prints forward/backward milliseconds per op kind and img/s of fwd+bwd.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/opts.h"
#include "core/check.h"
#include "core/timer.h"
#include "nn/models/models.h"
#include "nn/ops.h"

#define MAX_KINDS 32

typedef struct {
  char model[32];
  int64_t batch, size, classes;
  int iters;
} args_t;
static const dp_opt arg_list[] = {
    DP_OPT_S(args_t, "model", model, DP_OPT_POS, "model (1st positional)"),
    DP_OPT_I(args_t, "batch", DP_OPT_I64, batch, 1, 1 << 16, DP_OPT_POS, "batch (2nd positional)"),
    DP_OPT_I(args_t, "image-size", DP_OPT_I64, size, 8, 8192, DP_OPT_POS, "image size (3rd positional)"),
    DP_OPT_I(args_t, "iters", DP_OPT_INT, iters, 1, 100000, DP_OPT_POS, "iterations (4th positional)"),
    DP_OPT_I(args_t, "classes", DP_OPT_I64, classes, 1, 100000, DP_OPT_POS, "classes (5th positional)"),
};
static const dp_opts arg_table = {"bench_ops", arg_list, 5,
                                  "usage: bench_ops [MODEL] [BATCH] [SIZE] [ITERS] [CLASSES]\n", 0};

int main(int argc, char **argv) {
  args_t a = {"resnet50", 8, 224, 1000, 3};
  int prc = dp_opts_parse(&arg_table, &a, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  const char *name = a.model;
  int64_t batch = a.batch, size = a.size, classes = a.classes;
  int iters = a.iters;
  model_cfg cfg;
  if (!model_cfg_default(&cfg, name, size, 3, classes)) {
    fprintf(stderr, "unknown model %s (%s)\n", name, model_names());
    return 2;
  }
  nn_graph *g = nn_graph_create(cpu_backend(), batch, 1);
  model_build(g, &cfg);
  nn_xent_cfg xc = {0.0f, NULL, classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_finalize(g);
  int32_t *labels = dp_malloc((size_t)batch * 4, "labels");
  for (int64_t i = 0; i < batch; i++) labels[i] = (int32_t)(i % classes);
  nn_step st;
  nn_step_init(&st, g);
  st.labels = labels;
  nn_tensor *in = nn_t(g, g->input);
  for (int64_t i = 0; i < in->numel; i++) in->data[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;

  const char *kinds[MAX_KINDS];
  double tf[MAX_KINDS] = {0}, tb[MAX_KINDS] = {0};
  double *opb = dp_calloc((size_t)g->nops, sizeof(double), "op times");
  int nk = 0;
  int *kind_of = dp_malloc((size_t)g->nops * sizeof(int), "kinds");
  for (int32_t i = 0; i < g->nops; i++) {
    int k = 0;
    while (k < nk && strcmp(kinds[k], g->ops[i]->vt->kind)) k++;
    if (k == nk && nk < MAX_KINDS) kinds[nk++] = g->ops[i]->vt->kind;
    kind_of[i] = k;
  }
  double total = 0;
  for (int it = 0; it <= iters; it++) {   // iteration 0 is warm-up
    double t0 = dp_now();
    for (int32_t i = 0; i < g->nops; i++) {
      double s = dp_now();
      g->ops[i]->vt->forward(g->ops[i], g, &st);
      if (it) tf[kind_of[i]] += dp_now() - s;
    }
    for (int32_t i = 0; i < g->ntensors; i++) g->tensors[i].grad_written = 0;
    nn_tensor *l = nn_t(g, g->loss_tensor);
    l->grad[0] = 1.0f;
    l->grad_written = 1;
    for (int32_t i = g->nops - 1; i >= 0; i--) {
      double s = dp_now();
      g->ops[i]->vt->backward(g->ops[i], g, &st);
      if (it) tb[kind_of[i]] += dp_now() - s;
      if (it) opb[i] += dp_now() - s;
    }
    double dt = dp_now() - t0;
    if (it) total += dt;
    printf("iter %d: %.3f s (loss %.4f)\n", it, dt, (double)nn_t(g, g->loss_tensor)->data[0]);
  }
  printf("%-18s %10s %10s\n", "kind", "fwd ms", "bwd ms");
  for (int k = 0; k < nk; k++) printf("%-18s %10.1f %10.1f\n", kinds[k], tf[k] / iters * 1e3, tb[k] / iters * 1e3);
  printf("%s batch %lld %lldpx: %.3f s/step fwd+bwd, %.2f img/s\n", name, (long long)batch, (long long)size,
         total / iters, (double)batch * iters / total);
  if (getenv("BENCH_OPS_DETAIL"))
    for (int32_t i = 0; i < g->nops; i++)
      printf("bwd %-32s %-18s %8.2f ms\n", g->ops[i]->name, g->ops[i]->vt->kind, opb[i] / iters * 1e3);
  free(opb);
  free(kind_of);
  free(labels);
  nn_graph_destroy(g);
  return 0;
}
