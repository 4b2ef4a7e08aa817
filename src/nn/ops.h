// Op constructors. Each records one op on the tape of g and returns its output
// tensor. `name` is the torchvision module path that prefixes the op's
// parameter names (e.g. "layer1.0.conv1" -> "layer1.0.conv1.weight"); ops
// without parameters use it only for messages. The backend (g->backend)
// picks the function table; CPU tables live in backend/cpu/.
#ifndef DP_NN_OPS_H
#define DP_NN_OPS_H
#include "nn/graph.h"

// ---- convolution and pooling (x: (N, H, W, C) on the CPU) -------------------
// Weight (out_ch, in_ch, k, k), optional bias (out_ch). Dilation 1.
nn_tid nn_conv2d(nn_graph *g, const char *name, nn_tid x, int64_t out_ch, int k,
                 int stride, int pad, int bias);
// Training: batch statistics (biased var for normalising, unbiased var for the
// running update, like torch), running = (1 - momentum) * running + momentum * batch.
// Eval: running statistics. Params "<name>.weight", "<name>.bias";
// buffers "<name>.running_mean", "<name>.running_var".
// zero_init: weight starts at 0 (last BN of a residual block).
nn_tid nn_batchnorm2d(nn_graph *g, const char *name, nn_tid x, float momentum, float eps,
                      int zero_init);
// BN followed by ReLU as one op (what the CNN and ResNet use: oneDNN fuses it).
nn_tid nn_batchnorm2d_relu(nn_graph *g, const char *name, nn_tid x, float momentum, float eps,
                           int zero_init);
nn_tid nn_relu(nn_graph *g, const char *name, nn_tid x);
nn_tid nn_maxpool2d(nn_graph *g, const char *name, nn_tid x, int k, int stride, int pad);
nn_tid nn_global_avgpool(nn_graph *g, const char *name, nn_tid x);   // (N,H,W,C) -> (N,C)
nn_tid nn_flatten(nn_graph *g, const char *name, nn_tid x);          // -> (N, rest)

// ---- linear and regularisation ----------------------------------------------
// x: (..., in) -> (..., out). Weight (out, in), bias (out). Init like torch
// nn.Linear (kaiming-uniform a=sqrt(5): U(+-1/sqrt(in))) unless changed.
nn_tid nn_linear(nn_graph *g, const char *name, nn_tid x, int64_t out, int bias);
nn_tid nn_add(nn_graph *g, const char *name, nn_tid a, nn_tid b);    // same shape
// y = relu(a + b): the residual join of ResNet blocks as one op.
nn_tid nn_add_relu(nn_graph *g, const char *name, nn_tid a, nn_tid b);
// Inverted dropout with probability p; the mask stream is (g->seed, g->step, op).
nn_tid nn_dropout(nn_graph *g, const char *name, nn_tid x, float p);

// ---- transformer pieces (tokens: (N, T, D)) ---------------------------------
nn_tid nn_layernorm(nn_graph *g, const char *name, nn_tid x, float eps);
nn_tid nn_gelu(nn_graph *g, const char *name, nn_tid x);              // exact erf
nn_tid nn_softmax(nn_graph *g, const char *name, nn_tid x);           // over last dim
// Multi-head self-attention core: qkv (N, T, 3D) packed [q | k | v] as torch's
// in_proj -> (N, T, D) = concat_h softmax(q_h k_h^T / sqrt(dh)) v_h.
// The in/out projections are nn_linear ops around it.
nn_tid nn_attention(nn_graph *g, const char *name, nn_tid qkv, int heads);
// Patch embedding: conv k = s = patch on (N, H, W, C) -> tokens (N, HW/p^2, D).
nn_tid nn_patch_embed(nn_graph *g, const char *name, nn_tid x, int64_t dim, int patch);
// Prepend a learned class token (param "<name>", shape (1, 1, D)): (N,T,D) -> (N,T+1,D).
nn_tid nn_class_token(nn_graph *g, const char *name, nn_tid x);
// Add a learned position embedding (param "<name>", shape (1, T, D)).
nn_tid nn_pos_embed(nn_graph *g, const char *name, nn_tid x);
// Select token 0: (N, T, D) -> (N, D).
nn_tid nn_take_token0(nn_graph *g, const char *name, nn_tid x);

// ---- loss -------------------------------------------------------------------
typedef struct {
  float label_smoothing;      // torch semantics
  const float *class_weights; // (C) or NULL; copied at construction
  int64_t num_classes;
} nn_xent_cfg;
// Softmax cross-entropy over logits (N, C) with g->labels (hard) or
// g->soft_targets (N, C). Mean over the batch as torch's reduction='mean'
// (with weights: sum(w_y * l) / sum(w_y)). Output: scalar tensor, g->loss.
nn_tid nn_softmax_xent(nn_graph *g, const char *name, nn_tid logits, const nn_xent_cfg *cfg);
#endif
