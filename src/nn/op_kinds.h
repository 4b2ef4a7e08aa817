// The op kinds of the static graph. nn/ builds ops of these kinds; each
// backend supplies one function table per kind (nn_backend_vt.ops), so the
// graph layer never names a backend's symbols.
#ifndef DP_NN_OP_KINDS_H
#define DP_NN_OP_KINDS_H
#define NN_OP_KIND_LIST(X)                                                                   \
  X(conv2d) X(batchnorm2d) X(batchnorm2d_relu) X(relu) X(add) X(add_relu) X(maxpool2d)       \
  X(global_avgpool) X(flatten) X(linear) X(softmax) X(softmax_xent) X(dropout) X(gelu)       \
  X(layernorm) X(attention) X(patch_embed) X(class_token) X(pos_embed) X(take_token0)

#define NN_OP_KIND_ENUM_(k) NN_OP_##k,
typedef enum { NN_OP_KIND_LIST(NN_OP_KIND_ENUM_) NN_OP_KIND_COUNT } nn_op_kind;
#undef NN_OP_KIND_ENUM_
#endif
