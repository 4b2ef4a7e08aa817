// dropout on the CPU. The mask of chunk j (NN_DROPOUT_CHUNK elements) comes
// from rng stream (seed ^ domain, step, op_index << 32 | j), so it is the same
// for any thread count and reproducible from (seed, step).
#include <stdint.h>
#include <string.h>

#include "backend/cpu/dnnl_util.h"
#include "core/rng.h"
#include "nn/op_dropout.h"

#define DROPOUT_DOMAIN 0x64726f706f7574ULL   // "dropout": keeps these streams apart

static void dropout_forward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_dropout_op *op = (nn_dropout_op *)o;
  const nn_tensor *x = nn_t(g, op->x);
  nn_tensor *y = nn_t(g, op->y);
  int64_t n = x->numel;
  op->fwd_training = g->training && op->p > 0.0f;
  if (!op->fwd_training) {
    memcpy(y->data, x->data, (size_t)n * 4);
    return;
  }
  uint8_t *mask = y->extra;
  float p = op->p, scale = 1.0f / (1.0f - p);
  int64_t chunks = (n + NN_DROPOUT_CHUNK - 1) / NN_DROPOUT_CHUNK;
  uint64_t seed = g->seed ^ DROPOUT_DOMAIN, step = ns->step, id = (uint64_t)op->op_index << 32;
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < chunks; j++) {
    dp_rng r = dp_rng_stream3(seed, step, id | (uint64_t)j);
    int64_t lo = j * NN_DROPOUT_CHUNK, hi = lo + NN_DROPOUT_CHUNK < n ? lo + NN_DROPOUT_CHUNK : n;
    for (int64_t i = lo; i < hi; i++) {
      uint8_t keep = dp_rng_uniformf(&r) >= p;
      mask[i] = keep;
      y->data[i] = keep ? x->data[i] * scale : 0.0f;
    }
  }
}

static void dropout_backward(nn_op *o, nn_graph *g, nn_step *ns) {
  nn_dropout_op *op = (nn_dropout_op *)o;
  int add;
  float *dx = nn_grad_dst(g, op->x, &add);
  if (!dx) return;
  const nn_tensor *y = nn_t(g, op->y);
  int64_t n = y->numel;
  if (!op->fwd_training) {
    cpu_copy_or_add(dx, y->grad, n, add);
    return;
  }
  const uint8_t *mask = y->extra;
  const float *dy = y->grad;
  float scale = 1.0f / (1.0f - op->p);
  // Unconditional loads and separate loops keep these vectorisable.
  if (add) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
      float v = dy[i] * scale;
      dx[i] += mask[i] ? v : 0.0f;
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
      float v = dy[i] * scale;
      dx[i] = mask[i] ? v : 0.0f;
    }
  }
}

const nn_op_vt dropout_cpu_vt = {"dropout", NULL, dropout_forward, dropout_backward, NULL, NULL};
