#include "backend/cuda/cuda_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "nn/backend.h"
#include "backend/cuda/cuda.h"
#include "nn/graph.h"

// One table per op kind (nn/op_kinds.h), handed to nn/ through cuda_backend().
#define DECL_VT(K) extern const nn_op_vt K##_cuda_vt;
NN_OP_KIND_LIST(DECL_VT)
#undef DECL_VT
#define REF_VT(K) [NN_OP_##K] = &K##_cuda_vt,
static const nn_op_vt *const cuda_op_table[NN_OP_KIND_COUNT] = {NN_OP_KIND_LIST(REF_VT)};
#undef REF_VT

static struct {
  int device;
  cuda_precision precision;
  int deterministic;
  int64_t workspace_limit;
} g_cfg = {-1, CUDA_PREC_TF32, 0, 256LL << 20};   // tf32 until bf16 is measured correct and faster

int cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

int cuda_device_probe(char *msg, size_t msg_size) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  const char *vis = getenv("CUDA_VISIBLE_DEVICES");
  if (e == cudaSuccess && n > 0) {
    snprintf(msg, msg_size, "%d CUDA device(s) visible", n);
    return n;
  }
  (void)cudaGetLastError();
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  if (drv == 0) {
    snprintf(msg, msg_size, "no NVIDIA driver is loaded on this node (no GPU, or the driver is not installed)");
  } else if (e == cudaErrorInsufficientDriver) {
    snprintf(msg, msg_size, "the NVIDIA driver (CUDA %d.%d) is too old for this build (CUDA runtime %d.%d)",
             drv / 1000, (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10);
  } else if (e == cudaErrorNoDevice) {
    if (vis && (!*vis || !strcmp(vis, "-1") || !strcmp(vis, "NoDevFiles")))
      snprintf(msg, msg_size, "CUDA_VISIBLE_DEVICES=\"%s\" hides every GPU", vis);
    else
      snprintf(msg, msg_size, "the NVIDIA driver is loaded but no CUDA device was found%s%s%s",
               vis ? " (CUDA_VISIBLE_DEVICES=" : "", vis ? vis : "", vis ? ")" : "");
  } else {
    snprintf(msg, msg_size, "CUDA initialisation failed: %s", cudaGetErrorString(e));
  }
  return 0;
}

void cuda_require_device(void) {
  char msg[256];
  if (cuda_device_probe(msg, sizeof msg) == 0)
    DP_FATAL("selecting the CUDA device", "use --device cpu (or --device auto) on nodes without a GPU",
             "%s", msg);
}

void cuda_backend_configure(int device, cuda_precision precision, int deterministic,
                            int64_t workspace_limit) {
  g_cfg.device = device;
  g_cfg.precision = precision;
  g_cfg.deterministic = deterministic;
  if (workspace_limit > 0) g_cfg.workspace_limit = workspace_limit;
}

const char *cuda_precision_name(cuda_precision p) {
  switch (p) {
    case CUDA_PREC_FP32: return "fp32";
    case CUDA_PREC_TF32: return "tf32";
    case CUDA_PREC_BF16: return "bf16";
    case CUDA_PREC_FP16: return "fp16";
  }
  return "?";
}

