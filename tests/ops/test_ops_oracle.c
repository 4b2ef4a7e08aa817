// Per-op PyTorch oracle: every op's output and input/weight gradients (and
// BN running statistics after one forward) against torch 1.13 on the inputs,
// weights and upstream gradient stored by make_op_fixtures.py. Images are
// stored NCHW by torch and transposed to our NHWC here. Tolerance: 1e-4
// relative to the largest reference element (tu_close).
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/check.h"
#include "nn/ops.h"
#include "op_harness.h"
#include "testutil.h"

#define TOL 1e-4

static char g_file[1024];

// Reads /<grp>/<name>; fails the test (returns NULL) if absent or the wrong size.
static float *rd(const char *grp, const char *name, int64_t want) {
  char path[256];
  snprintf(path, sizeof path, "/%s/%s", grp, name);
  int64_t n = 0;
  float *v = tu_h5_read_f32(g_file, path, &n);
  TU_CHECK(v && n == want, "%s: have %lld elements, want %lld", path, (long long)n, (long long)want);
  if (!v || n != want) {
    free(v);
    return NULL;
  }
  return v;
}

// (N, C, H, W) -> (N, H, W, C), in place via a copy.
static void to_nhwc(float *v, int64_t n, int64_t c, int64_t h, int64_t w) {
  float *t = malloc((size_t)(n * c * h * w) * 4);
  for (int64_t b = 0; b < n; b++)
    for (int64_t ch = 0; ch < c; ch++)
      for (int64_t i = 0; i < h * w; i++) t[(b * h * w + i) * c + ch] = v[(b * c + ch) * h * w + i];
  memcpy(v, t, (size_t)(n * c * h * w) * 4);
  free(t);
}
static float *rd_img(const char *grp, const char *name, int64_t n, int64_t c, int64_t h, int64_t w) {
  float *v = rd(grp, name, n * c * h * w);
  if (v) to_nhwc(v, n, c, h, w);
  return v;
}
static void cmp(const char *grp, const char *what, const float *got, const float *want, int64_t n) {
  if (!want) return;
  char nm[128];
  snprintf(nm, sizeof nm, "oracle %s %s", grp, what);
  tu_close(nm, got, want, n, TOL);
}
static void load(float *dst, const float *src, int64_t n) {
  if (src) memcpy(dst, src, (size_t)n * 4);
}
static int32_t pid(nn_graph *g, const char *name) {
  int32_t p = nn_param_find(g, name);
  if (p < 0) DP_FATAL("oracle test", "op did not register the torchvision name", "%s", name);
  return p;
}

// Runs forward, compares y (NHWC/flat as our op emits), seeds dy, runs backward.
static void fwd_bwd(nn_graph *g, const char *grp, nn_tid y, const float *ywant, const float *dy) {
  oh_forward(g);
  cmp(grp, "y", nn_t(g, y)->data, ywant, nn_t(g, y)->numel);
  if (dy) oh_backward(g, y, dy);
}

static void case_conv(const char *grp, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int k, int s,
                      int p, int bias) {
  int64_t oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1, nw = o * c * k * k;
  nn_graph *g = oh_graph(n, 1);
  nn_tid x = nn_tensor_new(g, "x", 4, (int64_t[]){n, h, w, c}, 1);
  nn_tid y = nn_conv2d(g, "conv", x, o, k, s, p, bias);
  nn_graph_finalize(g);
  float *xi = rd_img(grp, "in0", n, c, h, w), *wt = rd(grp, "in1", nw), *b = bias ? rd(grp, "in2", o) : NULL;
  float *yw = rd_img(grp, "y", n, o, oh, ow), *dy = rd_img(grp, "dy", n, o, oh, ow);
  float *gx = rd_img(grp, "grad0", n, c, h, w), *gw = rd(grp, "grad1", nw), *gb = bias ? rd(grp, "grad2", o) : NULL;
  if (xi && wt && dy) {
    load(nn_t(g, x)->data, xi, n * h * w * c);
    load(nn_param_data(g, pid(g, "conv.weight")), wt, nw);
    if (bias) load(nn_param_data(g, pid(g, "conv.bias")), b, o);
    fwd_bwd(g, grp, y, yw, dy);
    cmp(grp, "dx", nn_t(g, x)->grad, gx, n * h * w * c);
    cmp(grp, "dweight", nn_param_grad(g, pid(g, "conv.weight")), gw, nw);
    if (bias) cmp(grp, "dbias", nn_param_grad(g, pid(g, "conv.bias")), gb, o);
  }
  free(xi), free(wt), free(b), free(yw), free(dy), free(gx), free(gw), free(gb);
  nn_graph_destroy(g);
}

