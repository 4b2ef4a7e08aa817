#include "ref_ops.h"

#include <math.h>
#include <stdlib.h>

int64_t ref_out_size(int64_t in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

#define XI(n_, h_, w_, c_) ((((n_) * g->h + (h_)) * g->w + (w_)) * g->c + (c_))

void ref_conv2d_forward(const ref_geom *g, const double *x, const double *w, const double *b, double *y) {
  int64_t oh = ref_out_size(g->h, g->k, g->stride, g->pad), ow = ref_out_size(g->w, g->k, g->stride, g->pad);
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++)
        for (int64_t o = 0; o < g->o; o++) {
          double s = b ? b[o] : 0.0;
          for (int64_t c = 0; c < g->c; c++)
            for (int u = 0; u < g->k; u++)
              for (int v = 0; v < g->k; v++) {
                int64_t hi = i * g->stride - g->pad + u, wi = j * g->stride - g->pad + v;
                if (hi < 0 || hi >= g->h || wi < 0 || wi >= g->w) continue;
                s += x[XI(n, hi, wi, c)] * w[((o * g->c + c) * g->k + u) * g->k + v];
              }
          y[((n * oh + i) * ow + j) * g->o + o] = s;
        }
}

void ref_conv2d_backward(const ref_geom *g, const double *x, const double *w, const double *dy,
                         double *dx, double *dw, double *db) {
  int64_t oh = ref_out_size(g->h, g->k, g->stride, g->pad), ow = ref_out_size(g->w, g->k, g->stride, g->pad);
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++)
        for (int64_t o = 0; o < g->o; o++) {
          double d = dy[((n * oh + i) * ow + j) * g->o + o];
          if (db) db[o] += d;
          for (int64_t c = 0; c < g->c; c++)
            for (int u = 0; u < g->k; u++)
              for (int v = 0; v < g->k; v++) {
                int64_t hi = i * g->stride - g->pad + u, wi = j * g->stride - g->pad + v;
                if (hi < 0 || hi >= g->h || wi < 0 || wi >= g->w) continue;
                int64_t wid = ((o * g->c + c) * g->k + u) * g->k + v;
                if (dx) dx[XI(n, hi, wi, c)] += d * w[wid];
                if (dw) dw[wid] += d * x[XI(n, hi, wi, c)];
              }
        }
}

// Per-channel statistics and the normalised input used by forward and backward.
static void bn_stats(const ref_geom *g, const double *x, const double *rm, const double *rv, double eps,
                     int training, int64_t c, double *mean, double *var, double *inv) {
  int64_t m = g->n * g->h * g->w;
  if (training) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < m; i++) s += x[i * g->c + c];
    *mean = s / (double)m;
    for (int64_t i = 0; i < m; i++) q += (x[i * g->c + c] - *mean) * (x[i * g->c + c] - *mean);
    *var = q / (double)m;
  } else {
    *mean = rm[c];
    *var = rv[c];
  }
  *inv = 1.0 / sqrt(*var + eps);
}

void ref_bn_forward(const ref_geom *g, const double *x, const double *w, const double *b,
                    const double *rm, const double *rv, double eps, int training, int relu,
                    double *y, double *mean, double *var) {
  int64_t m = g->n * g->h * g->w;
  for (int64_t c = 0; c < g->c; c++) {
    double mu, va, inv;
    bn_stats(g, x, rm, rv, eps, training, c, &mu, &va, &inv);
    if (mean) mean[c] = mu;
    if (var) var[c] = va;
    for (int64_t i = 0; i < m; i++) {
      double z = w[c] * (x[i * g->c + c] - mu) * inv + b[c];
      y[i * g->c + c] = relu && z < 0 ? 0.0 : z;
    }
  }
}

