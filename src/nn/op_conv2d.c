#include <math.h>

#include "nn/op_common.h"
#include "nn/op_conv2d.h"
#include "nn/ops.h"


nn_tid nn_conv2d(nn_graph *g, const char *name, nn_tid x, int64_t out_ch, int k, int stride,
                 int pad, int bias) {
  // A copy: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor tx = *nn_t(g, x), *t = &tx;
  if (t->ndim != 4 || k < 1 || stride < 1 || pad < 0 || out_ch < 1)
    DP_FATAL("building conv2d", "x must be (N, H, W, C), k/stride >= 1, pad >= 0",
             "%s: ndim %d k %d stride %d pad %d out %lld", name, t->ndim, k, stride, pad,
             (long long)out_ch);
  int64_t n = t->dim[0], h = t->dim[1], w = t->dim[2], c = t->dim[3];
  int64_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
  if (h + 2 * pad < k || w + 2 * pad < k)
    DP_FATAL("building conv2d", "input too small for this model?", "%s: %lldx%lld input, k %d",
             name, (long long)h, (long long)w, k);
  nn_conv2d_op *op = NN_OP_NEW(nn_conv2d_op, g, conv2d, name);
  op->x = x;
  nn_op_input(&op->base, x, 1);   // the weight gradient needs x
  op->in_ch = c;
  op->out_ch = out_ch;
  op->k = k;
  op->stride = stride;
  op->pad = pad;
  op->has_bias = bias;
  char pn[NN_NAME_MAX];
  int64_t ws[4] = {out_ch, c, k, k};
  nn_join_name(pn, sizeof pn, name, "weight");
  // torchvision ResNet init; builders may change init/init_arg afterwards.
  op->w_pid = nn_param_new(g, pn, 4, ws, NN_PARAM_WEIGHT, NN_INIT_KAIMING_FAN_OUT, 0);
  op->b_pid = -1;
  if (bias) {
    nn_join_name(pn, sizeof pn, name, "bias");
    // torch's Conv2d default: U(+-1/sqrt(fan_in)).
    op->b_pid = nn_param_new(g, pn, 1, &out_ch, NN_PARAM_BIAS, NN_INIT_UNIFORM,
                             (float)(1.0 / sqrt((double)(c * k * k))));
  }
  int64_t yd[4] = {n, oh, ow, out_ch};
  op->y = nn_tensor_new(g, name, 4, yd, 1);
  op->base.out = op->y;
  op->base.flops = 2 * n * oh * ow * out_ch * c * k * k;
  // The backend's plan hook adds its workspace and saved state (e.g. the
  // CPU's oneDNN-format weights) when the op is pushed.
  nn_op_push(g, &op->base);
  return op->y;
}