static void case_bn(const char *grp, int64_t n, int64_t c, int64_t h, int64_t w, int training, int relu) {
  nn_graph *g = oh_graph(n, 1);
  nn_tid x = nn_tensor_new(g, "x", 4, (int64_t[]){n, h, w, c}, 1);
  nn_tid y = relu ? nn_batchnorm2d_relu(g, "bn", x, 0.1f, 1e-5f, 0) : nn_batchnorm2d(g, "bn", x, 0.1f, 1e-5f, 0);
  nn_graph_finalize(g);
  nn_graph_set_training(g, training);
  int64_t ne = n * c * h * w;
  float *xi = rd_img(grp, "in0", n, c, h, w), *wt = rd(grp, "in1", c), *b = rd(grp, "in2", c);
  float *yw = rd_img(grp, "y", n, c, h, w), *dy = rd_img(grp, "dy", n, c, h, w);
  float *gx = rd_img(grp, "grad0", n, c, h, w), *gw = rd(grp, "grad1", c), *gb = rd(grp, "grad2", c);
  float *rmi = rd(grp, "running_mean_in", c), *rvi = rd(grp, "running_var_in", c);
  float *rm = rd(grp, "running_mean", c), *rv = rd(grp, "running_var", c);
  float *rmb = nn_buf(g, nn_buffer_find(g, "bn.running_mean")), *rvb = nn_buf(g, nn_buffer_find(g, "bn.running_var"));
  if (xi && wt && b && dy && rmi && rvi) {
    load(nn_t(g, x)->data, xi, ne);
    load(nn_param_data(g, pid(g, "bn.weight")), wt, c);
    load(nn_param_data(g, pid(g, "bn.bias")), b, c);
    load(rmb, rmi, c);
    load(rvb, rvi, c);
    fwd_bwd(g, grp, y, yw, dy);
    cmp(grp, "running_mean", rmb, rm, c);
    cmp(grp, "running_var", rvb, rv, c);
    cmp(grp, "dx", nn_t(g, x)->grad, gx, ne);
    cmp(grp, "dweight", nn_param_grad(g, pid(g, "bn.weight")), gw, c);
    cmp(grp, "dbias", nn_param_grad(g, pid(g, "bn.bias")), gb, c);
  }
  free(xi), free(wt), free(b), free(yw), free(dy), free(gx), free(gw), free(gb);
  free(rmi), free(rvi), free(rm), free(rv);
  nn_graph_destroy(g);
}

