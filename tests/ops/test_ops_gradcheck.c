// Gradient checks without torch:
//  1) every double-precision reference op's backward (ref_ops.c) against
//     central finite differences of its forward (tolerance 1e-6);
//  2) every fp32 CPU op (forward, input grads, param grads) against that
//     reference on the same values (tolerance 1e-4 relative to the largest
//     reference element; fp32 sums of <= a few hundred terms stay ~1e-6).
// Also: accumulate_grads = 1, a tensor consumed twice, frozen params, BN
// running stats, eval mode, num_valid < batch, dropout determinism.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/conv_cpu.h"
#include "backend/cpu/gemm_cpu.h"
#include "core/check.h"
#include "nn/backend.h"
#include "nn/ops.h"
#include "op_harness.h"
#include "ref_ops.h"
#include "testutil.h"

#define TOL_FD 1e-6
#define TOL_F32 1e-4

typedef struct fdcase fdcase;
struct fdcase {
  char name[80];
  int nin;
  double *in[3];
  int64_t n[3];
  int64_t ny;
  void (*fwd)(const fdcase *c, double *y);
  void (*bwd)(const fdcase *c, const double *dy, double **gin);   // adds into gin[i] (may be NULL)
  ref_geom geo;
  int bias, training, relu;
  double eps, p;
  double *rm, *rv;
  int64_t rows, fin, fout;
  uint8_t *mask;
  ref_xent_cfg xc;
};

