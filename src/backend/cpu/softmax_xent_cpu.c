// softmax cross-entropy on the CPU (formulas in nn/op_softmax_xent.h).
// Row losses are summed in double; probabilities are saved for backward.
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/dnnl_util.h"
#include "nn/op_softmax_xent.h"

static int64_t valid_rows(const nn_softmax_xent_op *op, const nn_step *ns) {
  int64_t nv = ns->num_valid;
  if (nv < 0 || nv > op->rows)
    DP_FATAL("softmax_xent", "num_valid must be in [0, batch]", "num_valid %lld, batch %lld",
             (long long)nv, (long long)op->rows);
  return nv;
}

static void check_labels(const nn_softmax_xent_op *op, const nn_step *ns, int64_t nv) {
  if (ns->soft_targets) return;
  if (!ns->labels) DP_FATAL("softmax_xent", "set the step's labels or soft_targets before forward", "no targets");
  for (int64_t i = 0; i < nv; i++)
    if (ns->labels[i] < 0 || ns->labels[i] >= op->classes)
      DP_FATAL("softmax_xent", "labels must be in [0, classes)", "row %lld label %d, %lld classes",
               (long long)i, ns->labels[i], (long long)op->classes);
}

// Per-row target coefficients a_c (loss_i = -sum_c a_c logp_c); returns sum_c a_c.
static double row_coef(const nn_softmax_xent_op *op, const nn_step *ns, int64_t i, int64_t c) {
  const float *w = op->class_weights;
  double eps = op->label_smoothing, C = (double)op->classes;
  double wc = w ? w[c] : 1.0;
  if (ns->soft_targets) return wc * ((1.0 - eps) * ns->soft_targets[i * op->classes + c] + eps / C);
  double a = eps / C * wc;
  if (c == ns->labels[i]) a += (1.0 - eps) * wc;
  return a;
}

static void xent_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_softmax_xent_op *op = (nn_softmax_xent_op *)o;
  int64_t nv = valid_rows(op, ns), C = op->classes;
  check_labels(op, ns, nv);
  const float *z = nn_t(g, op->x)->data;
  nn_tensor *y = nn_t(g, op->y);
  float *prob = y->extra;
  double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static) if (nv * C > 32768)
  for (int64_t i = 0; i < nv; i++) {
    const float *zi = z + i * C;
    float *pi = prob + i * C;
    float mx = zi[0];
    for (int64_t c = 1; c < C; c++) mx = zi[c] > mx ? zi[c] : mx;
    double se = 0.0;
    for (int64_t c = 0; c < C; c++) {
      pi[c] = expf(zi[c] - mx);
      se += pi[c];
    }
    double lse = log(se), l = 0.0;
    float inv = (float)(1.0 / se);
    for (int64_t c = 0; c < C; c++) {
      pi[c] *= inv;
      double a = row_coef(op, ns, i, c);
      if (a != 0.0) l -= a * ((double)zi[c] - mx - lse);
    }
    total += l;
  }
  double denom = (double)nv;
  if (op->class_weights && !ns->soft_targets) {
    denom = 0.0;
    for (int64_t i = 0; i < nv; i++) denom += op->class_weights[ns->labels[i]];
  }
  op->denom = (float)denom;
  y->data[0] = denom > 0.0 ? (float)(total / denom) : 0.0f;
}

static void xent_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_softmax_xent_op *op = (nn_softmax_xent_op *)o;
  int add;
  float *dz = nn_grad_dst(g, op->x, &add);
  if (!dz) return;
  int64_t nv = valid_rows(op, ns), C = op->classes, n = op->rows;
  const nn_tensor *y = nn_t(g, op->y);
  const float *prob = y->extra;
  double scale = op->denom > 0.0f ? (double)y->grad[0] / op->denom : 0.0;
#pragma omp parallel for schedule(static) if (n * C > 32768)
  for (int64_t i = 0; i < n; i++) {
    float *di = dz + i * C;
    if (i >= nv) {   // padding rows do not count
      if (!add)
        for (int64_t c = 0; c < C; c++) di[c] = 0.0f;
      continue;
    }
    double asum = 0.0;
    for (int64_t c = 0; c < C; c++) asum += row_coef(op, ns, i, c);
    for (int64_t c = 0; c < C; c++) {
      float v = (float)(scale * (asum * prob[i * C + c] - row_coef(op, ns, i, c)));
      di[c] = add ? di[c] + v : v;
    }
  }
}

static void xent_destroy(nn_op *o) {
  nn_softmax_xent_op *op = (nn_softmax_xent_op *)o;
  free(op->class_weights);
  op->class_weights = NULL;
}

const nn_op_vt softmax_xent_cpu_vt = {"softmax_xent", NULL, xent_forward, xent_backward, xent_destroy, NULL};