enum { U_RELU, U_POOL, U_GAP, U_FLAT };
static void case_unary(const char *grp, int kind, int64_t n, int64_t c, int64_t h, int64_t w, int k, int s, int p) {
  nn_graph *g = oh_graph(n, 1);
  nn_tid x = nn_tensor_new(g, "x", 4, (int64_t[]){n, h, w, c}, 1), y;
  int64_t oh = h, ow = w;
  switch (kind) {
    case U_RELU: y = nn_relu(g, "op", x); break;
    case U_POOL:
      y = nn_maxpool2d(g, "op", x, k, s, p);
      oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
      break;
    case U_GAP: y = nn_global_avgpool(g, "op", x); break;
    default: y = nn_flatten(g, "op", x); break;
  }
  nn_graph_finalize(g);
  int64_t ny = nn_t(g, y)->numel;
  int img_out = kind == U_RELU || kind == U_POOL;   // (N, C, oh, ow) in torch
  float *xi = rd_img(grp, "in0", n, c, h, w), *gx = rd_img(grp, "grad0", n, c, h, w);
  float *yw = img_out ? rd_img(grp, "y", n, c, oh, ow) : rd(grp, "y", ny);
  float *dy = img_out ? rd_img(grp, "dy", n, c, oh, ow) : rd(grp, "dy", ny);
  if (xi && dy) {
    load(nn_t(g, x)->data, xi, n * c * h * w);
    fwd_bwd(g, grp, y, yw, dy);
    cmp(grp, "dx", nn_t(g, x)->grad, gx, n * c * h * w);
  }
  free(xi), free(gx), free(yw), free(dy);
  nn_graph_destroy(g);
}

static void case_add(const char *grp, int relu) {
  int64_t n = 2, c = 3, h = 4, w = 5, ne = n * c * h * w;
  nn_graph *g = oh_graph(n, 1);
  nn_tid a = nn_tensor_new(g, "a", 4, (int64_t[]){n, h, w, c}, 1), b = nn_tensor_new(g, "b", 4, (int64_t[]){n, h, w, c}, 1);
  nn_tid y = relu ? nn_add_relu(g, "op", a, b) : nn_add(g, "op", a, b);
  nn_graph_finalize(g);
  float *ai = rd_img(grp, "in0", n, c, h, w), *bi = rd_img(grp, "in1", n, c, h, w);
  float *yw = rd_img(grp, "y", n, c, h, w), *dy = rd_img(grp, "dy", n, c, h, w);
  float *ga = rd_img(grp, "grad0", n, c, h, w), *gb = rd_img(grp, "grad1", n, c, h, w);
  if (ai && bi && dy) {
    load(nn_t(g, a)->data, ai, ne);
    load(nn_t(g, b)->data, bi, ne);
    fwd_bwd(g, grp, y, yw, dy);
    cmp(grp, "da", nn_t(g, a)->grad, ga, ne);
    cmp(grp, "db", nn_t(g, b)->grad, gb, ne);
  }
  free(ai), free(bi), free(yw), free(dy), free(ga), free(gb);
  nn_graph_destroy(g);
}

static void case_linear(const char *grp, int ndim, const int64_t *dims, int64_t out, int bias) {
  int64_t ne = 1, in = dims[ndim - 1];
  for (int i = 0; i < ndim; i++) ne *= dims[i];
  int64_t ny = ne / in * out;
  nn_graph *g = oh_graph(dims[0], 1);
  nn_tid x = nn_tensor_new(g, "x", ndim, dims, 1);
  nn_tid y = nn_linear(g, "fc", x, out, bias);
  nn_graph_finalize(g);
  float *xi = rd(grp, "in0", ne), *wt = rd(grp, "in1", out * in), *b = bias ? rd(grp, "in2", out) : NULL;
  float *yw = rd(grp, "y", ny), *dy = rd(grp, "dy", ny), *gx = rd(grp, "grad0", ne), *gw = rd(grp, "grad1", out * in);
  float *gb = bias ? rd(grp, "grad2", out) : NULL;
  if (xi && wt && dy) {
    load(nn_t(g, x)->data, xi, ne);
    load(nn_param_data(g, pid(g, "fc.weight")), wt, out * in);
    if (bias) load(nn_param_data(g, pid(g, "fc.bias")), b, out);
    fwd_bwd(g, grp, y, yw, dy);
    cmp(grp, "dx", nn_t(g, x)->grad, gx, ne);
    cmp(grp, "dweight", nn_param_grad(g, pid(g, "fc.weight")), gw, out * in);
    if (bias) cmp(grp, "dbias", nn_param_grad(g, pid(g, "fc.bias")), gb, out);
  }
  free(xi), free(wt), free(b), free(yw), free(dy), free(gx), free(gw), free(gb);
  nn_graph_destroy(g);
}