void ref_bn_backward(const ref_geom *g, const double *x, const double *w, const double *b,
                     const double *rm, const double *rv, double eps, int training, int relu,
                     const double *dy, double *dx, double *dw, double *db) {
  int64_t m = g->n * g->h * g->w;
  double *dz = malloc((size_t)m * sizeof(double)), *xh = malloc((size_t)m * sizeof(double));
  for (int64_t c = 0; c < g->c; c++) {
    double mu, va, inv, sdz = 0, sdzx = 0;
    bn_stats(g, x, rm, rv, eps, training, c, &mu, &va, &inv);
    for (int64_t i = 0; i < m; i++) {
      xh[i] = (x[i * g->c + c] - mu) * inv;
      double z = w[c] * xh[i] + b[c];
      dz[i] = relu && z <= 0 ? 0.0 : dy[i * g->c + c];
      sdz += dz[i];
      sdzx += dz[i] * xh[i];
    }
    if (db) db[c] += sdz;
    if (dw) dw[c] += sdzx;
    if (!dx) continue;
    for (int64_t i = 0; i < m; i++) {
      double d = training ? dz[i] - sdz / (double)m - xh[i] * sdzx / (double)m : dz[i];
      dx[i * g->c + c] += w[c] * inv * d;
    }
  }
  free(dz);
  free(xh);
}

void ref_relu_forward(int64_t n, const double *x, double *y) {
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0;
}
void ref_relu_backward(int64_t n, const double *x, const double *dy, double *dx) {
  for (int64_t i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : 0.0;
}

// Index of the first maximum of output (n, i, j, c)'s window, -1 if empty.
static int64_t pool_arg(const ref_geom *g, const double *x, int64_t n, int64_t i, int64_t j, int64_t c) {
  int64_t best = -1;
  for (int u = 0; u < g->k; u++)
    for (int v = 0; v < g->k; v++) {
      int64_t hi = i * g->stride - g->pad + u, wi = j * g->stride - g->pad + v;
      if (hi < 0 || hi >= g->h || wi < 0 || wi >= g->w) continue;
      int64_t id = XI(n, hi, wi, c);
      if (best < 0 || x[id] > x[best]) best = id;
    }
  return best;
}
void ref_maxpool_forward(const ref_geom *g, const double *x, double *y) {
  int64_t oh = ref_out_size(g->h, g->k, g->stride, g->pad), ow = ref_out_size(g->w, g->k, g->stride, g->pad);
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++)
        for (int64_t c = 0; c < g->c; c++) y[((n * oh + i) * ow + j) * g->c + c] = x[pool_arg(g, x, n, i, j, c)];
}
void ref_maxpool_backward(const ref_geom *g, const double *x, const double *dy, double *dx) {
  int64_t oh = ref_out_size(g->h, g->k, g->stride, g->pad), ow = ref_out_size(g->w, g->k, g->stride, g->pad);
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++)
        for (int64_t c = 0; c < g->c; c++) dx[pool_arg(g, x, n, i, j, c)] += dy[((n * oh + i) * ow + j) * g->c + c];
}

void ref_gap_forward(const ref_geom *g, const double *x, double *y) {
  int64_t hw = g->h * g->w;
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t c = 0; c < g->c; c++) {
      double s = 0;
      for (int64_t i = 0; i < hw; i++) s += x[(n * hw + i) * g->c + c];
      y[n * g->c + c] = s / (double)hw;
    }
}
void ref_gap_backward(const ref_geom *g, const double *dy, double *dx) {
  int64_t hw = g->h * g->w;
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t i = 0; i < hw; i++)
      for (int64_t c = 0; c < g->c; c++) dx[(n * hw + i) * g->c + c] += dy[n * g->c + c] / (double)hw;
}

void ref_flatten_forward(const ref_geom *g, const double *x, double *y) {
  int64_t hw = g->h * g->w;
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t i = 0; i < hw; i++)
      for (int64_t c = 0; c < g->c; c++) y[(n * g->c + c) * hw + i] = x[(n * hw + i) * g->c + c];
}
void ref_flatten_backward(const ref_geom *g, const double *dy, double *dx) {
  int64_t hw = g->h * g->w;
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t i = 0; i < hw; i++)
      for (int64_t c = 0; c < g->c; c++) dx[(n * hw + i) * g->c + c] += dy[(n * g->c + c) * hw + i];
}

