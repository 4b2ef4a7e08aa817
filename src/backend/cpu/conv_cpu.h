// Reusable oneDNN convolution (fp32, NHWC activations, torch-layout weights).
// Primitives are created once for a fixed shape; weights are reordered from
// oihw to oneDNN's preferred format once per forward and once more in
// backward (a permutation, so the same values); weight gradients are
// reordered back to oihw once per backward (with a sum post-op when they are
// accumulated).
//
// Memory: everything is per-call scratch ("ws", cpu_conv_ws_bytes:
// scratchpad, reordered weights, weight-grad staging), so nothing but x must
// live from forward to backward. A caller may instead keep the forward-format
// weights between the calls ("persist", cpu_conv_persist_bytes; backward then
// skips its reorder). Pass NULL for either to use a buffer the conv allocates
// (ws) or none (persist).
#ifndef DP_BACKEND_CPU_CONV_CPU_H
#define DP_BACKEND_CPU_CONV_CPU_H
#include <stdint.h>

#include "backend/cpu/cpu_backend.h"

typedef struct cpu_conv cpu_conv;

// x (n, h, w, c) -> y (n, oh, ow, o), weight (o, c, k, k), bias (o) if bias.
// Output size as torch: (h + 2 pad - k) / stride + 1.
cpu_conv *cpu_conv_create(cpu_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o,
                          int k, int stride, int pad, int bias);
void cpu_conv_destroy(cpu_conv *cv);
int64_t cpu_conv_persist_bytes(const cpu_conv *cv);
int64_t cpu_conv_ws_bytes(const cpu_conv *cv);
// b may be NULL only if created without bias. persist / ws: caller buffers
// (64-byte aligned, at least the sizes above) or NULL for private ones.
void cpu_conv_forward(cpu_conv *cv, const float *x, const float *wt, const float *b, float *y,
                      void *persist, void *ws);
// Call after cpu_conv_forward with the same wt and persist (or NULL). dx: NULL to skip;
// dx_add adds into it and then needs dx_scratch (n*h*w*c floats). dw: NULL to
// skip the weight gradient (frozen); db: bias gradient or NULL; dw_add adds
// into dw/db.
void cpu_conv_backward(cpu_conv *cv, const float *x, const float *wt, const float *dy, float *dx,
                       int dx_add, float *dx_scratch, float *dw, float *db, int dw_add,
                       void *persist, void *ws);
#endif
