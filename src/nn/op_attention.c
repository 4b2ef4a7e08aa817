#include "nn/op_attention.h"

#include <math.h>
#include <omp.h>

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_attention(nn_graph *g, const char *name, nn_tid qkv, int heads) {
  nn_tensor xt = *nn_t(g, qkv);
  if (xt.ndim != 3 || xt.dim[2] % 3 != 0 || heads < 1 || (xt.dim[2] / 3) % heads != 0)
    DP_FATAL("building attention", "hidden dim must be divisible by heads",
             "%s: qkv must be (N, T, 3D) with D %% heads == 0 (last dim %lld, heads %d)", name,
             (long long)xt.dim[xt.ndim - 1], heads);
  nn_attention_op *op = NN_OP_NEW(nn_attention_op, g, attention, name);
  op->qkv = qkv;
  nn_op_input(&op->base, qkv, 1);   // q, k, v for the gradients; P is in y's extra
  op->N = xt.dim[0];
  op->T = xt.dim[1];
  op->D = xt.dim[2] / 3;
  op->heads = heads;
  op->dh = op->D / heads;
  op->scale = (float)(1.0 / sqrt((double)op->dh));
  int64_t nt = omp_get_max_threads();
  if (nt > op->N * heads) nt = op->N * heads;
  op->nthreads = (int)nt;
  int64_t d[3] = {op->N, op->T, op->D};
  op->y = nn_tensor_new(g, name, 3, d, xt.needs_grad);
  nn_t(g, op->y)->extra_bytes = op->N * heads * op->T * op->T * (int64_t)sizeof(float);
  op->base.workspace_bytes = nt * op->T * op->T * (int64_t)sizeof(float);
  op->base.out = op->y;
  // QK^T and PV: 2 GEMMs of T*T*dh MACs per (n, head), plus the softmax.
  op->base.flops = 4 * op->N * op->T * op->T * op->D + 5 * op->N * heads * op->T * op->T;
  nn_op_push(g, &op->base);
  return op->y;
}
