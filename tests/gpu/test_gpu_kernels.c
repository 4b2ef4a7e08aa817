// Every kernel in kernels/*.cu against a host reference (double precision
// where it matters) on fresh random inputs, with poisoned outputs so an
// unwritten element fails. Label gpu: skipped (77) without a CUDA device.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_input.h"
#include "backend/cuda/dropout_hash.h"
#include "backend/cuda/kernels.h"
#include "gpu_util.h"

#define TOL 1e-5
#define K(call) CUDA_CHECK((call), #call)

static uint16_t bf16_rne(float f) {  // host reference of the bf16 cast
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
static float bf16_f(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static void test_elementwise(void) {
  const int64_t n = 100003;
  float *x = gu_randf(n, 1, 3.f), *b = gu_randf(n, 2, 3.f), *dy = gu_randf(n, 3, 1.f), *acc0 = gu_randf(n, 4, 1.f);
  float *dx = gu_up(x, n * 4), *db = gu_up(b, n * 4), *ddy = gu_up(dy, n * 4);
  float *want = malloc((size_t)n * 4), *want2 = malloc((size_t)n * 4);
  // relu forward / backward (overwrite and accumulate)
  float *dyo = gu_poison(n * 4);
  K(dp_cuda_relu_fwd(dx, dyo, n, 0));
  float *got = gu_down(dyo, n * 4);
  for (int64_t i = 0; i < n; i++) want[i] = x[i] > 0 ? x[i] : 0;
  tu_close("relu fwd", got, want, n, 0);
  free(got);
  float *dgx = gu_up(acc0, n * 4);
  K(dp_cuda_relu_bwd(dyo, ddy, dgx, n, 1, 0));
  got = gu_down(dgx, n * 4);
  for (int64_t i = 0; i < n; i++) want[i] = acc0[i] + (x[i] > 0 ? dy[i] : 0);
  tu_close("relu bwd acc", got, want, n, TOL);
  free(got);
  // add_relu forward / backward into two destinations (one overwrite, one add)
  float *dsum = gu_poison(n * 4);
  K(dp_cuda_add_relu_fwd(dx, db, dsum, n, 0));
  got = gu_down(dsum, n * 4);
  for (int64_t i = 0; i < n; i++) want[i] = x[i] + b[i] > 0 ? x[i] + b[i] : 0;
  tu_close("add_relu fwd", got, want, n, 0);
  free(got);
  float *da = gu_poison(n * 4), *dbb = gu_up(acc0, n * 4);
  K(dp_cuda_add_relu_bwd(dsum, ddy, da, 0, dbb, 1, n, 0));
  float *ga = gu_down(da, n * 4), *gb = gu_down(dbb, n * 4);
  for (int64_t i = 0; i < n; i++) {
    float m = x[i] + b[i] > 0 ? dy[i] : 0;
    want[i] = m;
    want2[i] = acc0[i] + m;
  }
  tu_close("add_relu bwd a", ga, want, n, 0);
  tu_close("add_relu bwd b", gb, want2, n, TOL);
  free(ga);
  free(gb);
  // add + grad pass
  K(dp_cuda_add_fwd(dx, db, dsum, n, 0));
  got = gu_down(dsum, n * 4);
  for (int64_t i = 0; i < n; i++) want[i] = x[i] + b[i];
  tu_close("add fwd", got, want, n, 0);
  free(got);
  // dropout vs the host replay of the same counter-based stream
  float p = 0.25f;
  uint8_t *mask = gu_poison(n);
  K(dp_cuda_dropout_fwd(dx, dsum, mask, n, p, 1234, 99, 0));
  got = gu_down(dsum, n * 4);
  uint8_t *gm = gu_down(mask, n);
  int64_t bad = 0;
  for (int64_t i = 0; i < n; i++) {
    int k = dp_dropout_keep(1234, 99, (uint64_t)i, p);
    want[i] = k ? x[i] / (1 - p) : 0;
    bad += gm[i] != k;
  }
  TU_CHECK(bad == 0, "%lld dropout mask elements differ from the host replay", (long long)bad);
  tu_close("dropout fwd", got, want, n, TOL);
  K(dp_cuda_dropout_bwd(ddy, mask, da, n, p, 0, 0));
  free(got);
  got = gu_down(da, n * 4);
  for (int64_t i = 0; i < n; i++) want[i] = gm[i] ? dy[i] / (1 - p) : 0;
  tu_close("dropout bwd", got, want, n, TOL);
  free(got);
  free(gm);
  // GELU exact
  K(dp_cuda_gelu_fwd(dx, dsum, n, 0));
  got = gu_down(dsum, n * 4);
  for (int64_t i = 0; i < n; i++) want[i] = (float)(0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0))));
  tu_close("gelu fwd", got, want, n, TOL);
  free(got);
  K(dp_cuda_gelu_bwd(dx, ddy, da, n, 0, 0));
  got = gu_down(da, n * 4);
  for (int64_t i = 0; i < n; i++) {
    double v = x[i], cdf = 0.5 * (1 + erf(v / sqrt(2.0))), pdf = exp(-0.5 * v * v) / sqrt(2 * M_PI);
    want[i] = (float)(dy[i] * (cdf + v * pdf));
  }
  tu_close("gelu bwd", got, want, n, TOL);
  free(got);
  // casts
  uint16_t *h16 = gu_poison(n * 2);
  K(dp_cuda_f32_to_bf16(dx, h16, n, 0));
  uint16_t *g16 = gu_down(h16, n * 2);
  bad = 0;
  for (int64_t i = 0; i < n; i++) bad += g16[i] != bf16_rne(x[i]);
  TU_CHECK(bad == 0, "%lld bf16 casts differ from round-to-nearest-even", (long long)bad);
  K(dp_cuda_bf16_to_f32(h16, dsum, n, 0));
  got = gu_down(dsum, n * 4);
  for (int64_t i = 0; i < n; i++) want[i] = bf16_f(g16[i]);
  tu_close("bf16 -> f32", got, want, n, 0);
  free(got);
  K(dp_cuda_f32_to_f16(dx, h16, n, 0));
  K(dp_cuda_f16_to_f32(h16, dsum, n, 0));
  got = gu_down(dsum, n * 4);
  tu_close("f32 -> f16 -> f32 (1e-3)", got, x, n, 1e-3);
  free(got);
  free(g16);
  cudaFree(h16);
  cudaFree(mask);
  cudaFree(da);
  cudaFree(dbb);
  cudaFree(dsum);
  cudaFree(dgx);
  cudaFree(dyo);
  cudaFree(dx);
  cudaFree(db);
  cudaFree(ddy);
  free(x);
  free(b);
  free(dy);
  free(acc0);
  free(want);
  free(want2);
}

