// NCCL path with the ranks of this launch (1 under ctest; more with mpirun):
// bootstrap over MPI, bucketed ncclAvg all-reduce fed by grad_ready calls in
// backward order (fp32 and bf16 on the wire), the any-rank overflow flag.
// Label gpu: skipped (77) without a device.
#include <math.h>
#include <mpi.h>

#include "backend/cuda/kernels.h"
#include "dist/nccl_reduce.h"
#include "gpu_util.h"

int main(int argc, char **argv) {
  gu_require_gpu();
  MPI_Init(&argc, &argv);
  int rank, world;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  int ndev = cuda_device_count();
  CUDA_CHECK(cudaSetDevice(rank % ndev), "selecting the device");
  cuda_backend_configure(rank % ndev, CUDA_PREC_FP32, 1, 0);
  cuda_ctx *cx = cuda_backend_ctx_create();
  cuda_nccl nc;
  cuda_nccl_init(&nc, MPI_COMM_WORLD, 60.0);
  const int64_t n = 3000000;   // ~12 MB: several 4 MB buckets, first one 256 KB
  float *h = malloc((size_t)n * 4), *want = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) h[i] = (float)((i % 1000) * 0.001 + rank);
  for (int64_t i = 0; i < n; i++) want[i] = (float)((i % 1000) * 0.001 + (world - 1) / 2.0);
  float *dg = gu_up(h, n * 4);
  for (int bf16 = 0; bf16 < 2; bf16++) {
    CUDA_CHECK(cudaMemcpy(dg, h, (size_t)n * 4, cudaMemcpyHostToDevice), "reset");
    CUDA_CHECK(cudaDeviceSynchronize(), "reset");   // the reducer's streams are non-blocking
    cuda_grad_reducer r;
    cuda_grad_reducer_init(&r, &nc, cx, dg, n, 4 << 20, 256 << 10, bf16);
    cuda_grad_reducer_begin(&r, 1);
    for (int64_t up = 100000; up < n; up += 700000) cuda_grad_reducer_ready(&r, up);  // backward progress
    cuda_grad_reducer_finish(&r);
    cuda_grad_reducer_check(&r);
    float *got = gu_down(dg, n * 4);
    tu_close(bf16 ? "allreduce avg (bf16 wire)" : "allreduce avg (fp32)", got, want, n, bf16 ? 1e-2 : 1e-6);
    free(got);
    // Accumulation micro-step: nothing moves.
    CUDA_CHECK(cudaMemcpy(dg, h, (size_t)n * 4, cudaMemcpyHostToDevice), "reset");
    CUDA_CHECK(cudaDeviceSynchronize(), "reset");
    cuda_grad_reducer_begin(&r, 0);
    cuda_grad_reducer_ready(&r, n);
    cuda_grad_reducer_finish(&r);
    got = gu_down(dg, n * 4);
    tu_close("disabled reducer leaves grads", got, h, n, 0);
    free(got);
    cuda_grad_reducer_free(&r);
  }
  int32_t flag = rank == world - 1;   // only the last rank overflowed
  int32_t *df = gu_up(&flag, 4);
  TU_CHECK(cuda_nccl_flag_any(&nc, cx, df) == 1, "overflow flag not seen by rank %d", rank);
  flag = 0;
  CUDA_CHECK(cudaMemcpy(df, &flag, 4, cudaMemcpyHostToDevice), "reset flag");
  CUDA_CHECK(cudaDeviceSynchronize(), "reset flag");
  TU_CHECK(cuda_nccl_flag_any(&nc, cx, df) == 0, "clean step flagged");
  cudaFree(df);
  cudaFree(dg);
  free(h);
  free(want);
  cuda_nccl_destroy(&nc);
  cuda_backend_ctx_destroy(cx);
  int rc = tu_finish("test_gpu_nccl");
  MPI_Finalize();
  return rc;
}
