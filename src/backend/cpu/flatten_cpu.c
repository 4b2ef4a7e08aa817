// flatten on the CPU: NHWC -> torch's NCHW flatten order (a transpose per
// image; a plain copy when H = W = 1 or the input is not 4-d).
#include "backend/cpu/dnnl_util.h"
#include "nn/op_flatten.h"

static void flatten_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_flatten_op *op = (nn_flatten_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  float *y = nn_t(g, op->y)->data;
  if (x->ndim != 4 || x->dim[1] * x->dim[2] == 1) {
    cpu_copy_or_add(y, x->data, x->numel, 0);
    return;
  }
  int64_t n = x->dim[0], hw = x->dim[1] * x->dim[2], c = x->dim[3];
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n; b++)
    for (int64_t i = 0; i < hw; i++)
      for (int64_t ch = 0; ch < c; ch++) y[b * hw * c + ch * hw + i] = x->data[(b * hw + i) * c + ch];
}

static void flatten_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_flatten_op *op = (nn_flatten_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *x = nn_t(g, op->x);
  const float *dy = nn_t(g, op->y)->grad;
  if (x->ndim != 4 || x->dim[1] * x->dim[2] == 1) {
    cpu_copy_or_add(dx, dy, x->numel, add);
    return;
  }
  int64_t n = x->dim[0], hw = x->dim[1] * x->dim[2], c = x->dim[3];
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n; b++)
    for (int64_t i = 0; i < hw; i++)
      for (int64_t ch = 0; ch < c; ch++) {
        float v = dy[b * hw * c + ch * hw + i];
        float *d = &dx[(b * hw + i) * c + ch];
        *d = add ? *d + v : v;
      }
}

const nn_op_vt flatten_cpu_vt = {"flatten", NULL, flatten_forward, flatten_backward, NULL, NULL};