void *cuda_backend_ctx_create(void) {
  cuda_require_device();
  cuda_ctx *c = dp_calloc(1, sizeof *c, "cuda backend");
  if (g_cfg.device >= 0) CUDA_CHECK(cudaSetDevice(g_cfg.device), "selecting the configured GPU");
  CUDA_CHECK(cudaGetDevice(&c->device), "querying the current device");
  c->precision = g_cfg.precision;
  c->deterministic = g_cfg.deterministic;
  c->workspace_limit = g_cfg.workspace_limit;
  struct cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, c->device), "querying device properties");
  if ((c->precision == CUDA_PREC_BF16 || c->precision == CUDA_PREC_TF32) && prop.major < 8) {
    LOG_WARN("%s needs sm_80+; %s is sm_%d%d, using fp32", cuda_precision_name(c->precision),
             prop.name, prop.major, prop.minor);
    c->precision = CUDA_PREC_FP32;
  }
  CUDA_CHECK(cudaStreamCreateWithFlags(&c->compute, cudaStreamNonBlocking), "creating compute stream");
  CUDA_CHECK(cudaStreamCreateWithFlags(&c->copy, cudaStreamNonBlocking), "creating copy stream");
  CUDA_CHECK(cudaStreamCreateWithFlags(&c->comm, cudaStreamNonBlocking), "creating comm stream");
  CUDNN_CHECK(cudnnCreate(&c->cudnn), "creating cuDNN handle");
  CUDNN_CHECK(cudnnSetStream(c->cudnn, c->compute), "binding cuDNN to the compute stream");
  CUBLAS_CHECK(cublasCreate(&c->cublas), "creating cuBLAS handle");
  CUBLAS_CHECK(cublasSetStream(c->cublas, c->compute), "binding cuBLAS to the compute stream");
  CUBLAS_CHECK(cublasSetMathMode(c->cublas, c->precision == CUDA_PREC_FP32
                                                ? CUBLAS_PEDANTIC_MATH
                                                : CUBLAS_TF32_TENSOR_OP_MATH),
               "setting the cuBLAS math mode");
  CUBLAS_CHECK(cublasLtCreate(&c->cublaslt), "creating cuBLASLt handle");
  LOG_INFO("CUDA device %d: %s (sm_%d%d, %.1f GiB), precision %s%s", c->device, prop.name,
           prop.major, prop.minor, (double)prop.totalGlobalMem / (1 << 30),
           cuda_precision_name(c->precision), c->deterministic ? ", deterministic" : "");
  return c;
}

void cuda_backend_ctx_destroy(void *ctx) {
  cuda_ctx *c = ctx;
  if (!c) return;
  cudaStreamSynchronize(c->compute);
  for (cuda_op_state *st = c->op_states, *nx; st; st = nx) {
    nx = st->next;
    if (st->dev) cudaFree(st->dev);
    if (st->host_free) st->host_free(st->host);
    else free(st->host);
    free(st);
  }
  if (c->workspace) cudaFree(c->workspace);
  if (c->amp) cudaFree(c->amp);
  cublasLtDestroy(c->cublaslt);
  cublasDestroy(c->cublas);
  cudnnDestroy(c->cudnn);
  cudaStreamDestroy(c->comm);
  cudaStreamDestroy(c->copy);
  cudaStreamDestroy(c->compute);
  free(c);
}

void *cuda_malloc_tracked(cuda_ctx *c, int64_t bytes, const char *what) {
  void *p = NULL;
  if (bytes <= 0) bytes = 256;
  cudaError_t e = cudaMalloc(&p, (size_t)bytes);
  if (e != cudaSuccess) {
    size_t fr = 0, tot = 0;
    (void)cudaGetLastError();
    cudaMemGetInfo(&fr, &tot);
    DP_FATAL(what, "lower --batch (or run the batch-size search)",
             "cudaMalloc of %.1f MiB failed (%s); %.1f of %.1f MiB free, %.1f MiB already ours",
             (double)bytes / 1048576.0, cudaGetErrorString(e), (double)fr / 1048576.0,
             (double)tot / 1048576.0, c ? (double)c->allocated_bytes / 1048576.0 : 0.0);
  }
  if (c) {
    c->allocated_bytes += bytes;
    if (c->allocated_bytes > c->peak_bytes) c->peak_bytes = c->allocated_bytes;
  }
  return p;
}

void cuda_free_tracked(cuda_ctx *c, void *p, int64_t bytes) {
  if (!p) return;
  CUDA_CHECK(cudaFree(p), "freeing device memory");
  if (c) c->allocated_bytes -= bytes > 0 ? bytes : 256;
}

// Grows a shared device buffer of the context to at least `bytes` (setup
// time only: the free synchronises with the compute stream).
static void buffer_reserve(cuda_ctx *c, void **buf, int64_t *have, int64_t bytes, const char *what) {
  if (bytes <= *have) return;
  CUDA_CHECK(cudaStreamSynchronize(c->compute), what);
  cuda_free_tracked(c, *buf, *have);
  *buf = cuda_malloc_tracked(c, bytes, what);
  *have = bytes;
}
void cuda_workspace_reserve(cuda_ctx *c, int64_t bytes) {
  buffer_reserve(c, &c->workspace, &c->workspace_bytes, bytes, "growing the GPU workspace");
}
void cuda_amp_reserve(cuda_ctx *c, int64_t bytes) {
  buffer_reserve(c, &c->amp, &c->amp_bytes, bytes, "growing the autocast staging buffer");
}

