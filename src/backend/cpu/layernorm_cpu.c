// LayerNorm on the CPU: rows in parallel; statistics in double within a row so
// a large mean does not cancel the variance.
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "nn/op_layernorm.h"

static inline void ln_row(const float *xr, float *yr, float mf, float rs, const float *w, const float *b,
                          int64_t D) {
  for (int64_t i = 0; i < D; i++) yr[i] = (xr[i] - mf) * rs * w[i] + b[i];
}

static void layernorm_forward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_layernorm_op *op = (nn_layernorm_op *)base;
  const float *x = nn_t(g, op->x)->data;   // (rows, D)
  float *y = nn_t(g, op->y)->data;
  float *mean = nn_t(g, op->y)->extra;     // (rows)
  float *rstd = mean + op->rows;           // (rows)
  const float *w = nn_param_data(g, op->pw), *b = nn_param_data(g, op->pb);
  int64_t D = op->D;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < op->rows; r++) {
    const float *xr = x + r * D;
    double s = 0, ss = 0;
    for (int64_t i = 0; i < D; i++) s += xr[i];
    double m = s / (double)D;
    for (int64_t i = 0; i < D; i++) {
      double d = xr[i] - m;
      ss += d * d;
    }
    float rs = (float)(1.0 / sqrt(ss / (double)D + (double)op->eps));
    float mf = (float)m;
    mean[r] = mf;
    rstd[r] = rs;
    ln_row(xr, y + r * D, mf, rs, w, b, D);
  }
}

// y again from x and the saved mean / rstd (backward, when a later op's
// backward reads y): the same row code as forward, so the same bits.
void layernorm_cpu_recompute(nn_op *base, nn_graph *g) {
  nn_layernorm_op *op = (nn_layernorm_op *)base;
  const float *x = nn_t(g, op->x)->data;
  float *y = nn_t(g, op->y)->data;
  const float *mean = nn_t(g, op->y)->extra, *rstd = mean + op->rows;
  const float *w = nn_param_data(g, op->pw), *b = nn_param_data(g, op->pb);
  int64_t D = op->D;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < op->rows; r++) ln_row(x + r * D, y + r * D, mean[r], rstd[r], w, b, D);
}

static void layernorm_backward(nn_op *base, nn_graph *g, nn_step *ns) {
  nn_layernorm_op *op = (nn_layernorm_op *)base;
  nn_tensor *xt = nn_t(g, op->x), *yt = nn_t(g, op->y);
  const float *x = xt->data, *dy = yt->grad;
  const float *mean = yt->extra, *rstd = mean + op->rows;
  const float *w = nn_param_data(g, op->pw);
  int64_t D = op->D, rows = op->rows;
  int frozen = g->params[op->pw].frozen && g->params[op->pb].frozen;
  if (!frozen) {
    // dW = sum_r dy * xhat, db = sum_r dy: blocks of 64 columns in parallel,
    // so each sum has one owner (deterministic, no atomics) and every row
    // read is a contiguous run.
    float *dw = nn_param_grad(g, op->pw), *db = nn_param_grad(g, op->pb);
    int acc = ns->accumulate_grads;
    int64_t nblk = (D + 63) / 64;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nblk; blk++) {
      int64_t i0 = blk * 64, n = D - i0 < 64 ? D - i0 : 64;
      double sw[64], sb[64];
      for (int64_t i = 0; i < n; i++) sw[i] = sb[i] = 0;
      for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D + i0, *dyr = dy + r * D + i0;
        float m = mean[r], rs = rstd[r];
        for (int64_t i = 0; i < n; i++) {
          sw[i] += (double)(dyr[i] * ((xr[i] - m) * rs));
          sb[i] += (double)dyr[i];
        }
      }
      for (int64_t i = 0; i < n; i++) {
        dw[i0 + i] = (float)sw[i] + (acc ? dw[i0 + i] : 0.f);
        db[i0 + i] = (float)sb[i] + (acc ? db[i0 + i] : 0.f);
      }
    }
  }
  if (!xt->grad) return;
  int add = nn_grad_begin(g, op->x);
  float *dx = xt->grad;
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w.
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * D, *dyr = dy + r * D;
    float m = mean[r], rs = rstd[r];
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < D; i++) {
      float gi = dyr[i] * w[i];
      sg += gi;
      sgx += (double)gi * (double)((xr[i] - m) * rs);
    }
    float a = (float)(sg / (double)D), c = (float)(sgx / (double)D);
    float *dxr = dx + r * D;
    for (int64_t i = 0; i < D; i++) {
      float v = rs * (dyr[i] * w[i] - a - (xr[i] - m) * rs * c);
      dxr[i] = add ? dxr[i] + v : v;
    }
  }
}

const nn_op_vt layernorm_cpu_vt = {"layernorm", NULL, layernorm_forward, layernorm_backward, NULL, NULL};