static double dot(const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

// The reference's backward against central differences of L = <y, dy>.
static void fd_check(fdcase *c, const double *dy) {
  double *gin[3] = {0}, *y = oh_zeros(c->ny);
  for (int i = 0; i < c->nin; i++) gin[i] = c->in[i] ? oh_zeros(c->n[i]) : NULL;
  c->bwd(c, dy, gin);
  const double h = 1e-5;
  for (int i = 0; i < c->nin; i++) {
    if (!c->in[i]) continue;
    double *fd = oh_zeros(c->n[i]);
    for (int64_t e = 0; e < c->n[i]; e++) {
      double v = c->in[i][e];
      c->in[i][e] = v + h;
      c->fwd(c, y);
      double lp = dot(y, dy, c->ny);
      c->in[i][e] = v - h;
      c->fwd(c, y);
      double lm = dot(y, dy, c->ny);
      c->in[i][e] = v;
      fd[e] = (lp - lm) / (2 * h);
    }
    char nm[128];
    snprintf(nm, sizeof nm, "fd %s d(in%d)", c->name, i);
    tu_close_d(nm, gin[i], fd, c->n[i], TOL_FD);
    free(fd);
    free(gin[i]);
  }
  free(y);
}

static void cmp_f(const char *what, const char *name, const float *got, const double *want, int64_t n) {
  float *w = oh_f(want, n);
  char nm[160];
  snprintf(nm, sizeof nm, "f32 %s %s", name, what);
  tu_close(nm, got, w, n, TOL_F32);
  free(w);
}

// Runs the fp32 graph (inputs already loaded) and compares with the reference:
// output, then grads gots[i] of c->in[i] for a random upstream gradient.
// With acc: a second backward with accumulate_grads = 1 must double the
// param grads (gots[1..]) and rewrite the input grad (gots[0]).
static void run_compare(fdcase *c, nn_graph *g, nn_tid y, float **gots, int fd, int acc) {
  double *dy = oh_rand_d(c->ny, 4242);
  if (fd) fd_check(c, dy);
  double *yr = oh_zeros(c->ny);
  c->fwd(c, yr);
  oh_forward(g);
  cmp_f("y", c->name, nn_t(g, y)->data, yr, c->ny);
  double *gin[3] = {0};
  for (int i = 0; i < c->nin; i++) gin[i] = c->in[i] ? oh_zeros(c->n[i]) : NULL;
  c->bwd(c, dy, gin);
  float *dyf = oh_f(dy, c->ny);
  oh_step()->accumulate_grads = 0;
  oh_backward(g, y, dyf);
  char what[32];
  for (int i = 0; i < c->nin; i++) {
    if (!gin[i] || !gots[i]) continue;
    snprintf(what, sizeof what, "d(in%d)", i);
    cmp_f(what, c->name, gots[i], gin[i], c->n[i]);
  }
  if (acc) {
    oh_step()->accumulate_grads = 1;
    oh_backward(g, y, dyf);
    oh_step()->accumulate_grads = 0;
    for (int i = 0; i < c->nin; i++) {
      if (!gin[i] || !gots[i]) continue;
      if (i > 0)
        for (int64_t e = 0; e < c->n[i]; e++) gin[i][e] *= 2;
      snprintf(what, sizeof what, "accumulate d(in%d)", i);
      cmp_f(what, c->name, gots[i], gin[i], c->n[i]);
    }
  }
  for (int i = 0; i < c->nin; i++) free(gin[i]);
  free(dy);
  free(dyf);
  free(yr);
}

static void load_param(nn_graph *g, const char *name, const double *v) {
  int32_t p = nn_param_find(g, name);
  if (p < 0) DP_FATAL("test", "param missing", "%s", name);
  oh_to_f(nn_param_data(g, p), v, g->params[p].numel);
}
static float *pgrad(nn_graph *g, const char *name) {
  int32_t p = nn_param_find(g, name);
  return p < 0 ? NULL : nn_param_grad(g, p);
}
static nn_tid input4(nn_graph *g, const ref_geom *q, double *x) {
  int64_t d[4] = {q->n, q->h, q->w, q->c};
  nn_tid t = nn_tensor_new(g, "x", 4, d, 1);
  (void)x;
  return t;
}

// ---- conv2d -------------------------------------------------------------------
static void conv_fwd(const fdcase *c, double *y) { ref_conv2d_forward(&c->geo, c->in[0], c->in[1], c->in[2], y); }
static void conv_bwd(const fdcase *c, const double *dy, double **g) {
  ref_conv2d_backward(&c->geo, c->in[0], c->in[1], dy, g[0], g[1], g[2]);
}

static void case_conv(int64_t n, int64_t h, int64_t w, int64_t ci, int64_t o, int k, int s, int p, int bias,
                      int fd, int acc, int frozen) {
  fdcase c = {0};
  c.geo = (ref_geom){n, h, w, ci, o, k, s, p};
  snprintf(c.name, sizeof c.name, "conv n%lld %lldx%lld c%lld o%lld k%d s%d p%d b%d%s", (long long)n,
           (long long)h, (long long)w, (long long)ci, (long long)o, k, s, p, bias, frozen ? " frozen" : "");
  int64_t oh = ref_out_size(h, k, s, p), ow = ref_out_size(w, k, s, p);
  c.nin = 3;
  c.n[0] = n * h * w * ci, c.n[1] = o * ci * k * k, c.n[2] = o;
  c.in[0] = oh_rand_d(c.n[0], 1);
  c.in[1] = oh_rand_d(c.n[1], 2);
  c.in[2] = bias ? oh_rand_d(o, 3) : NULL;
  c.ny = n * oh * ow * o;
  c.fwd = conv_fwd, c.bwd = conv_bwd;
  nn_graph *g = oh_graph(n, 1);
  nn_tid x = input4(g, &c.geo, NULL);
  nn_tid y = nn_conv2d(g, "conv", x, o, k, s, p, bias);
  nn_graph_finalize(g);
  oh_to_f(nn_t(g, x)->data, c.in[0], c.n[0]);
  load_param(g, "conv.weight", c.in[1]);
  if (bias) load_param(g, "conv.bias", c.in[2]);
  float *gots[3] = {nn_t(g, x)->grad, pgrad(g, "conv.weight"), bias ? pgrad(g, "conv.bias") : NULL};
  if (frozen) {
    // Frozen weight and bias: input grads still flow, param grads untouched.
    for (int32_t i = 0; i < g->nparams; i++) {
      g->params[i].frozen = 1;
      for (int64_t e = 0; e < g->params[i].numel; e++) nn_param_grad(g, i)[e] = 7.0f;
    }
    gots[1] = gots[2] = NULL;
  }
  run_compare(&c, g, y, gots, fd, acc);
  if (frozen) {
    int untouched = 1;
    for (int32_t i = 0; i < g->nparams; i++)
      for (int64_t e = 0; e < g->params[i].numel; e++) untouched &= nn_param_grad(g, i)[e] == 7.0f;
    TU_CHECK(untouched, "frozen conv params must keep their gradient buffer untouched");
  }
  nn_graph_destroy(g);
  for (int i = 0; i < 3; i++) free(c.in[i]);
}

// ---- batchnorm ----------------------------------------------------------------
static void bn_fwd(const fdcase *c, double *y) {
  ref_bn_forward(&c->geo, c->in[0], c->in[1], c->in[2], c->rm, c->rv, c->eps, c->training, c->relu, y, NULL, NULL);
}
static void bn_bwd(const fdcase *c, const double *dy, double **g) {
  ref_bn_backward(&c->geo, c->in[0], c->in[1], c->in[2], c->rm, c->rv, c->eps, c->training, c->relu, dy,
                  g[0], g[1], g[2]);
}

static void case_bn(int64_t n, int64_t h, int64_t w, int64_t ch, int training, int relu, int fd, int acc,
                    int twice) {
  fdcase c = {0};
  c.geo = (ref_geom){n, h, w, ch, 0, 1, 1, 0};
  snprintf(c.name, sizeof c.name, "bn%s %s n%lld %lldx%lld c%lld", relu ? "_relu" : "",
           training ? "train" : "eval", (long long)n, (long long)h, (long long)w, (long long)ch);
  c.nin = 3;
  c.n[0] = n * h * w * ch, c.n[1] = c.n[2] = ch;
  c.in[0] = oh_rand_d(c.n[0], 11);
  for (int64_t i = 0; i < c.n[0]; i++) c.in[0][i] = (double)(float)(c.in[0][i] * 2.0 + 0.5);
  c.in[1] = oh_rand_d(ch, 12);
  c.in[2] = oh_rand_d(ch, 13);
  c.rm = oh_rand_d(ch, 14);
  c.rv = oh_rand_d(ch, 15);
  for (int64_t i = 0; i < ch; i++) c.rv[i] = (double)(float)(c.rv[i] + 1.5);
  c.eps = (double)1e-5f;
  c.training = training, c.relu = relu;
  c.ny = c.n[0];
  c.fwd = bn_fwd, c.bwd = bn_bwd;
  float mom = 0.1f;
  nn_graph *g = oh_graph(n, 1);
  nn_tid x = input4(g, &c.geo, NULL);
  nn_tid y = relu ? nn_batchnorm2d_relu(g, "bn", x, mom, 1e-5f, 0) : nn_batchnorm2d(g, "bn", x, mom, 1e-5f, 0);
  nn_graph_finalize(g);
  nn_graph_set_training(g, training);
  oh_to_f(nn_t(g, x)->data, c.in[0], c.n[0]);
  load_param(g, "bn.weight", c.in[1]);
  load_param(g, "bn.bias", c.in[2]);
  float *rm = nn_buf(g, nn_buffer_find(g, "bn.running_mean")), *rv = nn_buf(g, nn_buffer_find(g, "bn.running_var"));
  oh_to_f(rm, c.rm, ch);
  oh_to_f(rv, c.rv, ch);
  float *gots[3] = {nn_t(g, x)->grad, pgrad(g, "bn.weight"), pgrad(g, "bn.bias")};
  run_compare(&c, g, y, gots, fd, acc);
  // Running statistics after one forward (train: momentum update with the
  // unbiased variance; eval: unchanged).
  double *mean = oh_zeros(ch), *var = oh_zeros(ch), *yy = oh_zeros(c.ny), *erm = oh_zeros(ch), *erv = oh_zeros(ch);
  ref_bn_forward(&c.geo, c.in[0], c.in[1], c.in[2], c.rm, c.rv, c.eps, 1, relu, yy, mean, var);
  double m = (double)(n * h * w);
  for (int64_t i = 0; i < ch; i++) {
    erm[i] = training ? 0.9 * c.rm[i] + 0.1 * mean[i] : c.rm[i];
    erv[i] = training ? 0.9 * c.rv[i] + 0.1 * var[i] * m / (m - 1) : c.rv[i];
  }
  cmp_f("running_mean", c.name, rm, erm, ch);
  cmp_f("running_var", c.name, rv, erv, ch);
  free(mean), free(var), free(yy), free(erm), free(erv);
  nn_graph_destroy(g);
  if (twice) {
    // x consumed twice: y = add_relu(bn_relu(x), x); x's grad sums both paths.
    g = oh_graph(n, 1);
    x = input4(g, &c.geo, NULL);
    nn_tid u = nn_batchnorm2d_relu(g, "bn", x, mom, 1e-5f, 0);
    y = nn_add_relu(g, "join", u, x);
    nn_graph_finalize(g);
    oh_to_f(nn_t(g, x)->data, c.in[0], c.n[0]);
    load_param(g, "bn.weight", c.in[1]);
    load_param(g, "bn.bias", c.in[2]);
    double *ur = oh_zeros(c.ny), *yr = oh_zeros(c.ny), *dy = oh_rand_d(c.ny, 77), *du = oh_zeros(c.ny);
    double *dx = oh_zeros(c.ny), *dw = oh_zeros(ch), *db = oh_zeros(ch);
    ref_bn_forward(&c.geo, c.in[0], c.in[1], c.in[2], NULL, NULL, c.eps, 1, 1, ur, NULL, NULL);
    ref_add_forward(c.ny, ur, c.in[0], 1, yr);
    ref_add_backward(c.ny, ur, c.in[0], 1, dy, du, dx);
    ref_bn_backward(&c.geo, c.in[0], c.in[1], c.in[2], NULL, NULL, c.eps, 1, 1, du, dx, dw, db);
    float *dyf = oh_f(dy, c.ny);
    oh_forward(g);
    oh_backward(g, y, dyf);
    cmp_f("y", "bn_relu+add_relu (x used twice)", nn_t(g, y)->data, yr, c.ny);
    cmp_f("dx", "bn_relu+add_relu (x used twice)", nn_t(g, x)->grad, dx, c.ny);
    cmp_f("dweight", "bn_relu+add_relu (x used twice)", pgrad(g, "bn.weight"), dw, ch);
    free(ur), free(yr), free(dy), free(du), free(dx), free(dw), free(db), free(dyf);
    nn_graph_destroy(g);
  }
  for (int i = 0; i < 3; i++) free(c.in[i]);
  free(c.rm), free(c.rv);
}

// x consumed by two convs (like a ResNet downsample): y = conv3x3(x) + conv1x1(x).
static void case_conv_twice(void) {
  ref_geom qa = {2, 6, 5, 8, 16, 3, 1, 1}, qb = {2, 6, 5, 8, 16, 1, 1, 0};
  int64_t nx = 2 * 6 * 5 * 8, ny = 2 * 6 * 5 * 16;
  double *x = oh_rand_d(nx, 31), *wa = oh_rand_d(16 * 8 * 9, 32), *wb = oh_rand_d(16 * 8, 33);
  double *ya = oh_zeros(ny), *yb = oh_zeros(ny), *yr = oh_zeros(ny), *dy = oh_rand_d(ny, 34);
  double *dx = oh_zeros(nx), *dwa = oh_zeros(16 * 8 * 9), *dwb = oh_zeros(16 * 8);
  ref_conv2d_forward(&qa, x, wa, NULL, ya);
  ref_conv2d_forward(&qb, x, wb, NULL, yb);
  ref_add_forward(ny, ya, yb, 0, yr);
  ref_conv2d_backward(&qa, x, wa, dy, dx, dwa, NULL);
  ref_conv2d_backward(&qb, x, wb, dy, dx, dwb, NULL);
  nn_graph *g = oh_graph(2, 1);
  nn_tid t = input4(g, &qa, NULL);
  nn_tid a = nn_conv2d(g, "a", t, 16, 3, 1, 1, 0);
  nn_tid b = nn_conv2d(g, "b", t, 16, 1, 1, 0, 0);
  nn_tid y = nn_add(g, "join", a, b);
  nn_graph_finalize(g);
  oh_to_f(nn_t(g, t)->data, x, nx);
  load_param(g, "a.weight", wa);
  load_param(g, "b.weight", wb);
  float *dyf = oh_f(dy, ny);
  oh_forward(g);
  oh_backward(g, y, dyf);
  cmp_f("y", "conv+conv (x used twice)", nn_t(g, y)->data, yr, ny);
  cmp_f("dx", "conv+conv (x used twice)", nn_t(g, t)->grad, dx, nx);
  cmp_f("dw a", "conv+conv (x used twice)", pgrad(g, "a.weight"), dwa, 16 * 8 * 9);
  cmp_f("dw b", "conv+conv (x used twice)", pgrad(g, "b.weight"), dwb, 16 * 8);
  nn_graph_destroy(g);
  free(x), free(wa), free(wb), free(ya), free(yb), free(yr), free(dy), free(dx), free(dwa), free(dwb), free(dyf);
}

// ---- parameter-free ops -------------------------------------------------------
static void relu_fwd(const fdcase *c, double *y) { ref_relu_forward(c->ny, c->in[0], y); }
static void relu_bwd(const fdcase *c, const double *dy, double **g) { ref_relu_backward(c->ny, c->in[0], dy, g[0]); }
static void pool_fwd(const fdcase *c, double *y) { ref_maxpool_forward(&c->geo, c->in[0], y); }
static void pool_bwd(const fdcase *c, const double *dy, double **g) { ref_maxpool_backward(&c->geo, c->in[0], dy, g[0]); }
static void gap_fwd(const fdcase *c, double *y) { ref_gap_forward(&c->geo, c->in[0], y); }
static void gap_bwd(const fdcase *c, const double *dy, double **g) { ref_gap_backward(&c->geo, dy, g[0]); }
static void flat_fwd(const fdcase *c, double *y) { ref_flatten_forward(&c->geo, c->in[0], y); }
static void flat_bwd(const fdcase *c, const double *dy, double **g) { ref_flatten_backward(&c->geo, dy, g[0]); }
static void add_fwd(const fdcase *c, double *y) { ref_add_forward(c->ny, c->in[0], c->in[1], c->relu, y); }
static void add_bwd(const fdcase *c, const double *dy, double **g) {
  ref_add_backward(c->ny, c->in[0], c->in[1], c->relu, dy, g[0], g[1]);
}
static void drop_fwd(const fdcase *c, double *y) { ref_dropout_forward(c->ny, c->in[0], c->mask, c->p, y); }
static void drop_bwd(const fdcase *c, const double *dy, double **g) { ref_dropout_backward(c->ny, c->mask, c->p, dy, g[0]); }

enum { K_RELU, K_POOL, K_GAP, K_FLAT };
static void case_unary(int kind, int64_t n, int64_t h, int64_t w, int64_t ch, int k, int s, int p) {
  fdcase c = {0};
  static const char *names[] = {"relu", "maxpool", "global_avgpool", "flatten"};
  c.geo = (ref_geom){n, h, w, ch, 0, k, s, p};
  snprintf(c.name, sizeof c.name, "%s n%lld %lldx%lld c%lld k%d s%d p%d", names[kind], (long long)n,
           (long long)h, (long long)w, (long long)ch, k, s, p);
  c.nin = 1;
  c.n[0] = n * h * w * ch;
  c.in[0] = oh_rand_d(c.n[0], 21);
  nn_graph *g = oh_graph(n, 1);
  nn_tid x = input4(g, &c.geo, NULL), y;
  switch (kind) {
    case K_RELU: y = nn_relu(g, "op", x), c.fwd = relu_fwd, c.bwd = relu_bwd; break;
    case K_POOL: y = nn_maxpool2d(g, "op", x, k, s, p), c.fwd = pool_fwd, c.bwd = pool_bwd; break;
    case K_GAP: y = nn_global_avgpool(g, "op", x), c.fwd = gap_fwd, c.bwd = gap_bwd; break;
    default: y = nn_flatten(g, "op", x), c.fwd = flat_fwd, c.bwd = flat_bwd; break;
  }
  nn_graph_finalize(g);
  c.ny = nn_t(g, y)->numel;
  oh_to_f(nn_t(g, x)->data, c.in[0], c.n[0]);
  float *gots[1] = {nn_t(g, x)->grad};
  run_compare(&c, g, y, gots, 1, 0);
  nn_graph_destroy(g);
  free(c.in[0]);
}

static void case_add(int relu) {
  fdcase c = {0};
  snprintf(c.name, sizeof c.name, "%s (2,3,5,4)", relu ? "add_relu" : "add");
  int64_t d[4] = {2, 3, 5, 4};
  c.nin = 2;
  c.n[0] = c.n[1] = c.ny = 120;
  c.in[0] = oh_rand_d(120, 41);
  c.in[1] = oh_rand_d(120, 42);
  c.relu = relu;
  c.fwd = add_fwd, c.bwd = add_bwd;
  nn_graph *g = oh_graph(2, 1);
  nn_tid a = nn_tensor_new(g, "a", 4, d, 1), b = nn_tensor_new(g, "b", 4, d, 1);
  nn_tid y = relu ? nn_add_relu(g, "op", a, b) : nn_add(g, "op", a, b);
  nn_graph_finalize(g);
  oh_to_f(nn_t(g, a)->data, c.in[0], 120);
  oh_to_f(nn_t(g, b)->data, c.in[1], 120);
  float *gots[2] = {nn_t(g, a)->grad, nn_t(g, b)->grad};
  run_compare(&c, g, y, gots, 1, 0);
  nn_graph_destroy(g);
  free(c.in[0]), free(c.in[1]);
}

// ---- linear -------------------------------------------------------------------
static void lin_fwd(const fdcase *c, double *y) { ref_linear_forward(c->rows, c->fin, c->fout, c->in[0], c->in[1], c->in[2], y); }
static void lin_bwd(const fdcase *c, const double *dy, double **g) {
  ref_linear_backward(c->rows, c->fin, c->fout, c->in[0], c->in[1], dy, g[0], g[1], g[2]);
}
static void case_linear(int ndim, const int64_t *dims, int64_t out, int bias, int fd, int acc) {
  fdcase c = {0};
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++) numel *= dims[i];
  c.fin = dims[ndim - 1], c.rows = numel / c.fin, c.fout = out;
  snprintf(c.name, sizeof c.name, "linear rows%lld in%lld out%lld b%d", (long long)c.rows, (long long)c.fin,
           (long long)out, bias);
  c.nin = 3;
  c.n[0] = numel, c.n[1] = out * c.fin, c.n[2] = out;
  c.in[0] = oh_rand_d(numel, 51);
  c.in[1] = oh_rand_d(c.n[1], 52);
  c.in[2] = bias ? oh_rand_d(out, 53) : NULL;
  c.ny = c.rows * out;
  c.fwd = lin_fwd, c.bwd = lin_bwd;
  nn_graph *g = oh_graph(dims[0], 1);
  nn_tid x = nn_tensor_new(g, "x", ndim, dims, 1);
  nn_tid y = nn_linear(g, "fc", x, out, bias);
  nn_graph_finalize(g);
  oh_to_f(nn_t(g, x)->data, c.in[0], numel);
  load_param(g, "fc.weight", c.in[1]);
  if (bias) load_param(g, "fc.bias", c.in[2]);
  float *gots[3] = {nn_t(g, x)->grad, pgrad(g, "fc.weight"), bias ? pgrad(g, "fc.bias") : NULL};
  run_compare(&c, g, y, gots, fd, acc);
  nn_graph_destroy(g);
  for (int i = 0; i < 3; i++) free(c.in[i]);
}