int64_t cuda_mem_used(void) {
  size_t fr = 0, tot = 0;
  CUDA_CHECK(cudaMemGetInfo(&fr, &tot), "reading device memory use");
  return (int64_t)(tot - fr);
}

cuda_op_state *cuda_op_state_get(cuda_ctx *c, nn_op *op, int64_t bytes) {
  // One slot per op (nn_op.be_state); the context's list only owns the memory.
  if (op->be_state) return op->be_state;
  cuda_op_state *st = dp_calloc(1, sizeof *st, "op state");
  st->op = op;
  st->bytes = bytes;
  if (bytes > 0) {
    st->dev = cuda_malloc_tracked(c, bytes, "op-private device memory");
    // On the compute stream: the backend's streams are non-blocking and do
    // not order after the legacy default stream a plain cudaMemset uses.
    CUDA_CHECK(cudaMemsetAsync(st->dev, 0, (size_t)bytes, c->compute), "zeroing op-private device memory");
  }
  st->next = c->op_states;
  c->op_states = st;
  op->be_state = st;
  return st;
}

void *cuda_backend_alloc(void *ctx, size_t bytes, const char *what) {
  return cuda_malloc_tracked(ctx, (int64_t)bytes, what);
}

void cuda_backend_free(void *ctx, void *p, size_t bytes) {
  cuda_ctx *c = ctx;
  if (!p) return;
  CUDA_CHECK(cudaStreamSynchronize(c->compute), "freeing device memory");
  cuda_free_tracked(c, p, (int64_t)bytes);
}

void cuda_backend_memset(void *ctx, void *p, int value, size_t bytes) {
  cuda_ctx *c = ctx;
  CUDA_CHECK(cudaMemsetAsync(p, value, bytes, c->compute), "clearing device memory");
  CUDA_CHECK(cudaStreamSynchronize(c->compute), "clearing device memory");
}

void cuda_backend_upload(void *ctx, void *dst_dev, const void *src_host, size_t bytes) {
  cuda_ctx *c = ctx;
  CUDA_CHECK(cudaMemcpyAsync(dst_dev, src_host, bytes, cudaMemcpyHostToDevice, c->compute), "uploading to the GPU");
  CUDA_CHECK(cudaStreamSynchronize(c->compute), "uploading to the GPU");
}

void cuda_backend_download(void *ctx, void *dst_host, const void *src_dev, size_t bytes) {
  cuda_ctx *c = ctx;
  CUDA_CHECK(cudaMemcpyAsync(dst_host, src_dev, bytes, cudaMemcpyDeviceToHost, c->compute), "reading back from the GPU");
  CUDA_CHECK(cudaStreamSynchronize(c->compute), "reading back from the GPU");
}

// Bytes the context itself holds (workspace, staging, op-private and
// optimizer state): everything tracked minus what graph.c allocated, which
// the graph subtracts itself (nn_graph_memory_plan).
static int64_t cuda_backend_ctx_bytes(void *ctx) { return ctx ? ((cuda_ctx *)ctx)->peak_bytes : 0; }
static int64_t cuda_backend_measured_bytes(void *ctx) { return cuda_mem_used(); }

static const nn_backend_vt cuda_backend_vt = {
    .name = "cuda",
    .kind = NN_BACKEND_CUDA,
    .ops = cuda_op_table,
    .host_memory = 0,
    .ctx_create = cuda_backend_ctx_create,
    .ctx_destroy = cuda_backend_ctx_destroy,
    .alloc = cuda_backend_alloc,
    .free = cuda_backend_free,
    .memset = cuda_backend_memset,
    .upload = cuda_backend_upload,
    .download = cuda_backend_download,
    .ctx_bytes = cuda_backend_ctx_bytes,
    .measured_bytes = cuda_backend_measured_bytes,
};

const nn_backend_vt *cuda_backend(void) { return &cuda_backend_vt; }
