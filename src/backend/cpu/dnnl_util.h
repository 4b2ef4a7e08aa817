// Small oneDNN (C API, v2.6) helpers shared by the CPU ops, plus the
// gradient-destination helpers every CPU op uses.
#ifndef DP_BACKEND_CPU_DNNL_UTIL_H
#define DP_BACKEND_CPU_DNNL_UTIL_H
#include <dnnl.h>
#include <stdint.h>

#include "backend/cpu/cpu_backend.h"
#include "nn/graph.h"

// Plain f32 memory descriptor of `tag` (dnnl_format_tag_any for "let oneDNN pick").
dnnl_memory_desc_t du_md(int ndims, const int64_t *dims, dnnl_format_tag_t tag);
// Memory object with no buffer yet (set it with du_set before executing).
dnnl_memory_t du_mem(const dnnl_memory_desc_t *md, dnnl_engine_t eng);
static inline void du_set(dnnl_memory_t m, const void *p) {
  DNNL_CHECK(dnnl_memory_set_data_handle(m, (void *)p), "setting a oneDNN buffer");
}
// A CPU engine for planning (primitive descriptors, their sizes) before any
// graph has a backend context; created once, lives for the process.
dnnl_engine_t du_plan_engine(void);
// Attribute with user-managed scratchpad (we pass DNNL_ARG_SCRATCHPAD ourselves).
dnnl_primitive_attr_t du_attr_user_scratch(void);
dnnl_primitive_desc_t du_pd(const void *op_desc, const_dnnl_primitive_attr_t attr,
                            dnnl_engine_t eng, const_dnnl_primitive_desc_t hint, const char *what);
dnnl_primitive_t du_prim(const_dnnl_primitive_desc_t pd, const char *what);
const dnnl_memory_desc_t *du_query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t q, int index);
int64_t du_scratch_bytes(const_dnnl_primitive_desc_t pd);
// Reorder src_md -> dst_md; with sum = 1 the result is added to dst.
// *scratch_bytes gets max'ed with the reorder's scratchpad size.
dnnl_primitive_t du_reorder(const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                            dnnl_engine_t eng, int sum, int64_t *scratch_bytes);
// Execute and wait.
void du_run(dnnl_primitive_t p, dnnl_stream_t s, int nargs, const dnnl_exec_arg_t *args,
            const char *what);

// dst = src (add = 0) or dst += src (add = 1), OpenMP over n.
void cpu_copy_or_add(float *dst, const float *src, int64_t n, int add);
// dx (=|+=) dy where y > 0, else 0: the backward of relu and of the fused
// add+relu, masked by the output as torch's threshold_backward does.
void cpu_relu_grad(float *dx, const float *dy, const float *y, int64_t n, int add);
#endif
