// NCCL path with the ranks of this launch (ctest: 1 rank, and 2 ranks under
// mpirun when 2 GPUs exist): bootstrap over MPI, bucketed ncclAvg all-reduce
// fed by grad_ready calls in backward order, fp32 and bf16 on the wire,
// against a reference computed on the host from every rank's known input:
//   fp32: the exact average (inputs are multiples of 1/1024 whose sums are
//         exact in fp32, so any rank count gives bitwise-known results);
//   bf16: each rank's values rounded to bf16 (RNE), averaged, rounded to
//         bf16 again: with 1 rank this still proves every element went
//         through the wire path (the inputs are not bf16-representable, so an
//         untouched bucket differs), with 2 ranks a bound of 1 bf16 ulp.
// Also: a disabled (accumulation) micro-step moves nothing; the overflow flag
// agreement (any rank's flag is seen by all). Label gpu: exit 77 without a
// GPU; the 2-rank entry also skips when fewer GPUs than ranks exist.
#include <math.h>
#include <mpi.h>
#include <string.h>

#include "backend/cuda/kernels.h"
#include "dist/nccl_reduce.h"
#include "gpu_util.h"

static float input(int64_t i, int rank) {
  // Multiples of 1/1024 in [-64, 64) plus a rank offset: exact fp32 sums; the
  // 1/1024 fraction needs more than bf16's 8 bits, so bf16 rounding shows.
  return (float)(((i * 7919) % 131072) - 65536) / 1024.0f + 0.25f * (float)rank + 1.0f / 1024.0f;
}

static float bf16_round(float f) {   // host RNE, the wire format
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  u &= 0xFFFF0000u;
  memcpy(&f, &u, 4);
  return f;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, world;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  char msg[256];
  int ndev = cuda_device_probe(msg, sizeof msg), skip = ndev < world;
  // Every rank decides together, so a skip never leaves a peer in a collective.
  MPI_Allreduce(MPI_IN_PLACE, &skip, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (skip) {
    if (rank == 0) printf("SKIP: %d rank(s) need as many GPUs; this node has %d (%s)\n", world, ndev, msg);
    MPI_Finalize();
    return TU_SKIP;
  }
  CUDA_CHECK(cudaSetDevice(rank % ndev), "selecting the device");
  cuda_backend_configure(rank % ndev, CUDA_PREC_FP32, 1, 0);
  cuda_ctx *cx = cuda_backend_ctx_create();
  cuda_nccl nc;
  cuda_nccl_init(&nc, MPI_COMM_WORLD, 60.0);
  const int64_t n = 3000000;   // ~12 MB: several 4 MB buckets, the first 256 KB
  float *h = malloc((size_t)n * 4), *want = malloc((size_t)n * 4), *want16 = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) {
    h[i] = input(i, rank);
    double s = 0, s16 = 0;
    for (int r = 0; r < world; r++) {
      s += input(i, r);
      s16 += bf16_round(input(i, r));
    }
    want[i] = (float)(s / world);
    want16[i] = bf16_round((float)(s16 / world));
  }
  float *dg = gu_up(h, n * 4);
  for (int bf16 = 0; bf16 < 2; bf16++) {
    CUDA_CHECK(cudaMemcpy(dg, h, (size_t)n * 4, cudaMemcpyHostToDevice), "reset");
    CUDA_CHECK(cudaDeviceSynchronize(), "reset");   // the reducer's streams are non-blocking
    cuda_grad_reducer r;
    cuda_grad_reducer_init(&r, &nc, cx, dg, n, 4 << 20, 256 << 10, bf16);
    for (int step = 0; step < 3; step++) {   // three steps: the two alternating done events and the lagged check
      if (step) {
        CUDA_CHECK(cudaMemcpy(dg, h, (size_t)n * 4, cudaMemcpyHostToDevice), "reset");
        CUDA_CHECK(cudaDeviceSynchronize(), "reset");
      }
      cuda_grad_reducer_begin(&r, 1);
      for (int64_t up = 100000; up < n; up += 700000) cuda_grad_reducer_ready(&r, up);  // backward progress
      cuda_grad_reducer_finish(&r);
      cuda_grad_reducer_check(&r);
      cuda_grad_reducer_drain(&r);
      float *got = gu_down(dg, n * 4);
      if (!bf16) {
        // Exact for 1, 2, 4 ... ranks (the average is a power-of-two scaling
        // of an exact sum); otherwise NCCL's 1/world multiply may round once.
        int pow2 = (world & (world - 1)) == 0;
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++)
          bad += pow2 ? got[i] != want[i] : fabsf(got[i] - want[i]) > fabsf(want[i]) * 2.4e-7f;
        TU_CHECK(bad == 0, "fp32 all-reduce step %d: %lld of %lld elements differ from the exact average", step,
                 (long long)bad, (long long)n);
      } else if (world == 1) {
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) bad += got[i] != want16[i];
        TU_CHECK(bad == 0, "bf16 wire step %d: %lld elements are not the bf16-rounded input", step, (long long)bad);
      } else {
        // NCCL's bf16 sum order differs from the host's: allow one bf16 ulp.
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) bad += fabsf(got[i] - want16[i]) > fabsf(want16[i]) * (1.0f / 128.0f) + 1e-6f;
        TU_CHECK(bad == 0, "bf16 all-reduce step %d: %lld elements off by more than 1 ulp", step, (long long)bad);
      }
      free(got);
    }
    // Accumulation micro-step: nothing moves.
    CUDA_CHECK(cudaMemcpy(dg, h, (size_t)n * 4, cudaMemcpyHostToDevice), "reset");
    CUDA_CHECK(cudaDeviceSynchronize(), "reset");
    cuda_grad_reducer_begin(&r, 0);
    cuda_grad_reducer_ready(&r, n);
    cuda_grad_reducer_finish(&r);
    float *got = gu_down(dg, n * 4);
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
  free(want16);
  cuda_nccl_destroy(&nc);
  cuda_backend_ctx_destroy(cx);
  if (rank == 0) printf("%d rank(s): fp32 exact, bf16 wire checked\n", world);
  int rc = tu_finish("test_gpu_nccl");
  MPI_Finalize();
  return rc;
}