static void test_input(void) {
  const int64_t pix = 5000;
  uint8_t *u = malloc((size_t)pix * 3);
  for (int64_t i = 0; i < pix * 3; i++) u[i] = (uint8_t)((i * 7919) % 256);
  float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
  uint8_t *du = gu_up(u, pix * 3);
  float *y = gu_poison(pix * 3 * 4), *want = malloc((size_t)pix * 3 * 4);
  K(dp_cuda_input_u8_to_f32(du, y, pix, 3, 3, mean, sd, 0));
  float *got = gu_down(y, pix * 3 * 4);
  for (int64_t i = 0; i < pix * 3; i++) want[i] = (float)((u[i] / 255.0 - mean[i % 3]) / sd[i % 3]);
  tu_close("input u8 -> f32", got, want, pix * 3, 1e-6);
  free(got);
  // grayscale source replicated into 3 channels
  K(dp_cuda_input_u8_to_f32(du, y, pix, 1, 3, mean, sd, 0));
  got = gu_down(y, pix * 3 * 4);
  for (int64_t i = 0; i < pix * 3; i++) want[i] = (float)((u[i / 3] / 255.0 - mean[i % 3]) / sd[i % 3]);
  tu_close("input gray -> 3ch", got, want, pix * 3, 1e-6);
  free(got);
  cudaFree(du);
  cudaFree(y);
  free(u);
  free(want);
}

