// The tiny model whose weights the safetensors seeds hold and the target
// loads into (shared by make_seeds.c and fuzz_safetensors.c).
#ifndef DP_FUZZ_MODEL_H
#define DP_FUZZ_MODEL_H
#include "backend/cpu/cpu.h"
#include "nn/models/models.h"
#include "nn/ops.h"

static inline nn_graph *fuzz_tiny_model(model_cfg *mc) {
  model_cfg_default(mc, "cnn", 16, 3, 3);
  mc->cnn_width = 2;
  nn_graph *g = nn_graph_create(cpu_backend(), 1, 7);
  model_build(g, mc);
  nn_xent_cfg xc = {0.0f, NULL, 3};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  nn_graph_finalize(g);
  return g;
}
#endif
