// Launchers of the CUDA kernels in kernels/*.cu. C API: every launcher is
// asynchronous on stream `s` and returns the launch status (cudaGetLastError),
// which callers wrap in CUDA_CHECK. Sizes are int64_t element counts.
//
// Conventions shared with the CPU ops:
//   * `accumulate` = 1: the kernel adds into the output gradient (the caller got
//     1 from nn_grad_begin, or g->accumulate_grads for parameter grads);
//     0: it overwrites. Output gradient pointers may be NULL (not needed).
//   * Images are NHWC, tokens (N, T, D); "rows" are all leading dims flattened.
//   * Statistics, losses and optimizer state are fp32 whatever the activation dtype.
#ifndef DP_BACKEND_CUDA_KERNELS_H
#define DP_BACKEND_CUDA_KERNELS_H
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/cuda_plan.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- elementwise (kernels/elementwise.cu) -----------------------------------
cudaError_t dp_cuda_relu_fwd(const float *x, float *y, int64_t n, cudaStream_t s);
// dx (+)= dy * (y > 0); y is the forward output.
cudaError_t dp_cuda_relu_bwd(const float *y, const float *dy, float *dx, int64_t n, int accumulate,
                             cudaStream_t s);
cudaError_t dp_cuda_add_fwd(const float *a, const float *b, float *y, int64_t n, cudaStream_t s);
// dx (+)= dy: the backward of add, copy or accumulate.
cudaError_t dp_cuda_grad_pass(const float *dy, float *dx, int64_t n, int accumulate, cudaStream_t s);
cudaError_t dp_cuda_add_relu_fwd(const float *a, const float *b, float *y, int64_t n, cudaStream_t s);
// da (+)= db (+)= dy * (y > 0); either of da/db may be NULL.
cudaError_t dp_cuda_add_relu_bwd(const float *y, const float *dy, float *da, int acc_a, float *db,
                                 int acc_b, int64_t n, cudaStream_t s);
// Inverted dropout. keep_i = hash(seed, stream, i) >= p; y = keep ? x / (1 - p) : 0.
// The mask (n bytes) is saved for backward. Counter-based: the same (seed,
// stream) gives the same mask on any grid; see dp_dropout_keep_host.
cudaError_t dp_cuda_dropout_fwd(const float *x, float *y, uint8_t *mask, int64_t n, float p,
                                uint64_t seed, uint64_t stream, cudaStream_t s);
cudaError_t dp_cuda_dropout_bwd(const float *dy, const uint8_t *mask, float *dx, int64_t n, float p,
                                int accumulate, cudaStream_t s);
// Exact GELU: y = x * Phi(x).
cudaError_t dp_cuda_gelu_fwd(const float *x, float *y, int64_t n, cudaStream_t s);
cudaError_t dp_cuda_gelu_bwd(const float *x, const float *dy, float *dx, int64_t n, int accumulate,
                             cudaStream_t s);

// ---- casts and input (kernels/cast.cu) ---------------------------------------
// Half types are passed as raw 16-bit storage (uint16_t) so C callers need no
// CUDA half headers. Rounding is round-to-nearest-even.
cudaError_t dp_cuda_f32_to_bf16(const float *x, uint16_t *y, int64_t n, cudaStream_t s);
cudaError_t dp_cuda_bf16_to_f32(const uint16_t *x, float *y, int64_t n, cudaStream_t s);
// y (+)= float(x).
cudaError_t dp_cuda_bf16_to_f32_acc(const uint16_t *x, float *y, int64_t n, int accumulate, cudaStream_t s);
cudaError_t dp_cuda_f32_to_f16(const float *x, uint16_t *y, int64_t n, cudaStream_t s);
cudaError_t dp_cuda_f16_to_f32(const uint16_t *x, float *y, int64_t n, cudaStream_t s);
cudaError_t dp_cuda_f16_to_f32_acc(const uint16_t *x, float *y, int64_t n, int accumulate, cudaStream_t s);
// uint8 NHWC pixels -> (x / 255 - mean[c]) / std[c], fp32 or bf16 output.
// c_in may be smaller than c_out only for grayscale replication (c_in 1, c_out 3).
// mean and std are HOST arrays of c_out floats (passed by value to the kernel).
cudaError_t dp_cuda_input_u8_to_f32(const uint8_t *x, float *y, int64_t pixels, int c_in, int c_out,
                                    const float *mean, const float *std, cudaStream_t s);