static void test_rows(void) {
  const int64_t rows = 300, d = 771;
  float *x = gu_randf(rows * d, 11, 2.f), *gm = gu_randf(d, 12, 1.f), *bt = gu_randf(d, 13, 1.f),
        *dy = gu_randf(rows * d, 14, 1.f);
  for (int64_t i = 0; i < rows * d; i++) x[i] += 5.f;  // a large mean must not cancel the variance
  float *dx = gu_up(x, rows * d * 4), *dg = gu_up(gm, d * 4), *db = gu_up(bt, d * 4), *ddy = gu_up(dy, rows * d * 4);
  float *y = gu_poison(rows * d * 4), *mean = gu_poison(rows * 4), *rstd = gu_poison(rows * 4);
  K(dp_cuda_layernorm_fwd(dx, dg, db, y, mean, rstd, rows, d, 1e-5f, 0));
  float *got = gu_down(y, rows * d * 4);
  float *want = malloc((size_t)rows * d * 4), *wdx = malloc((size_t)rows * d * 4);
  double *wdg = calloc((size_t)d, 8), *wdb = calloc((size_t)d, 8);
  for (int64_t r = 0; r < rows; r++) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < d; j++) m += x[r * d + j];
    m /= d;
    for (int64_t j = 0; j < d; j++) v += (x[r * d + j] - m) * (x[r * d + j] - m);
    double rs = 1 / sqrt(v / d + 1e-5), s1 = 0, s2 = 0;
    for (int64_t j = 0; j < d; j++) {
      double xh = (x[r * d + j] - m) * rs, gg = dy[r * d + j] * gm[j];
      want[r * d + j] = (float)(xh * gm[j] + bt[j]);
      s1 += gg;
      s2 += gg * xh;
      wdg[j] += dy[r * d + j] * xh;
      wdb[j] += dy[r * d + j];
    }
    for (int64_t j = 0; j < d; j++) {
      double xh = (x[r * d + j] - m) * rs;
      wdx[r * d + j] = (float)(rs * (dy[r * d + j] * gm[j] - s1 / d - xh * s2 / d));
    }
  }
  tu_close("layernorm fwd", got, want, rows * d, 1e-5);
  free(got);
  float *pdx = gu_poison(rows * d * 4), *pdg = gu_poison(d * 4), *pdb = gu_poison(d * 4);
  float *part = gu_poison(dp_cuda_layernorm_bwd_scratch(d));
  K(dp_cuda_layernorm_bwd(dx, ddy, dg, mean, rstd, pdx, 0, pdg, pdb, 0, part, rows, d, 0));
  got = gu_down(pdx, rows * d * 4);
  tu_close("layernorm bwd dx", got, wdx, rows * d, 1e-4);
  free(got);
  float *g1 = gu_down(pdg, d * 4), *g2 = gu_down(pdb, d * 4);
  double *g1d = malloc((size_t)d * 8), *g2d = malloc((size_t)d * 8);
  for (int64_t j = 0; j < d; j++) {
    g1d[j] = g1[j];
    g2d[j] = g2[j];
  }
  tu_close_d("layernorm bwd dgamma", g1d, wdg, d, 1e-5);
  tu_close_d("layernorm bwd dbeta", g2d, wdb, d, 1e-5);
  free(g1);
  free(g2);
  free(g1d);
  free(g2d);
  // softmax
  K(dp_cuda_softmax_fwd(dx, y, rows, d, 0));
  got = gu_down(y, rows * d * 4);
  for (int64_t r = 0; r < rows; r++) {
    double mx = -INFINITY, s = 0, dot = 0;
    for (int64_t j = 0; j < d; j++) mx = fmax(mx, x[r * d + j]);
    for (int64_t j = 0; j < d; j++) s += exp(x[r * d + j] - mx);
    for (int64_t j = 0; j < d; j++) want[r * d + j] = (float)(exp(x[r * d + j] - mx) / s);
    for (int64_t j = 0; j < d; j++) dot += want[r * d + j] * dy[r * d + j];
    for (int64_t j = 0; j < d; j++) wdx[r * d + j] = (float)(want[r * d + j] * (dy[r * d + j] - dot));
  }
  tu_close("softmax fwd", got, want, rows * d, 1e-5);
  free(got);
  K(dp_cuda_softmax_bwd(y, ddy, pdx, rows, d, 0, 0));
  got = gu_down(pdx, rows * d * 4);
  tu_close("softmax bwd", got, wdx, rows * d, 1e-5);
  free(got);
  void *bufs[] = {dx, dg, db, ddy, y, mean, rstd, pdx, pdg, pdb, part};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cudaFree(bufs[i]);
  free(x);
  free(gm);
  free(bt);
  free(dy);
  free(want);
  free(wdx);
  free(wdg);
  free(wdb);
}

