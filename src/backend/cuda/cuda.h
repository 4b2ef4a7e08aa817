// The CUDA backend as the layers above see it: its nn_backend_vt (memory
// hooks and one op table per op kind) for nn_graph_create. Only in CUDA
// builds (DP_HAVE_CUDA).
#ifndef DP_BACKEND_CUDA_PUBLIC_H
#define DP_BACKEND_CUDA_PUBLIC_H
#include "nn/backend.h"

const nn_backend_vt *cuda_backend(void);
#endif
