// add / add_relu on the CPU (the residual join): one OpenMP pass each way.
#include "backend/cpu/dnnl_util.h"
#include "nn/op_add.h"

static void add_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_add_op *op = (nn_add_op *)o;
  const float *a = nn_t(g, op->a)->data, *b = nn_t(g, op->b)->data;
  float *y = nn_t(g, op->y)->data;
  int64_t n = nn_t(g, op->y)->numel;
  if (op->relu) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
      float s = a[i] + b[i];
      y[i] = s > 0.0f ? s : 0.0f;
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  }
}

// d(input) from dy (masked by y > 0 for add_relu), written or added.
static void grad_to(float *dx, int add, const float *dy, const float *y, int relu, int64_t n) {
  if (!relu)
    cpu_copy_or_add(dx, dy, n, add);
  else
    cpu_relu_grad(dx, dy, y, n, add);
}

static void add_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_add_op *op = (nn_add_op *)o;
  const nn_tensor *y = nn_t(g, op->y);
  int64_t n = y->numel;
  int add_a = 0, add_b = 0;
  float *da = nn_grad_dst(g, op->a, &add_a);
  float *db = op->b != op->a ? nn_grad_dst(g, op->b, &add_b) : NULL;
  if (op->relu && da && db && !add_a && !add_b) {
    // The common residual case: one pass reads y and dy once, writes both.
    const float *yd = y->data, *dy = y->grad;
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
      float d = dy[i];
      d = yd[i] > 0.0f ? d : 0.0f;
      da[i] = d;
      db[i] = d;
    }
    return;
  }
  if (da) grad_to(da, add_a, y->grad, y->data, op->relu, n);
  if (op->b == op->a && da) grad_to(da, 1, y->grad, y->data, op->relu, n);   // y = a + a
  if (db) grad_to(db, add_b, y->grad, y->data, op->relu, n);
}

const nn_op_vt add_cpu_vt = {"add", NULL, add_forward, add_backward, NULL, NULL};
const nn_op_vt add_relu_cpu_vt = {"add_relu", NULL, add_forward, add_backward, NULL, NULL};