// Host reference of the cross-entropy (formulas in kernels.h / op_softmax_xent.h).
static double xent_ref(const float *z, const int32_t *lab, const float *soft, const float *w, float eps, int64_t n,
                       int64_t c, int64_t nv, float *dz) {
  double total = 0, den = 0;
  double *q = malloc((size_t)c * 8), *p = malloc((size_t)c * 8);
  for (int64_t i = 0; i < n; i++) {
    if (i >= nv || (!soft && lab[i] < 0)) continue;
    double mx = -INFINITY, s = 0, qs = 0;
    for (int64_t k = 0; k < c; k++) mx = fmax(mx, z[i * c + k]);
    for (int64_t k = 0; k < c; k++) s += exp(z[i * c + k] - mx);
    double lse = mx + log(s);
    for (int64_t k = 0; k < c; k++) {
      double wk = w ? w[k] : 1;
      q[k] = soft ? wk * ((1 - eps) * soft[i * c + k] + eps / c) : eps / c * wk + (k == lab[i] ? (1 - eps) * wk : 0);
      qs += q[k];
      p[k] = exp(z[i * c + k] - lse);
      total += q[k] * (lse - z[i * c + k]);
    }
    den += soft ? 1 : (w ? w[lab[i]] : 1);
    for (int64_t k = 0; k < c; k++) dz[i * c + k] = (float)(qs * p[k] - q[k]);  // scaled below
  }
  for (int64_t i = 0; i < n * c; i++) {
    int64_t r = i / c;
    if (r >= nv || (!soft && lab[r] < 0)) dz[i] = 0;
    else dz[i] = (float)(dz[i] / den);
  }
  free(q);
  free(p);
  return total / den;
}

static void test_xent(void) {
  const int64_t n = 67, c = 12, nv = 60;
  float *z = gu_randf(n * c, 21, 4.f), *w = gu_randf(c, 22, 0.5f), *soft = gu_randf(n * c, 23, 1.f);
  for (int64_t k = 0; k < c; k++) w[k] += 1.0f;
  for (int64_t i = 0; i < n; i++) {  // soft targets: rows sum to 1
    double s = 0;
    for (int64_t k = 0; k < c; k++) s += soft[i * c + k] = fabsf(soft[i * c + k]);
    for (int64_t k = 0; k < c; k++) soft[i * c + k] = (float)(soft[i * c + k] / s);
  }
  int32_t *lab = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) lab[i] = (int32_t)((i * 5) % c);
  lab[3] = -1;  // ignored row
  float *dz_ = gu_up(z, n * c * 4), *dw = gu_up(w, c * 4), *dsoft = gu_up(soft, n * c * 4);
  int32_t *dlab = gu_up(lab, n * 4);
  float *lse = gu_poison(n * 4), *den = gu_poison(4), *scr = gu_poison(2 * n * 4), *loss = gu_poison(4);
  float one = 1.0f;
  float *dl = gu_up(&one, 4), *dg = gu_poison(n * c * 4), *want = malloc((size_t)n * c * 4);
  for (int mode = 0; mode < 4; mode++) {
    const float *wt = (mode & 1) ? dw : NULL;
    int use_soft = mode >= 2;
    float eps = 0.1f;
    double ref = xent_ref(z, lab, use_soft ? soft : NULL, (mode & 1) ? w : NULL, eps, n, c, nv, want);
    K(dp_cuda_xent_fwd(dz_, use_soft ? NULL : dlab, use_soft ? dsoft : NULL, wt, eps, n, c, nv, lse, den, scr, loss, 0));
    float *gl = gu_down(loss, 4);
    char name[64];
    snprintf(name, sizeof name, "xent loss (weights %d soft %d)", mode & 1, use_soft);
    float rf = (float)ref;
    tu_close(name, gl, &rf, 1, 1e-5);
    free(gl);
    K(dp_cuda_xent_bwd(dz_, use_soft ? NULL : dlab, use_soft ? dsoft : NULL, wt, eps, n, c, nv, lse, den, dl, dg, 0, 0));
    float *gg = gu_down(dg, n * c * 4);
    snprintf(name, sizeof name, "xent grad (weights %d soft %d)", mode & 1, use_soft);
    tu_close(name, gg, want, n * c, 1e-5);
    free(gg);
  }
  void *bufs[] = {dz_, dw, dsoft, dlab, lse, den, scr, loss, dl, dg};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cudaFree(bufs[i]);
  free(z);
  free(w);
  free(soft);
  free(lab);
  free(want);
}

