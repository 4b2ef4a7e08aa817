// Backend context hooks: each backend creates what its ops share (oneDNN
// engine and stream on the CPU; CUDA stream, cuDNN and cuBLAS handles on GPU).
#ifndef DP_NN_BACKEND_H
#define DP_NN_BACKEND_H
#include "nn/graph.h"
void *nn_backend_ctx_create(nn_backend b);
void nn_backend_ctx_destroy(nn_backend b, void *ctx);
// Threads the CPU backend may use (OpenMP and oneDNN); 0 = leave as is.
void nn_backend_set_threads(int n);
#endif
