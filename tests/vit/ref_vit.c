#include "ref_vit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref_layernorm_fwd(const double *x, const double *w, const double *b, int64_t rows, int64_t D,
                       double eps, double *y) {
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = x + r * D;
    double m = 0, v = 0;
    for (int64_t i = 0; i < D; i++) m += xr[i];
    m /= (double)D;
    for (int64_t i = 0; i < D; i++) v += (xr[i] - m) * (xr[i] - m);
    v /= (double)D;
    for (int64_t i = 0; i < D; i++) y[r * D + i] = (xr[i] - m) / sqrt(v + eps) * w[i] + b[i];
  }
}

void ref_layernorm_bwd(const double *x, const double *w, const double *dy, int64_t rows, int64_t D,
                       double eps, double *dx, double *dw, double *db) {
  memset(dw, 0, (size_t)D * sizeof(double));
  memset(db, 0, (size_t)D * sizeof(double));
  double *xh = malloc((size_t)D * sizeof(double));
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = x + r * D, *g = dy + r * D;
    double m = 0, v = 0;
    for (int64_t i = 0; i < D; i++) m += xr[i];
    m /= (double)D;
    for (int64_t i = 0; i < D; i++) v += (xr[i] - m) * (xr[i] - m);
    v /= (double)D;
    double rs = 1.0 / sqrt(v + eps);
    for (int64_t i = 0; i < D; i++) xh[i] = (xr[i] - m) * rs;
    // Full Jacobian of xhat w.r.t. x, applied to g*w (O(D^2): clarity over speed).
    for (int64_t j = 0; j < D; j++) {
      double s = 0;
      for (int64_t i = 0; i < D; i++) {
        double J = ((i == j) - 1.0 / (double)D - xh[i] * xh[j] / (double)D) * rs;   // dxh_i/dx_j
        s += g[i] * w[i] * J;
      }
      dx[r * D + j] = s;
    }
    for (int64_t i = 0; i < D; i++) {
      dw[i] += g[i] * xh[i];
      db[i] += g[i];
    }
  }
  free(xh);
}

void ref_gelu_fwd(const double *x, int64_t n, double *y) {
  for (int64_t i = 0; i < n; i++) y[i] = 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0)));
}
void ref_gelu_bwd(const double *x, const double *dy, int64_t n, double *dx) {
  for (int64_t i = 0; i < n; i++) {
    double cdf = 0.5 * (1 + erf(x[i] / sqrt(2.0)));
    double pdf = exp(-0.5 * x[i] * x[i]) / sqrt(2 * M_PI);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

void ref_softmax_fwd(const double *x, int64_t rows, int64_t L, double *y) {
  for (int64_t r = 0; r < rows; r++) {
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < L; i++) mx = fmax(mx, x[r * L + i]);
    for (int64_t i = 0; i < L; i++) s += exp(x[r * L + i] - mx);
    for (int64_t i = 0; i < L; i++) y[r * L + i] = exp(x[r * L + i] - mx) / s;
  }
}
void ref_softmax_bwd(const double *x, const double *dy, int64_t rows, int64_t L, double *dx) {
  double *y = malloc((size_t)(rows * L) * sizeof(double));
  ref_softmax_fwd(x, rows, L, y);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < L; j++) {   // dx_j = sum_i dy_i * y_i * (delta_ij - y_j)
      double s = 0;
      for (int64_t i = 0; i < L; i++) s += dy[r * L + i] * y[r * L + i] * ((i == j) - y[r * L + j]);
      dx[r * L + j] = s;
    }
  free(y);
}

// Index of q/k/v element (n, t, head h, channel c) in the packed qkv tensor.
#define QKV(which, n, t, h, c) ((((n) * T + (t)) * 3 + (which)) * D + (h) * dh + (c))

void ref_attention_fwd(const double *qkv, int64_t N, int64_t T, int64_t D, int64_t H, double *y) {
  int64_t dh = D / H;
  double sc = 1.0 / sqrt((double)dh);
  double *s = malloc((size_t)T * sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < T; i++) {
        for (int64_t j = 0; j < T; j++) {
          double d = 0;
          for (int64_t c = 0; c < dh; c++) d += qkv[QKV(0, n, i, h, c)] * qkv[QKV(1, n, j, h, c)];
          s[j] = d * sc;
        }
        ref_softmax_fwd(s, 1, T, s);
        for (int64_t c = 0; c < dh; c++) {
          double o = 0;
          for (int64_t j = 0; j < T; j++) o += s[j] * qkv[QKV(2, n, j, h, c)];
          y[(n * T + i) * D + h * dh + c] = o;
        }
      }
  free(s);
}