cudaError_t dp_cuda_input_u8_to_bf16(const uint8_t *x, uint16_t *y, int64_t pixels, int c_in,
                                     int c_out, const float *mean, const float *std, cudaStream_t s);

// ---- rows: layernorm, softmax (kernels/rows.cu) --------------------------------
// y = (x - mean) * rstd * gamma + beta per row of length d; mean/rstd (rows) saved.
cudaError_t dp_cuda_layernorm_fwd(const float *x, const float *gamma, const float *beta, float *y,
                                  float *mean, float *rstd, int64_t rows, int64_t d, float eps,
                                  cudaStream_t s);
// dx (+)= ...; dgamma/dbeta (+)= (acc_param) column sums, through `partial`
// scratch of dp_cuda_layernorm_bwd_scratch(d) bytes (deterministic, no atomics).
// dgamma/dbeta may be NULL (frozen).
int64_t dp_cuda_layernorm_bwd_scratch(int64_t d);
cudaError_t dp_cuda_layernorm_bwd(const float *x, const float *dy, const float *gamma,
                                  const float *mean, const float *rstd, float *dx, int acc_x,
                                  float *dgamma, float *dbeta, int acc_param, float *partial,
                                  int64_t rows, int64_t d, cudaStream_t s);
cudaError_t dp_cuda_softmax_fwd(const float *x, float *y, int64_t rows, int64_t d, cudaStream_t s);
// dx (+)= y * (dy - sum(dy * y)).
cudaError_t dp_cuda_softmax_bwd(const float *y, const float *dy, float *dx, int64_t rows, int64_t d,
                                int accumulate, cudaStream_t s);

// ---- loss (kernels/xent.cu) ----------------------------------------------------
// Softmax cross-entropy, torch semantics (reduction='mean'):
//   hard labels: q_k = (1 - eps) * w_y * [k == y] + eps / C * w_k,
//                loss = sum_i sum_k q_k (-log p_ik) / sum_i w_{y_i}
//   soft targets t (N, C): q_k = w_k * ((1 - eps) t_k + eps / C),
//                loss = sum_i sum_k q_k (-log p_ik) / num_valid
// Rows i >= num_valid and hard labels < 0 do not count. weights may be NULL.
// Saves per-row log-sum-exp (lse, rows) and the denominator (denom, 1) for
// backward; `row_scratch` holds 2 * n floats. loss is 1 float on the device.
cudaError_t dp_cuda_xent_fwd(const float *logits, const int32_t *labels, const float *soft,
                             const float *weights, float smoothing, int64_t n, int64_t c,
                             int64_t num_valid, float *lse, float *denom, float *row_scratch,
                             float *loss, cudaStream_t s);
// dlogits (+)= dloss[0] / denom * (Q_i p_ik - q_ik), Q_i = sum_k q_ik; 0 for rows
// that do not count. dloss is a device pointer (1 float).
cudaError_t dp_cuda_xent_bwd(const float *logits, const int32_t *labels, const float *soft,
                             const float *weights, float smoothing, int64_t n, int64_t c,
                             int64_t num_valid, const float *lse, const float *denom,
                             const float *dloss, float *dlogits, int accumulate, cudaStream_t s);

// ---- pooling (kernels/pool.cu) -------------------------------------------------
// (N, HW, C) -> (N, C) mean, and its backward.
cudaError_t dp_cuda_global_avgpool_fwd(const float *x, float *y, int64_t n, int64_t hw, int64_t c,
                                       cudaStream_t s);
cudaError_t dp_cuda_global_avgpool_bwd(const float *dy, float *dx, int64_t n, int64_t hw, int64_t c,
                                       int accumulate, cudaStream_t s);

// ---- optimizer, norms, overflow (kernels/optim.cu) -----------------------------
// dp_optim_segment (the per-group hyper-parameter table) is in cuda_plan.h.

