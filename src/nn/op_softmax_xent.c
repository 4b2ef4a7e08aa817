#include "nn/op_softmax_xent.h"

#include "nn/op_common.h"
#include "nn/ops.h"


nn_tid nn_softmax_xent(nn_graph *g, const char *name, nn_tid logits, const nn_xent_cfg *cfg) {
  // A copy: nn_tensor_new below may move g->tensors (ASan: use after free).
  const nn_tensor tl = *nn_t(g, logits), *t = &tl;
  if (t->ndim != 2) DP_FATAL("building softmax_xent", "logits must be (N, C)", "%s: ndim %d", name, t->ndim);
  int64_t c = t->dim[1];
  if (cfg && cfg->num_classes > 0 && cfg->num_classes != c)
    DP_FATAL("building softmax_xent", "class count of the head and the loss differ",
             "%s: logits have %lld classes, cfg %lld", name, (long long)c, (long long)cfg->num_classes);
  float eps = cfg ? cfg->label_smoothing : 0.0f;
  if (!(eps >= 0.0f && eps <= 1.0f)) DP_FATAL("building softmax_xent", "label smoothing in [0, 1]", "%g", (double)eps);
  nn_softmax_xent_op *op = NN_OP_NEW(nn_softmax_xent_op, g, softmax_xent, name);
  op->x = logits;
  // The CPU backward reads the probabilities in y's extra, the CUDA one the
  // logits (pinned anyway: callers read them).
  nn_op_input(&op->base, logits, 1);
  op->rows = t->dim[0];
  op->classes = c;
  op->label_smoothing = eps;
  if (cfg && cfg->class_weights) {
    op->class_weights = dp_malloc((size_t)c * 4, "class weights");
    memcpy(op->class_weights, cfg->class_weights, (size_t)c * 4);
  }
  int64_t one = 1;
  op->y = nn_tensor_new(g, name, 1, &one, 1);
  nn_t(g, op->y)->extra_bytes = t->numel * 4;   // softmax probabilities
  op->base.out = op->y;
  op->base.flops = 5 * t->numel;
  g->loss_tensor = op->y;
  nn_op_push(g, &op->base);
  return op->y;
}