void ref_linear_forward(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                        const double *b, double *y) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t o = 0; o < out; o++) {
      double s = b ? b[o] : 0.0;
      for (int64_t i = 0; i < in; i++) s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
}
void ref_linear_backward(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                         const double *dy, double *dx, double *dw, double *db) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t o = 0; o < out; o++) {
      double d = dy[r * out + o];
      if (db) db[o] += d;
      for (int64_t i = 0; i < in; i++) {
        if (dx) dx[r * in + i] += d * w[o * in + i];
        if (dw) dw[o * in + i] += d * x[r * in + i];
      }
    }
}

void ref_add_forward(int64_t n, const double *a, const double *b, int relu, double *y) {
  for (int64_t i = 0; i < n; i++) {
    double s = a[i] + b[i];
    y[i] = relu && s < 0 ? 0.0 : s;
  }
}
void ref_add_backward(int64_t n, const double *a, const double *b, int relu, const double *dy,
                      double *da, double *db) {
  for (int64_t i = 0; i < n; i++) {
    double d = relu && a[i] + b[i] <= 0 ? 0.0 : dy[i];
    if (da) da[i] += d;
    if (db) db[i] += d;
  }
}

void ref_dropout_forward(int64_t n, const double *x, const uint8_t *mask, double p, double *y) {
  for (int64_t i = 0; i < n; i++) y[i] = mask[i] ? x[i] / (1.0 - p) : 0.0;
}
void ref_dropout_backward(int64_t n, const uint8_t *mask, double p, const double *dy, double *dx) {
  for (int64_t i = 0; i < n; i++) dx[i] += mask[i] ? dy[i] / (1.0 - p) : 0.0;
}

// Target coefficient a[i][c]: loss_i = -sum_c a_ic logp_ic.
static double xent_coef(const ref_xent_cfg *q, int64_t i, int64_t c) {
  double w = q->weights ? q->weights[c] : 1.0, e = q->smoothing, C = (double)q->c;
  if (q->soft) return w * ((1 - e) * q->soft[i * q->c + c] + e / C);
  return w * (e / C + (c == q->labels[i] ? 1 - e : 0.0));
}
static double xent_denom(const ref_xent_cfg *q) {
  if (!q->weights || q->soft) return (double)q->num_valid;
  double d = 0;
  for (int64_t i = 0; i < q->num_valid; i++) d += q->weights[q->labels[i]];
  return d;
}
double ref_xent_forward(const ref_xent_cfg *q, const double *z) {
  double total = 0;
  for (int64_t i = 0; i < q->num_valid; i++) {
    double mx = z[i * q->c], se = 0;
    for (int64_t c = 1; c < q->c; c++) mx = fmax(mx, z[i * q->c + c]);
    for (int64_t c = 0; c < q->c; c++) se += exp(z[i * q->c + c] - mx);
    double lse = mx + log(se);
    for (int64_t c = 0; c < q->c; c++) total -= xent_coef(q, i, c) * (z[i * q->c + c] - lse);
  }
  return total / xent_denom(q);
}
void ref_xent_backward(const ref_xent_cfg *q, const double *z, double dloss, double *dz) {
  double s = dloss / xent_denom(q);
  for (int64_t i = 0; i < q->num_valid; i++) {
    double mx = z[i * q->c], se = 0, asum = 0;
    for (int64_t c = 1; c < q->c; c++) mx = fmax(mx, z[i * q->c + c]);
    for (int64_t c = 0; c < q->c; c++) {
      se += exp(z[i * q->c + c] - mx);
      asum += xent_coef(q, i, c);
    }
    for (int64_t c = 0; c < q->c; c++) {
      double p = exp(z[i * q->c + c] - mx) / se;
      dz[i * q->c + c] += s * (asum * p - xent_coef(q, i, c));
    }
  }
}