void ref_attention_bwd(const double *qkv, const double *dy, int64_t N, int64_t T, int64_t D,
                       int64_t H, double *dqkv) {
  int64_t dh = D / H;
  double sc = 1.0 / sqrt((double)dh);
  double *s = malloc((size_t)T * sizeof(double)), *dp = malloc((size_t)T * sizeof(double));
  double *ds = malloc((size_t)T * sizeof(double));
  memset(dqkv, 0, (size_t)(N * T * 3 * D) * sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < T; i++) {   // query row i
        double *sraw = malloc((size_t)T * sizeof(double));
        for (int64_t j = 0; j < T; j++) {
          double d = 0;
          for (int64_t c = 0; c < dh; c++) d += qkv[QKV(0, n, i, h, c)] * qkv[QKV(1, n, j, h, c)];
          sraw[j] = d * sc;
        }
        ref_softmax_fwd(sraw, 1, T, s);
        const double *g = dy + (n * T + i) * D + h * dh;
        for (int64_t j = 0; j < T; j++) {
          double d = 0;
          for (int64_t c = 0; c < dh; c++) {
            d += g[c] * qkv[QKV(2, n, j, h, c)];
            dqkv[QKV(2, n, j, h, c)] += s[j] * g[c];   // dv_j += p_ij dO_i
          }
          dp[j] = d;
        }
        ref_softmax_bwd(sraw, dp, 1, T, ds);
        for (int64_t j = 0; j < T; j++)
          for (int64_t c = 0; c < dh; c++) {
            dqkv[QKV(0, n, i, h, c)] += ds[j] * sc * qkv[QKV(1, n, j, h, c)];
            dqkv[QKV(1, n, j, h, c)] += ds[j] * sc * qkv[QKV(0, n, i, h, c)];
          }
        free(sraw);
      }
  free(s);
  free(dp);
  free(ds);
}
#undef QKV

#define XI(n, y, x, c) ((((n) * H + (y)) * W + (x)) * C + (c))
#define WI(d, c, ky, kx) ((((d) * C + (c)) * p + (ky)) * p + (kx))

void ref_patch_fwd(const double *x, const double *w, const double *b, int64_t N, int64_t H,
                   int64_t W, int64_t C, int64_t D, int64_t p, double *y) {
  int64_t gh = H / p, gw = W / p;
  for (int64_t n = 0; n < N; n++)
    for (int64_t i = 0; i < gh; i++)
      for (int64_t j = 0; j < gw; j++)
        for (int64_t d = 0; d < D; d++) {
          double s = b[d];
          for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < p; ky++)
              for (int64_t kx = 0; kx < p; kx++) s += w[WI(d, c, ky, kx)] * x[XI(n, i * p + ky, j * p + kx, c)];
          y[((n * gh + i) * gw + j) * D + d] = s;
        }
}

void ref_patch_bwd(const double *x, const double *w, const double *dy, int64_t N, int64_t H,
                   int64_t W, int64_t C, int64_t D, int64_t p, double *dx, double *dw, double *db) {
  int64_t gh = H / p, gw = W / p;
  memset(dx, 0, (size_t)(N * H * W * C) * sizeof(double));
  memset(dw, 0, (size_t)(D * C * p * p) * sizeof(double));
  memset(db, 0, (size_t)D * sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t i = 0; i < gh; i++)
      for (int64_t j = 0; j < gw; j++)
        for (int64_t d = 0; d < D; d++) {
          double g = dy[((n * gh + i) * gw + j) * D + d];
          db[d] += g;
          for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < p; ky++)
              for (int64_t kx = 0; kx < p; kx++) {
                dw[WI(d, c, ky, kx)] += g * x[XI(n, i * p + ky, j * p + kx, c)];
                dx[XI(n, i * p + ky, j * p + kx, c)] += g * w[WI(d, c, ky, kx)];
              }
        }
}
#undef XI
#undef WI

void ref_cls_fwd(const double *x, const double *cls, int64_t N, int64_t T, int64_t D, double *y) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t t = 0; t <= T; t++)
      for (int64_t d = 0; d < D; d++)
        y[(n * (T + 1) + t) * D + d] = t == 0 ? cls[d] : x[(n * T + t - 1) * D + d];
}
void ref_cls_bwd(const double *dy, int64_t N, int64_t T, int64_t D, double *dx, double *dcls) {
  for (int64_t d = 0; d < D; d++) dcls[d] = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t t = 0; t <= T; t++)
      for (int64_t d = 0; d < D; d++) {
        double g = dy[(n * (T + 1) + t) * D + d];
        if (t == 0) dcls[d] += g;
        else dx[(n * T + t - 1) * D + d] = g;
      }
}

void ref_pos_fwd(const double *x, const double *pos, int64_t N, int64_t T, int64_t D, double *y) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t i = 0; i < T * D; i++) y[n * T * D + i] = x[n * T * D + i] + pos[i];
}
void ref_pos_bwd(const double *dy, int64_t N, int64_t T, int64_t D, double *dx, double *dpos) {
  for (int64_t i = 0; i < T * D; i++) dpos[i] = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t i = 0; i < T * D; i++) {
      dx[n * T * D + i] = dy[n * T * D + i];
      dpos[i] += dy[n * T * D + i];
    }
}

void ref_tok0_fwd(const double *x, int64_t N, int64_t T, int64_t D, double *y) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t d = 0; d < D; d++) y[n * D + d] = x[n * T * D + d];
}
void ref_tok0_bwd(const double *dy, int64_t N, int64_t T, int64_t D, double *dx) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t i = 0; i < T * D; i++) dx[n * T * D + i] = i < D ? dy[n * D + i] : 0;
}
