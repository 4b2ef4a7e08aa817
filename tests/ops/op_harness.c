#include "op_harness.h"

#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/rng.h"

static nn_step g_step;

nn_graph *oh_graph(int64_t batch, uint64_t seed) {
  nn_graph *g = nn_graph_create(cpu_backend(), batch, seed);
  nn_step_init(&g_step, g);
  return g;
}

nn_step *oh_step(void) { return &g_step; }

void oh_forward(nn_graph *g) {
  for (int32_t i = 0; i < g->nops; i++) g->ops[i]->vt->forward(g->ops[i], g, &g_step);
}

void oh_backward(nn_graph *g, nn_tid y, const float *dy) {
  for (int32_t i = 0; i < g->ntensors; i++) g->tensors[i].grad_written = 0;
  nn_tensor *t = nn_t(g, y);
  memcpy(t->grad, dy, (size_t)t->numel * 4);
  t->grad_written = 1;
  for (int32_t i = g->nops - 1; i >= 0; i--) g->ops[i]->vt->backward(g->ops[i], g, &g_step);
}

double *oh_rand_d(int64_t n, uint64_t seed) {
  double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  dp_rng r = dp_rng_stream(seed, 99);
  for (int64_t i = 0; i < n; i++) d[i] = (double)(2.0f * dp_rng_uniformf(&r) - 1.0f);
  return d;
}
void oh_to_f(float *dst, const double *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i];
}
float *oh_f(const double *src, int64_t n) {
  float *f = malloc((size_t)(n > 0 ? n : 1) * 4);
  oh_to_f(f, src, n);
  return f;
}
double *oh_zeros(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }
