// Input path to the GPU: decoded uint8 NHWC batches in pinned, double-buffered
// host memory, copied on the copy stream, normalised on the compute stream
// (dp_cuda_input_u8_to_f32), so the compute stream never waits for a host copy
// and the loader never overwrites a buffer still in flight.
//
// Per step, slot = step % 2:
//   loader:  p = cuda_input_host_slot(in, slot, &lab); fill p, lab; cuda_input_submit(in, slot, n)
//   trainer: cuda_input_to_graph(in, slot, n, g input tensor, &g->labels)
#ifndef DP_BACKEND_CUDA_INPUT_H
#define DP_BACKEND_CUDA_INPUT_H
#include <stdint.h>

#include "backend/cuda/cuda_backend.h"

typedef struct {
  cuda_ctx *cx;
  int64_t batch, pixels_per_image;
  int c_in, c_out;
  float mean[4], std[4];
  uint8_t *host[2], *dev[2];              // pinned host / device images
  int32_t *labels_host[2], *labels_dev[2];
  cudaEvent_t copied[2], consumed[2];
} cuda_input;

void cuda_input_init(cuda_input *in, cuda_ctx *cx, int64_t batch, int64_t h, int64_t w, int c_in, int c_out,
                     const float *mean, const float *std);
void cuda_input_free(cuda_input *in);
// Pinned buffers of `slot` for the loader, once their previous copy is done.
uint8_t *cuda_input_host_slot(cuda_input *in, int slot, int32_t **labels);
// Queues the host-to-device copy of n images (and labels) on the copy stream.
void cuda_input_submit(cuda_input *in, int slot, int64_t n);
// Makes the compute stream wait for the copy, normalises into dst (fp32 NHWC)
// and returns the device labels of the slot.
const int32_t *cuda_input_to_graph(cuda_input *in, int slot, int64_t n, float *dst);
#endif
