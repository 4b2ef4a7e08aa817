#include "nn/op_maxpool2d.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_maxpool2d(nn_graph *g, const char *name, nn_tid x, int k, int stride, int pad) {
  // A copy: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor tx = *nn_t(g, x), *t = &tx;
  if (t->ndim != 4 || k < 1 || stride < 1 || pad < 0 || 2 * pad > k)
    DP_FATAL("building maxpool2d", "x must be (N, H, W, C); pad <= k/2 as torch requires",
             "%s: ndim %d k %d stride %d pad %d", name, t->ndim, k, stride, pad);
  int64_t oh = (t->dim[1] + 2 * pad - k) / stride + 1, ow = (t->dim[2] + 2 * pad - k) / stride + 1;
  if (oh < 1 || ow < 1)
    DP_FATAL("building maxpool2d", "input too small for this model?", "%s: output %lldx%lld",
             name, (long long)oh, (long long)ow);
  if (k > 16)
    DP_FATAL("building maxpool2d", "use a kernel of at most 16 x 16",
             "%s: k %d (the saved argmax is one byte per window)", name, k);
  nn_maxpool2d_op *op = NN_OP_NEW(nn_maxpool2d_op, g, maxpool2d, name);
  op->x = x;
  // Keeps the argmax of each window (y's extra, one byte per output element),
  // not x: k * k <= 256 positions.
  nn_op_input(&op->base, x, 0);
  op->k = k;
  op->stride = stride;
  op->pad = pad;
  int64_t yd[4] = {t->dim[0], oh, ow, t->dim[3]};
  op->y = nn_tensor_new(g, name, 4, yd, t->needs_grad);
  nn_t(g, op->y)->extra_bytes = nn_t(g, op->y)->numel;   // argmax u * k + v of each window
  op->base.out = op->y;
  op->base.flops = t->dim[0] * oh * ow * t->dim[3] * k * k;
  nn_op_push(g, &op->base);
  return op->y;
}
