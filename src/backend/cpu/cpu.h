// The CPU backend as the layers above see it: its nn_backend_vt (memory
// hooks and one op table per op kind) for nn_graph_create, and the thread
// count of its OpenMP/oneDNN kernels.
#ifndef DP_BACKEND_CPU_PUBLIC_H
#define DP_BACKEND_CPU_PUBLIC_H
#include "nn/backend.h"

const nn_backend_vt *cpu_backend(void);
#endif