static void test_pool_layout(void) {
  const int64_t n = 3, hw = 49, c = 130;
  float *x = gu_randf(n * hw * c, 31, 1.f), *dy = gu_randf(n * c, 32, 1.f);
  float *dx = gu_up(x, n * hw * c * 4), *ddy = gu_up(dy, n * c * 4), *y = gu_poison(n * c * 4);
  float *want = malloc((size_t)n * hw * c * 4);
  K(dp_cuda_global_avgpool_fwd(dx, y, n, hw, c, 0));
  float *got = gu_down(y, n * c * 4);
  for (int64_t b = 0; b < n; b++)
    for (int64_t ch = 0; ch < c; ch++) {
      double s = 0;
      for (int64_t p = 0; p < hw; p++) s += x[(b * hw + p) * c + ch];
      want[b * c + ch] = (float)(s / hw);
    }
  tu_close("global avgpool fwd", got, want, n * c, 1e-6);
  free(got);
  float *g = gu_poison(n * hw * c * 4);
  K(dp_cuda_global_avgpool_bwd(ddy, g, n, hw, c, 0, 0));
  got = gu_down(g, n * hw * c * 4);
  for (int64_t i = 0; i < n * hw * c; i++) want[i] = dy[(i / (hw * c)) * c + i % c] / (float)hw;
  tu_close("global avgpool bwd", got, want, n * hw * c, 1e-6);
  free(got);
  // NHWC -> NCHW -> NHWC round trip and one element checked by index
  K(dp_cuda_nhwc_to_nchw(dx, g, n, hw, c, 0, 0));
  got = gu_down(g, n * hw * c * 4);
  for (int64_t b = 0; b < n; b++)
    for (int64_t ch = 0; ch < c; ch++)
      for (int64_t p = 0; p < hw; p++) want[(b * c + ch) * hw + p] = x[(b * hw + p) * c + ch];
  tu_close("nhwc -> nchw", got, want, n * hw * c, 0);
  free(got);
  float *back = gu_poison(n * hw * c * 4);
  K(dp_cuda_nchw_to_nhwc(g, back, n, hw, c, 0, 0));
  got = gu_down(back, n * hw * c * 4);
  tu_close("nchw -> nhwc", got, x, n * hw * c, 0);
  free(got);
  // column sums (broadcast parameter gradient)
  float *cs = gu_poison(c * 4);
  K(dp_cuda_colsum(dx, c, n * hw, c, cs, 0, 0));
  got = gu_down(cs, c * 4);
  for (int64_t ch = 0; ch < c; ch++) {
    double s = 0;
    for (int64_t r = 0; r < n * hw; r++) s += x[r * c + ch];
    want[ch] = (float)s;
  }
  tu_close("colsum", got, want, c, 1e-5);
  free(got);
  void *bufs[] = {dx, ddy, y, g, back, cs};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cudaFree(bufs[i]);
  free(x);
  free(dy);
  free(want);
}

