// relu on the CPU: OpenMP loops; backward masks by the output (y > 0), as
// torch's threshold_backward does.
#include "backend/cpu/dnnl_util.h"
#include "nn/op_relu.h"

static void relu_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_relu_op *op = (nn_relu_op *)o;
  const float *x = nn_t(g, op->x)->data;
  float *y = nn_t(g, op->y)->data;
  int64_t n = nn_t(g, op->y)->numel;
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_relu_op *op = (nn_relu_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const float *y = nn_t(g, op->y)->data, *dy = nn_t(g, op->y)->grad;
  int64_t n = nn_t(g, op->y)->numel;
  cpu_relu_grad(dx, dy, y, n, add);
}

const nn_op_vt relu_cpu_vt = {"relu", NULL, relu_forward, relu_backward, NULL, NULL};
