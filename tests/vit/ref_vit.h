// Naive double-precision reference implementations of the ViT ops (forward
// and backward), written straight from the definitions, independent of the
// fp32 CPU code and of torch. Backward functions overwrite their outputs.
#ifndef DP_TESTS_REF_VIT_H
#define DP_TESTS_REF_VIT_H
#include <stdint.h>

// x, y (rows, D); w, b (D).
void ref_layernorm_fwd(const double *x, const double *w, const double *b, int64_t rows, int64_t D,
                       double eps, double *y);
void ref_layernorm_bwd(const double *x, const double *w, const double *dy, int64_t rows, int64_t D,
                       double eps, double *dx, double *dw, double *db);
void ref_gelu_fwd(const double *x, int64_t n, double *y);
void ref_gelu_bwd(const double *x, const double *dy, int64_t n, double *dx);
void ref_softmax_fwd(const double *x, int64_t rows, int64_t L, double *y);
void ref_softmax_bwd(const double *x, const double *dy, int64_t rows, int64_t L, double *dx);
// qkv (N, T, 3D) -> y (N, T, D), H heads.
void ref_attention_fwd(const double *qkv, int64_t N, int64_t T, int64_t D, int64_t H, double *y);
void ref_attention_bwd(const double *qkv, const double *dy, int64_t N, int64_t T, int64_t D,
                       int64_t H, double *dqkv);
// x (N, H, W, C), w (D, C, p, p), b (D) -> y (N, (H/p)*(W/p), D).
void ref_patch_fwd(const double *x, const double *w, const double *b, int64_t N, int64_t H,
                   int64_t W, int64_t C, int64_t D, int64_t p, double *y);
void ref_patch_bwd(const double *x, const double *w, const double *dy, int64_t N, int64_t H,
                   int64_t W, int64_t C, int64_t D, int64_t p, double *dx, double *dw, double *db);
// x (N, T, D), cls (D) -> y (N, T+1, D).
void ref_cls_fwd(const double *x, const double *cls, int64_t N, int64_t T, int64_t D, double *y);
void ref_cls_bwd(const double *dy, int64_t N, int64_t T, int64_t D, double *dx, double *dcls);
// x (N, T, D), pos (T, D).
void ref_pos_fwd(const double *x, const double *pos, int64_t N, int64_t T, int64_t D, double *y);
void ref_pos_bwd(const double *dy, int64_t N, int64_t T, int64_t D, double *dx, double *dpos);
// x (N, T, D) -> y (N, D).
void ref_tok0_fwd(const double *x, int64_t N, int64_t T, int64_t D, double *y);
void ref_tok0_bwd(const double *dy, int64_t N, int64_t T, int64_t D, double *dx);
#endif