static void test_optim(void) {
  const int64_t n = 50000;
  float *p = gu_randf(n, 41, 1.f), *gr = gu_randf(n, 42, 1.f), *m = gu_randf(n, 43, 0.1f), *v = gu_randf(n, 44, 0.1f);
  for (int64_t i = 0; i < n; i++) v[i] = fabsf(v[i]);
  // {lo, hi, lr_mult, weight_decay, frozen, param0, bc1, sqrt_bc2}: AdamW bias
  // corrections per segment (per-tensor step counts): segment 0 at its step
  // 3, segment 1 at its first step (unfrozen later), segment 2 frozen.
  const int seg_step[3] = {3, 1, 1};
  dp_optim_segment seg[3] = {{0, 1000, 1.f, 0.f, 0, 0, 0.f, 0.f},
                             {1000, 20000, 0.1f, 0.05f, 0, 1, 0.f, 0.f},
                             {20000, n, 1.f, 0.05f, 1, 2, 0.f, 0.f}};
  for (int k = 0; k < 3; k++) {
    seg[k].bc1 = (float)(1.0 - pow((double)0.9f, seg_step[k]));
    seg[k].sqrt_bc2 = (float)sqrt(1.0 - pow((double)0.999f, seg_step[k]));
  }
  dp_optim_segment *dseg = gu_up(seg, sizeof seg);
  float gs = 0.5f;
  float *dgs = gu_up(&gs, 4);
  // SGD nesterov, not the first step
  float *dp_ = gu_up(p, n * 4), *dg = gu_up(gr, n * 4), *dm = gu_up(m, n * 4), *dv = gu_up(v, n * 4);
  K(dp_cuda_sgd_step(dp_, dg, dm, NULL, dseg, 3, n, 0.1f, 0.9f, 1, 0, dgs, NULL, 0));
  float *gp = gu_down(dp_, n * 4), *gm = gu_down(dm, n * 4);
  float *wp = malloc((size_t)n * 4), *wm = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) {
    int s = i < 1000 ? 0 : i < 20000 ? 1 : 2;
    if (seg[s].frozen) {
      wp[i] = p[i];
      wm[i] = m[i];
      continue;
    }
    float d = gr[i] * gs + seg[s].weight_decay * p[i];
    float b = 0.9f * m[i] + d;
    wm[i] = b;
    wp[i] = p[i] - 0.1f * seg[s].lr_mult * (d + 0.9f * b);
  }
  tu_close("sgd nesterov params", gp, wp, n, 1e-6);
  tu_close("sgd momentum", gm, wm, n, 1e-6);
  free(gp);
  free(gm);
  // AdamW, skipped first (skip flag set), then applied
  cudaMemcpy(dp_, p, (size_t)n * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dm, m, (size_t)n * 4, cudaMemcpyHostToDevice);
  int32_t one = 1;
  int32_t *dskip = gu_up(&one, 4);
  K(dp_cuda_adamw_step(dp_, dg, dm, dv, NULL, dseg, 3, n, 1e-3f, 0.9f, 0.999f, 1e-8f, NULL, dskip, 0));
  gp = gu_down(dp_, n * 4);
  tu_close("adamw skipped step leaves params", gp, p, n, 0);
  free(gp);
  K(dp_cuda_adamw_step(dp_, dg, dm, dv, NULL, dseg, 3, n, 1e-3f, 0.9f, 0.999f, 1e-8f, NULL, NULL, 0));
  gp = gu_down(dp_, n * 4);
  for (int64_t i = 0; i < n; i++) {
    int s = i < 1000 ? 0 : i < 20000 ? 1 : 2;
    if (seg[s].frozen) {
      wp[i] = p[i];
      continue;
    }
    double bc1 = 1 - pow((double)0.9f, seg_step[s]), bc2 = 1 - pow((double)0.999f, seg_step[s]);
    double lr = 1e-3 * seg[s].lr_mult, w = p[i] * (1 - lr * seg[s].weight_decay);
    double mi = 0.9 * m[i] + 0.1 * gr[i], vi = 0.999 * v[i] + 0.001 * gr[i] * gr[i];
    wp[i] = (float)(w - lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + 1e-8));
  }
  tu_close("adamw params", gp, wp, n, 1e-6);
  free(gp);
  // global norm with unscale and clipping factor
  double *part = gu_poison(dp_cuda_norm_scratch());
  float *dnorm = gu_poison(4), *dgs2 = gu_poison(4);
  K(dp_cuda_grad_norm(dg, n, 0.25f, 1.0f, part, dnorm, dgs2, 0));
  float *gn = gu_down(dnorm, 4), *gsc = gu_down(dgs2, 4);
  double ss = 0;
  for (int64_t i = 0; i < n; i++) ss += (double)(gr[i] * 0.25f) * (gr[i] * 0.25f);
  float wn = (float)sqrt(ss), wsc = 0.25f * fminf(1.f, 1.f / (wn + 1e-6f));
  tu_close("grad norm", gn, &wn, 1, 1e-6);
  tu_close("grad scale (unscale x clip)", gsc, &wsc, 1, 1e-6);
  free(gn);
  free(gsc);
  // inf/nan check: clean, then one NaN deep inside
  int32_t *found = gu_poison(4);
  K(dp_cuda_nonfinite_check(dg, n, found, 0));
  int32_t *f = gu_down(found, 4);
  TU_CHECK(*f == 0, "clean gradients flagged");
  free(f);
  float nanv = NAN;
  cudaMemcpy(dg + 31337, &nanv, 4, cudaMemcpyHostToDevice);
  K(dp_cuda_nonfinite_check(dg, n, found, 0));
  f = gu_down(found, 4);
  TU_CHECK(*f == 1, "NaN not flagged");
  free(f);
  void *bufs[] = {dseg, dgs, dp_, dg, dm, dv, dskip, part, dnorm, dgs2, found};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cudaFree(bufs[i]);
  free(p);
  free(gr);
  free(m);
  free(v);
  free(wp);
  free(wm);
}

