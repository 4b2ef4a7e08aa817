// linear on the CPU: GEMMs through dnnl_sgemm (the same oneDNN as torch here).
#include "backend/cpu/dnnl_util.h"
#include "backend/cpu/gemm_cpu.h"
#include "nn/op_linear.h"

void cpu_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  DNNL_CHECK(dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc),
             "sgemm");
}

void cpu_linear_forward(int64_t m, int64_t k, int64_t n, const float *x, const float *w,
                        const float *b, float *y) {
  if (b) {
#pragma omp parallel for schedule(static) if (m * n > 32768)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) y[i * n + j] = b[j];
  }
  cpu_sgemm(0, 1, m, n, k, 1.0f, x, k, w, k, b ? 1.0f : 0.0f, y, n);
}

void cpu_linear_backward(int64_t m, int64_t k, int64_t n, const float *x, const float *w,
                         const float *dy, float *dx, int dx_add, float *dw, float *db, int dw_add) {
  if (dx) cpu_sgemm(0, 0, m, k, n, 1.0f, dy, n, w, k, dx_add ? 1.0f : 0.0f, dx, k);
  if (dw) cpu_sgemm(1, 0, n, k, m, 1.0f, dy, n, x, k, dw_add ? 1.0f : 0.0f, dw, k);
  if (db) {
#pragma omp parallel for schedule(static) if (m * n > 32768)
    for (int64_t j = 0; j < n; j++) {
      float s = 0.0f;
      for (int64_t i = 0; i < m; i++) s += dy[i * n + j];
      db[j] = dw_add ? db[j] + s : s;
    }
  }
}

static void linear_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_linear_op *op = (nn_linear_op *)o;
  cpu_linear_forward(op->rows, op->in, op->out, nn_t(g, op->x)->data, nn_param_data(g, op->w_pid),
                     op->has_bias ? nn_param_data(g, op->b_pid) : NULL, nn_t(g, op->y)->data);
}

static void linear_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_linear_op *op = (nn_linear_op *)o;
  int dx_add;
  float *dx = nn_grad_dst(g, op->x, &dx_add);
  float *dw = nn_param_grad_dst(g, op->w_pid);
  float *db = op->has_bias ? nn_param_grad_dst(g, op->b_pid) : NULL;
  cpu_linear_backward(op->rows, op->in, op->out, nn_t(g, op->x)->data, nn_param_data(g, op->w_pid),
                      nn_t(g, op->y)->grad, dx, dx_add, dw, db, ns->accumulate_grads);
}

const nn_op_vt linear_cpu_vt = {"linear", NULL, linear_forward, linear_backward, NULL, NULL};