// ---- dropout ------------------------------------------------------------------
static void case_dropout(void) {
  fdcase c = {0};
  int64_t d[3] = {2, 50, 41}, n = 4100;
  snprintf(c.name, sizeof c.name, "dropout p0.3 (2,50,41)");
  c.nin = 1;
  c.n[0] = c.ny = n;
  c.in[0] = oh_rand_d(n, 61);
  c.p = (double)0.3f;
  c.fwd = drop_fwd, c.bwd = drop_bwd;
  nn_graph *g = oh_graph(2, 5);
  nn_tid x = nn_tensor_new(g, "x", 3, d, 1);
  nn_tid y = nn_dropout(g, "drop", x, 0.3f);
  nn_graph_finalize(g);
  oh_to_f(nn_t(g, x)->data, c.in[0], n);
  oh_step()->step = 3;
  oh_forward(g);
  uint8_t *m1 = malloc((size_t)n), *m2 = malloc((size_t)n);
  memcpy(m1, nn_t(g, y)->extra, (size_t)n);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) kept += m1[i];
  double frac = (double)kept / (double)n;   // 1 - p = 0.7, sd ~ 0.007
  TU_CHECK(fabs(frac - 0.7) < 0.035, "dropout keep fraction %.3f, want ~0.7", frac);
  int nt = omp_get_max_threads();
  omp_set_num_threads(1);
  oh_forward(g);
  omp_set_num_threads(nt);
  TU_CHECK(!memcmp(m1, nn_t(g, y)->extra, (size_t)n), "dropout mask must not depend on thread count");
  oh_step()->step = 4;
  oh_forward(g);
  memcpy(m2, nn_t(g, y)->extra, (size_t)n);
  TU_CHECK(memcmp(m1, m2, (size_t)n) != 0, "dropout mask must change with the step");
  oh_step()->step = 3;
  c.mask = m1;
  run_compare(&c, g, y, (float *[]){nn_t(g, x)->grad}, 1, 0);
  // Eval: identity.
  nn_graph_set_training(g, 0);
  oh_forward(g);
  float *xf = oh_f(c.in[0], n);
  tu_close("f32 dropout eval = identity", nn_t(g, y)->data, xf, n, 0.0);
  free(xf), free(m1), free(m2), free(c.in[0]);
  nn_graph_destroy(g);
}

