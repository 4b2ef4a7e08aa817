#include "backend/cuda/cuda_input.h"

#include <string.h>

#include "backend/cuda/kernels.h"

void cuda_input_init(cuda_input *in, cuda_ctx *cx, int64_t batch, int64_t h, int64_t w, int c_in, int c_out,
                     const float *mean, const float *std) {
  memset(in, 0, sizeof *in);
  if (c_out < 1 || c_out > 4 || !(c_in == c_out || c_in == 1))
    DP_FATAL("GPU input setup", "images must have 1, 3 (or 4) channels", "c_in %d c_out %d", c_in, c_out);
  in->cx = cx;
  in->batch = batch;
  in->pixels_per_image = h * w;
  in->c_in = c_in;
  in->c_out = c_out;
  for (int c = 0; c < c_out; c++) {
    in->mean[c] = mean[c];
    in->std[c] = std[c];
  }
  size_t img = (size_t)(batch * h * w * c_in);
  for (int s = 0; s < 2; s++) {
    CUDA_CHECK(cudaHostAlloc((void **)&in->host[s], img, cudaHostAllocDefault), "pinned input batch");
    CUDA_CHECK(cudaHostAlloc((void **)&in->labels_host[s], (size_t)batch * 4, cudaHostAllocDefault), "pinned labels");
    in->dev[s] = cuda_malloc_tracked(cx, (int64_t)img, "device input batch");
    in->labels_dev[s] = cuda_malloc_tracked(cx, batch * 4, "device labels");
    CUDA_CHECK(cudaEventCreateWithFlags(&in->copied[s], cudaEventDisableTiming), "input events");
    CUDA_CHECK(cudaEventCreateWithFlags(&in->consumed[s], cudaEventDisableTiming), "input events");
  }
}

void cuda_input_free(cuda_input *in) {
  if (!in->cx) return;
  CUDA_CHECK(cudaStreamSynchronize(in->cx->copy), "input teardown");
  CUDA_CHECK(cudaStreamSynchronize(in->cx->compute), "input teardown");
  size_t img = (size_t)(in->batch * in->pixels_per_image * in->c_in);
  for (int s = 0; s < 2; s++) {
    cudaFreeHost(in->host[s]);
    cudaFreeHost(in->labels_host[s]);
    cuda_free_tracked(in->cx, in->dev[s], (int64_t)img);
    cuda_free_tracked(in->cx, in->labels_dev[s], in->batch * 4);
    cudaEventDestroy(in->copied[s]);
    cudaEventDestroy(in->consumed[s]);
  }
  memset(in, 0, sizeof *in);
}

uint8_t *cuda_input_host_slot(cuda_input *in, int slot, int32_t **labels) {
  // An event never recorded counts as complete, so the first use does not wait.
  CUDA_CHECK(cudaEventSynchronize(in->copied[slot & 1]), "waiting for the previous input copy");
  if (labels) *labels = in->labels_host[slot & 1];
  return in->host[slot & 1];
}

void cuda_input_submit(cuda_input *in, int slot, int64_t n) {
  int s = slot & 1;
  if (n < 0 || n > in->batch) DP_FATAL("GPU input", "loader bug", "batch of %lld > %lld", (long long)n, (long long)in->batch);
  cudaStream_t cp = in->cx->copy;
  // The device slot may still be read by the normalise kernel of two steps ago.
  CUDA_CHECK(cudaStreamWaitEvent(cp, in->consumed[s], 0), "ordering the input copy");
  CUDA_CHECK(cudaMemcpyAsync(in->dev[s], in->host[s], (size_t)(n * in->pixels_per_image * in->c_in),
                             cudaMemcpyHostToDevice, cp), "copying the input batch");
  CUDA_CHECK(cudaMemcpyAsync(in->labels_dev[s], in->labels_host[s], (size_t)n * 4, cudaMemcpyHostToDevice, cp),
             "copying the labels");
  CUDA_CHECK(cudaEventRecord(in->copied[s], cp), "marking the input copied");
}

const int32_t *cuda_input_to_graph(cuda_input *in, int slot, int64_t n, float *dst) {
  int s = slot & 1;
  cudaStream_t cs = in->cx->compute;
  CUDA_CHECK(cudaStreamWaitEvent(cs, in->copied[s], 0), "waiting for the input copy");
  CUDA_CHECK(dp_cuda_input_u8_to_f32(in->dev[s], dst, n * in->pixels_per_image, in->c_in, in->c_out, in->mean,
                                     in->std, cs), "normalising the input batch");
  CUDA_CHECK(cudaEventRecord(in->consumed[s], cs), "marking the input consumed");
  return in->labels_dev[s];
}