// g_eff = grad * gscale[0] (unscale and clip factor, device scalar; NULL = 1).
// Nothing is written when skip != NULL and skip[0] != 0 (fp16 overflow step).
// param_lp (bf16 storage, may be NULL) receives the updated weights for compute.
// segs is a device array of nsegs segments sorted by lo.
cudaError_t dp_cuda_sgd_step(float *param, const float *grad, float *mom, uint16_t *param_lp,
                             const dp_optim_segment *segs, int nsegs, int64_t n, float lr,
                             float momentum, int nesterov, int first_step, const float *gscale,
                             const int32_t *skip, cudaStream_t s);
// AdamW, torch semantics: p *= 1 - lr*wd; m, v EMAs; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
// bc1 and sqrt(bc2) come from each segment (segs[].bc1, .sqrt_bc2: per-tensor
// step counts, cuda_adamw_corrections).
cudaError_t dp_cuda_adamw_step(float *param, const float *grad, float *m, float *v,
                               uint16_t *param_lp, const dp_optim_segment *segs, int nsegs,
                               int64_t n, float lr, float beta1, float beta2, float eps,
                               const float *gscale, const int32_t *skip, cudaStream_t s);
// Global L2 norm of x[0..n) * in_scale, two passes with a fixed grid so the
// result is deterministic. `partial` holds dp_cuda_norm_scratch() bytes.
// Writes norm[0]; if gscale != NULL also writes
//   gscale[0] = in_scale * (max_norm > 0 ? min(1, max_norm / (norm + 1e-6)) : 1)
// so the optimizer applies unscale and clipping without a host round trip.
int64_t dp_cuda_norm_scratch(void);
cudaError_t dp_cuda_grad_norm(const float *x, int64_t n, float in_scale, float max_norm,
                              double *partial, float *norm, float *gscale, cudaStream_t s);
// found[0] = 1 if any of x[0..n) is inf or NaN, else 0 (found is zeroed first).
cudaError_t dp_cuda_nonfinite_check(const float *x, int64_t n, int32_t *found, cudaStream_t s);
// x *= a (e.g. unscale by 1/scale); fp32 in place.
cudaError_t dp_cuda_scale_inplace(float *x, int64_t n, float a, cudaStream_t s);

// ---- layout (kernels/layout.cu) ------------------------------------------------
// dst[r * dld + j] (+)= src[r * sld + j], r < rows, j < cols (leading dims in elements).
cudaError_t dp_cuda_copy2d(float *dst, int64_t dld, const float *src, int64_t sld, int64_t rows,
                           int64_t cols, int accumulate, cudaStream_t s);
// dst[j] (+)= sum_r src[r * ld + j]: gradient of a parameter broadcast over rows.
cudaError_t dp_cuda_colsum(const float *src, int64_t ld, int64_t rows, int64_t cols, float *dst,
                           int accumulate, cudaStream_t s);
// y[r, j] = x[r, j] + p[j].
cudaError_t dp_cuda_add_bcast(const float *x, const float *p, float *y, int64_t rows, int64_t cols,
                              cudaStream_t s);
// (N, HW, C) -> (N, C, HW) and back; y (+)= permuted x.
cudaError_t dp_cuda_nhwc_to_nchw(const float *x, float *y, int64_t n, int64_t hw, int64_t c,
                                 int accumulate, cudaStream_t s);
cudaError_t dp_cuda_nchw_to_nhwc(const float *x, float *y, int64_t n, int64_t hw, int64_t c,
                                 int accumulate, cudaStream_t s);

// ---- batchnorm eval-mode backward (kernels/bn.cu) -------------------------------
// x, dy (pixels, C) NHWC; running mean/var rm, rv. dx (+)= dy * gamma / sqrt(rv + eps);
// dgamma (+)= sum dy * (x - rm) / sqrt(rv + eps), dbeta (+)= sum dy. Any output may be NULL.
cudaError_t dp_cuda_bn_eval_bwd(const float *x, const float *dy, const float *gamma, const float *rm,
                                const float *rv, float eps, float *dx, int acc_x, float *dgamma,
                                float *dbeta, int acc_param, int64_t pixels, int64_t c, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