// ---- softmax cross-entropy ----------------------------------------------------
static void xent_fwd(const fdcase *c, double *y) { y[0] = ref_xent_forward(&c->xc, c->in[0]); }
static void xent_bwd(const fdcase *c, const double *dy, double **g) { ref_xent_backward(&c->xc, c->in[0], dy[0], g[0]); }

static void case_xent(int64_t n, int64_t cl, int64_t nv, double smooth, int weighted, int soft) {
  fdcase c = {0};
  snprintf(c.name, sizeof c.name, "softmax_xent n%lld c%lld valid%lld ls%.2f w%d soft%d", (long long)n,
           (long long)cl, (long long)nv, smooth, weighted, soft);
  c.nin = 1;
  c.n[0] = n * cl;
  c.in[0] = oh_rand_d(c.n[0], 71);
  for (int64_t i = 0; i < c.n[0]; i++) c.in[0][i] = (double)(float)(c.in[0][i] * 3.0);
  c.ny = 1;
  c.fwd = xent_fwd, c.bwd = xent_bwd;
  int32_t *labels = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)((i * 7 + 3) % cl);
  double *wd = oh_rand_d(cl, 72), *sd = oh_rand_d(n * cl, 73);
  for (int64_t i = 0; i < cl; i++) wd[i] = (double)(float)(wd[i] + 1.5);
  for (int64_t i = 0; i < n; i++) {   // soft targets: rows on the simplex
    double s = 0;
    for (int64_t k = 0; k < cl; k++) s += (sd[i * cl + k] = fabs(sd[i * cl + k]) + 0.05);
    for (int64_t k = 0; k < cl; k++) sd[i * cl + k] = (double)(float)(sd[i * cl + k] / s);
  }
  float *wf = oh_f(wd, cl), *sf = oh_f(sd, n * cl);
  c.xc = (ref_xent_cfg){n, cl, nv, (double)(float)smooth, weighted ? wd : NULL, labels, soft ? sd : NULL};
  nn_graph *g = oh_graph(n, 1);
  int64_t d[2] = {n, cl};
  nn_tid x = nn_tensor_new(g, "logits", 2, d, 1);
  nn_xent_cfg cfg = {(float)smooth, weighted ? wf : NULL, cl};
  nn_tid y = nn_softmax_xent(g, "loss", x, &cfg);
  nn_graph_finalize(g);
  TU_CHECK(g->loss_tensor == y, "softmax_xent must set g->loss_tensor");
  oh_step()->labels = labels;
  oh_step()->soft_targets = soft ? sf : NULL;
  oh_step()->num_valid = nv;
  oh_to_f(nn_t(g, x)->data, c.in[0], c.n[0]);
  run_compare(&c, g, y, (float *[]){nn_t(g, x)->grad}, 1, 0);
  // Through the real engine entry points too (loss seeded with 1).
  nn_forward(g, oh_step());
  float want = (float)ref_xent_forward(&c.xc, c.in[0]);
  tu_close("f32 softmax_xent g->loss", &oh_step()->loss, &want, 1, TOL_F32);
  nn_graph_destroy(g);
  free(labels), free(wd), free(sd), free(wf), free(sf), free(c.in[0]);
}

