// GPU-local placement: bind this rank (all its threads, including loader
// threads started later, which inherit the binding) and its memory to the
// cores and NUMA node nearest its GPU, as hwloc reports them
// (hwloc_cudart_get_device_cpuset intersected with the allowed cpuset, so a
// Slurm/cgroup restriction is respected).
#ifndef DP_BACKEND_CUDA_BIND_H
#define DP_BACKEND_CUDA_BIND_H
#include <stddef.h>

typedef struct {
  int cores;            // cores in the final binding
  int numa_node;        // first NUMA node of the binding, -1 if unknown
  int gpu_local;        // 1: bound to the GPU-local set; 0: fell back to the allowed set
  char cpuset[256];     // human-readable core list
} cuda_binding;

// Returns 0 on success; -1 (with msg) when the GPU's locality cannot be read
// (no GPU, no sysfs). Never fatal: placement is an optimisation.
int cuda_bind_near_device(int device, cuda_binding *out, char *msg, size_t msg_size);
#endif
