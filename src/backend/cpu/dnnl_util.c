#include "backend/cpu/dnnl_util.h"

#include <pthread.h>
#include <string.h>

dnnl_memory_desc_t du_md(int ndims, const int64_t *dims, dnnl_format_tag_t tag) {
  dnnl_memory_desc_t md;
  dnnl_dims_t d;
  for (int i = 0; i < ndims; i++) d[i] = dims[i];
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(&md, ndims, d, dnnl_f32, tag), "making a memory descriptor");
  return md;
}

dnnl_memory_t du_mem(const dnnl_memory_desc_t *md, dnnl_engine_t eng) {
  dnnl_memory_t m;
  DNNL_CHECK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_NONE), "creating oneDNN memory");
  return m;
}

static dnnl_engine_t g_plan_engine;
static void plan_engine_create(void) { DNNL_CHECK(dnnl_engine_create(&g_plan_engine, dnnl_cpu, 0), "planning engine"); }
dnnl_engine_t du_plan_engine(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, plan_engine_create);
  return g_plan_engine;
}

dnnl_primitive_attr_t du_attr_user_scratch(void) {
  dnnl_primitive_attr_t a;
  DNNL_CHECK(dnnl_primitive_attr_create(&a), "creating a primitive attribute");
  DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user), "user scratchpad");
  return a;
}

dnnl_primitive_desc_t du_pd(const void *op_desc, const_dnnl_primitive_attr_t attr,
                            dnnl_engine_t eng, const_dnnl_primitive_desc_t hint, const char *what) {
  dnnl_primitive_desc_t pd;
  DNNL_CHECK(dnnl_primitive_desc_create(&pd, (const_dnnl_op_desc_t)op_desc, attr, eng, hint), what);
  return pd;
}

dnnl_primitive_t du_prim(const_dnnl_primitive_desc_t pd, const char *what) {
  dnnl_primitive_t p;
  DNNL_CHECK(dnnl_primitive_create(&p, pd), what);
  return p;
}

const dnnl_memory_desc_t *du_query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t q, int index) {
  const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q, index);
  DP_CHECK(md != NULL, "querying a oneDNN memory descriptor", "oneDNN version mismatch?");
  return md;
}

int64_t du_scratch_bytes(const_dnnl_primitive_desc_t pd) {
  const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  return md ? (int64_t)dnnl_memory_desc_get_size(md) : 0;
}

dnnl_primitive_t du_reorder(const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                            dnnl_engine_t eng, int sum, int64_t *scratch_bytes) {
  dnnl_primitive_attr_t a = du_attr_user_scratch();
  if (sum) {
    dnnl_post_ops_t po;
    DNNL_CHECK(dnnl_post_ops_create(&po), "reorder post-ops");
    DNNL_CHECK(dnnl_post_ops_append_sum(po, 1.0f), "reorder sum post-op");
    DNNL_CHECK(dnnl_primitive_attr_set_post_ops(a, po), "reorder post-ops");
    dnnl_post_ops_destroy(po);
  }
  dnnl_primitive_desc_t pd;
  DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, src, eng, dst, eng, a), "creating a reorder");
  int64_t s = du_scratch_bytes(pd);
  if (s > *scratch_bytes) *scratch_bytes = s;
  dnnl_primitive_t p = du_prim(pd, "creating a reorder");
  dnnl_primitive_desc_destroy(pd);
  dnnl_primitive_attr_destroy(a);
  return p;
}

void du_run(dnnl_primitive_t p, dnnl_stream_t s, int nargs, const dnnl_exec_arg_t *args,
            const char *what) {
  DNNL_CHECK(dnnl_primitive_execute(p, s, nargs, args), what);
  DNNL_CHECK(dnnl_stream_wait(s), what);
}

void cpu_relu_grad(float *dx, const float *dy, const float *y, int64_t n, int add) {
  if (add) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
      float d = dy[i];   // unconditional load: lets the compiler vectorise the select
      dx[i] += y[i] > 0.0f ? d : 0.0f;
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
      float d = dy[i];
      dx[i] = y[i] > 0.0f ? d : 0.0f;
    }
  }
}

void cpu_copy_or_add(float *dst, const float *src, int64_t n, int add) {
  if (add) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
  } else if (dst != src) {
    memcpy(dst, src, (size_t)n * 4);
  }
}