// The reusable kernels other ops call (cpu_conv with private buffers,
// cpu_linear_*) against the reference, outside any graph.
static void case_kernels_direct(void) {
  ref_geom q = {2, 7, 6, 16, 24, 3, 2, 1};
  int64_t oh = ref_out_size(7, 3, 2, 1), ow = ref_out_size(6, 3, 2, 1);
  int64_t nx = 2 * 7 * 6 * 16, nw = 24 * 16 * 9, ny = 2 * oh * ow * 24;
  double *x = oh_rand_d(nx, 81), *w = oh_rand_d(nw, 82), *b = oh_rand_d(24, 83), *dy = oh_rand_d(ny, 84);
  double *y = oh_zeros(ny), *dx = oh_zeros(nx), *dw = oh_zeros(nw), *db = oh_zeros(24);
  ref_conv2d_forward(&q, x, w, b, y);
  ref_conv2d_backward(&q, x, w, dy, dx, dw, db);
  float *xf = oh_f(x, nx), *wf = oh_f(w, nw), *bf = oh_f(b, 24), *dyf = oh_f(dy, ny);
  float *yf = calloc((size_t)ny, 4), *dxf = calloc((size_t)nx, 4), *dwf = calloc((size_t)nw, 4), *dbf = calloc(24, 4);
  void *ctx = cpu_backend()->ctx_create();
  cpu_conv *cv = cpu_conv_create(ctx, 2, 16, 7, 6, 24, 3, 2, 1, 1);
  cpu_conv_forward(cv, xf, wf, bf, yf, NULL, NULL);
  cpu_conv_backward(cv, xf, wf, dyf, dxf, 0, NULL, dwf, dbf, 0, NULL, NULL);
  cmp_f("y", "cpu_conv direct", yf, y, ny);
  cmp_f("dx", "cpu_conv direct", dxf, dx, nx);
  cmp_f("dw", "cpu_conv direct", dwf, dw, nw);
  cmp_f("db", "cpu_conv direct", dbf, db, 24);
  cpu_conv_destroy(cv);
  cpu_backend()->ctx_destroy(ctx);
  // cpu_linear: x (6, 16) -> (6, 24) with the conv's first 24x16 weights.
  double *ly = oh_zeros(6 * 24), *ldx = oh_zeros(6 * 16), *ldw = oh_zeros(24 * 16), *ldb = oh_zeros(24);
  ref_linear_forward(6, 16, 24, x, w, b, ly);
  ref_linear_backward(6, 16, 24, x, w, dy, ldx, ldw, ldb);
  cpu_linear_forward(6, 16, 24, xf, wf, bf, yf);
  cpu_linear_backward(6, 16, 24, xf, wf, dyf, dxf, 0, dwf, dbf, 0);
  cmp_f("y", "cpu_linear direct", yf, ly, 6 * 24);
  cmp_f("dx", "cpu_linear direct", dxf, ldx, 6 * 16);
  cmp_f("dw", "cpu_linear direct", dwf, ldw, 24 * 16);
  cmp_f("db", "cpu_linear direct", dbf, ldb, 24);
  free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(xf), free(wf), free(bf);
  free(dyf), free(yf), free(dxf), free(dwf), free(dbf), free(ly), free(ldx), free(ldw), free(ldb);
}