static void case_xent(const char *grp, int64_t n, int64_t c, int64_t nv, float ls, int weighted, int soft) {
  float *z = rd(grp, "in0", n * c), *gz = rd(grp, "grad0", n * c), *loss = rd(grp, "y", 1), *dl = rd(grp, "dy", 1);
  float *wts = rd(grp, "weights", c), *probs = rd(grp, "soft", n * c);
  int64_t nl = 0;
  char path[128];
  snprintf(path, sizeof path, "/%s/labels", grp);
  int32_t *labels = tu_h5_read_i32(g_file, path, &nl);
  TU_CHECK(labels && nl == n, "%s: labels", grp);
  if (z && gz && loss && dl && wts && probs && labels && nl == n) {
    nn_graph *g = oh_graph(n, 1);
    nn_tid x = nn_tensor_new(g, "logits", 2, (int64_t[]){n, c}, 1);
    nn_xent_cfg cfg = {ls, weighted ? wts : NULL, c};
    nn_tid y = nn_softmax_xent(g, "loss", x, &cfg);
    nn_graph_finalize(g);
    oh_step()->labels = labels;
    oh_step()->soft_targets = soft ? probs : NULL;
    oh_step()->num_valid = nv;
    load(nn_t(g, x)->data, z, n * c);
    fwd_bwd(g, grp, y, loss, dl);
    cmp(grp, "dlogits", nn_t(g, x)->grad, gz, n * c);
    nn_graph_destroy(g);
  }
  free(z), free(gz), free(loss), free(dl), free(wts), free(probs), free(labels);
}

int main(void) {
  snprintf(g_file, sizeof g_file, "%s/ops.h5", tu_fixture_dir());
  if (!tu_file_exists(g_file)) {
    fprintf(stderr, "missing %s: run tests/ops/make_op_fixtures.py (ctest runs it as a fixture)\n", g_file);
    return 1;
  }
  // Must match the tables in make_op_fixtures.py.
  case_conv("conv_a", 2, 3, 9, 9, 8, 3, 1, 1, 1);
  case_conv("conv_b", 2, 16, 9, 8, 32, 3, 2, 1, 0);
  case_conv("conv_c", 2, 32, 7, 7, 64, 1, 2, 0, 0);
  case_conv("conv_d", 2, 64, 5, 6, 32, 1, 1, 0, 1);
  case_conv("conv_stem", 2, 3, 16, 15, 16, 7, 2, 3, 0);
  case_bn("bn_train", 4, 16, 5, 5, 1, 0);
  case_bn("bn_relu_train", 3, 24, 6, 5, 1, 1);
  case_bn("bn_eval", 2, 16, 4, 3, 0, 0);
  case_bn("bn_relu_eval", 2, 8, 5, 5, 0, 1);
  case_unary("relu", U_RELU, 2, 5, 4, 3, 1, 1, 0);
  case_unary("maxpool_a", U_POOL, 2, 6, 9, 8, 3, 2, 1);
  case_unary("maxpool_b", U_POOL, 2, 4, 7, 6, 2, 2, 0);
  case_unary("gap", U_GAP, 2, 8, 3, 5, 1, 1, 0);
  case_unary("flatten", U_FLAT, 2, 4, 3, 2, 1, 1, 0);
  case_linear("linear", 3, (int64_t[]){3, 4, 10}, 6, 1);
  case_linear("linear_nobias", 2, (int64_t[]){5, 12}, 7, 0);
  case_add("add", 0);
  case_add("add_relu", 1);
  case_xent("xent_hard", 6, 5, 6, 0.0f, 0, 0);
  case_xent("xent_ls_w", 7, 4, 5, 0.1f, 1, 0);
  case_xent("xent_soft", 5, 6, 5, 0.2f, 0, 1);
  case_xent("xent_soft_ls_w", 8, 5, 6, 0.1f, 1, 1);
  return tu_finish("test_ops_oracle");
}