// Pinned double-buffered input: four steps alternating slots, each checked.
static void test_input_path(void) {
  cuda_backend_configure(-1, CUDA_PREC_FP32, 1, 0);
  cuda_ctx *cx = cuda_backend_ctx_create();
  const int64_t b = 4, h = 8, w = 8;
  float mean[3] = {0.5f, 0.5f, 0.5f}, sd[3] = {0.25f, 0.25f, 0.25f};
  cuda_input in;
  cuda_input_init(&in, cx, b, h, w, 3, 3, mean, sd);
  float *dst = gu_poison(b * h * w * 3 * 4), *want = malloc((size_t)(b * h * w * 3) * 4);
  for (int step = 0; step < 4; step++) {
    int32_t *lab;
    uint8_t *p = cuda_input_host_slot(&in, step, &lab);
    for (int64_t i = 0; i < b * h * w * 3; i++) p[i] = (uint8_t)(i * 3 + step * 17);
    for (int64_t i = 0; i < b; i++) lab[i] = (int32_t)(i + 10 * step);
    cuda_input_submit(&in, step, b);
    const int32_t *dl = cuda_input_to_graph(&in, step, b, dst);
    float *got = gu_down(dst, b * h * w * 3 * 4);
    int32_t *gl = gu_down(dl, b * 4);
    for (int64_t i = 0; i < b * h * w * 3; i++) want[i] = (float)(((uint8_t)(i * 3 + step * 17) / 255.0 - 0.5) / 0.25);
    char name[64];
    snprintf(name, sizeof name, "input path step %d", step);
    tu_close(name, got, want, b * h * w * 3, 1e-6);
    TU_CHECK(gl[0] == 10 * step && gl[b - 1] == (int32_t)(b - 1 + 10 * step), "labels of step %d", step);
    free(got);
    free(gl);
  }
  cudaFree(dst);
  free(want);
  cuda_input_free(&in);
  cuda_backend_ctx_destroy(cx);
}

int main(void) {
  gu_require_gpu();
  test_input_path();
  test_elementwise();
  test_input();
  test_rows();
  test_xent();
  test_pool_layout();
  test_optim();
  return tu_finish("test_gpu_kernels");
}
