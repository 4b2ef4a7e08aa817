// Naive double-precision reference ops (forward + backward) for the op
// tests. Same layouts as the CPU backend: images NHWC, conv weight
// (O, C, k, k), linear weight (out, in). Backward functions ADD into the
// gradient arrays (callers zero them), so accumulation is easy to test.
#ifndef DP_TESTS_REF_OPS_H
#define DP_TESTS_REF_OPS_H
#include <stdint.h>

typedef struct {
  int64_t n, h, w, c;   // input (N, H, W, C)
  int64_t o;            // conv output channels
  int k, stride, pad;
} ref_geom;
int64_t ref_out_size(int64_t in, int k, int stride, int pad);

void ref_conv2d_forward(const ref_geom *g, const double *x, const double *w, const double *b, double *y);
void ref_conv2d_backward(const ref_geom *g, const double *x, const double *w, const double *dy,
                         double *dx, double *dw, double *db);

// BN over (N, H, W, C) per channel. training: batch stats (mean, biased var
// returned in mean/var if non-NULL); eval: rm/rv. relu: fused ReLU after.
void ref_bn_forward(const ref_geom *g, const double *x, const double *w, const double *b,
                    const double *rm, const double *rv, double eps, int training, int relu,
                    double *y, double *mean, double *var);
void ref_bn_backward(const ref_geom *g, const double *x, const double *w, const double *b,
                     const double *rm, const double *rv, double eps, int training, int relu,
                     const double *dy, double *dx, double *dw, double *db);

void ref_relu_forward(int64_t n, const double *x, double *y);
void ref_relu_backward(int64_t n, const double *x, const double *dy, double *dx);
void ref_maxpool_forward(const ref_geom *g, const double *x, double *y);
void ref_maxpool_backward(const ref_geom *g, const double *x, const double *dy, double *dx);
void ref_gap_forward(const ref_geom *g, const double *x, double *y);
void ref_gap_backward(const ref_geom *g, const double *dy, double *dx);
// (N, H, W, C) -> (N, C*H*W) in torch's NCHW order.
void ref_flatten_forward(const ref_geom *g, const double *x, double *y);
void ref_flatten_backward(const ref_geom *g, const double *dy, double *dx);
void ref_linear_forward(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                        const double *b, double *y);
void ref_linear_backward(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                         const double *dy, double *dx, double *dw, double *db);
void ref_add_forward(int64_t n, const double *a, const double *b, int relu, double *y);
void ref_add_backward(int64_t n, const double *a, const double *b, int relu, const double *dy,
                      double *da, double *db);
// mask: 1 keep, 0 drop; scale 1 / (1 - p).
void ref_dropout_forward(int64_t n, const double *x, const uint8_t *mask, double p, double *y);
void ref_dropout_backward(int64_t n, const uint8_t *mask, double p, const double *dy, double *dx);

typedef struct {
  int64_t n, c, num_valid;
  double smoothing;
  const double *weights;   // (C) or NULL
  const int32_t *labels;   // (N) when soft == NULL
  const double *soft;      // (N, C) or NULL
} ref_xent_cfg;
double ref_xent_forward(const ref_xent_cfg *cfg, const double *z);
// dloss: upstream gradient of the scalar loss.
void ref_xent_backward(const ref_xent_cfg *cfg, const double *z, double dloss, double *dz);
#endif