int main(void) {
  case_kernels_direct();
  // conv2d: stride 1/2, padding, odd sizes, bias on/off, 1x1 and 7x7, and
  // channel counts that take oneDNN's blocked (jit) kernels.
  case_conv(2, 5, 5, 3, 4, 3, 1, 1, 1, 1, 1, 0);
  case_conv(2, 7, 6, 3, 5, 3, 2, 1, 0, 1, 0, 0);
  case_conv(1, 6, 7, 4, 3, 1, 2, 0, 1, 1, 0, 0);
  case_conv(2, 9, 9, 3, 4, 7, 2, 3, 0, 1, 0, 0);
  case_conv(2, 8, 7, 16, 32, 3, 1, 1, 0, 0, 1, 0);
  case_conv(2, 9, 9, 32, 16, 3, 2, 1, 1, 0, 1, 0);
  case_conv(2, 7, 7, 64, 32, 1, 1, 0, 0, 0, 1, 0);
  case_conv(2, 7, 7, 32, 64, 1, 2, 0, 0, 0, 0, 0);
  case_conv(2, 6, 6, 16, 16, 3, 1, 1, 1, 0, 0, 1);
  // Larger, ResNet-like shapes (other jit blockings and tails).
  case_conv(2, 20, 19, 64, 64, 3, 1, 1, 0, 0, 1, 0);
  case_conv(2, 14, 14, 256, 512, 1, 2, 0, 0, 0, 0, 0);
  case_conv(2, 15, 15, 128, 128, 3, 2, 1, 0, 0, 0, 0);
  case_conv_twice();
  // batchnorm2d(_relu): train and eval, odd sizes, a blocked channel count.
  case_bn(3, 4, 3, 5, 1, 0, 1, 1, 0);
  case_bn(3, 4, 3, 5, 1, 1, 1, 0, 1);
  case_bn(2, 3, 5, 4, 0, 0, 1, 0, 0);
  case_bn(2, 3, 5, 4, 0, 1, 1, 1, 0);
  case_bn(4, 5, 5, 32, 1, 1, 0, 1, 1);
  case_bn(2, 5, 3, 48, 0, 1, 0, 0, 0);
  case_unary(K_RELU, 2, 3, 3, 4, 1, 1, 0);
  case_unary(K_POOL, 2, 7, 7, 3, 3, 2, 1);
  case_unary(K_POOL, 2, 6, 5, 4, 2, 2, 0);
  case_unary(K_POOL, 1, 9, 8, 16, 3, 2, 1);
  case_unary(K_GAP, 2, 3, 5, 4, 1, 1, 0);
  case_unary(K_FLAT, 2, 3, 2, 4, 1, 1, 0);
  case_add(0);
  case_add(1);
  case_linear(2, (int64_t[]){4, 6}, 3, 0, 1, 1);
  case_linear(3, (int64_t[]){2, 3, 5}, 4, 1, 1, 1);
  case_linear(2, (int64_t[]){8, 64}, 40, 1, 0, 0);
  case_dropout();
  case_xent(5, 4, 5, 0.0, 0, 0);
  case_xent(6, 5, 4, 0.1, 1, 0);
  case_xent(5, 4, 5, 0.2, 0, 1);
  case_xent(6, 7, 3, 0.1, 1, 1);
  return tu_finish("test_ops_gradcheck");
}
