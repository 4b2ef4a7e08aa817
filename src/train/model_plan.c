#include "train/model_plan.h"

#include <string.h>

#include "backend/cpu/cpu.h"
#include "nn/graph.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "nn/optim.h"

int model_plan_describe(const char *model, int64_t image_size, int64_t classes, const char *optimizer,
                        int64_t batch, model_plan_info *out) {
  memset(out, 0, sizeof *out);
  model_cfg cfg;
  if (image_size < 1 || classes < 1 || batch < 1 || !model_cfg_default(&cfg, model, image_size, 3, classes)) return -1;
  nn_graph *g = nn_graph_create(cpu_backend(), batch, 0);
  model_build(g, &cfg);
  nn_xent_cfg xc = {.label_smoothing = 0, .class_weights = NULL, .num_classes = classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  out->flops_fwd = (double)nn_flops_per_image(g);
  int64_t np = 0;
  for (int32_t i = 0; i < g->nparams; i++) np += g->params[i].numel;
  out->params = (double)np;
  optim_kind k = optimizer && !strcmp(optimizer, "adamw") ? OPTIM_ADAMW : OPTIM_SGD;
  out->plan_bytes = (double)nn_graph_memory_plan(g, optim_state_copies(k)).total_bytes;
  nn_graph_destroy(g);
  return 0;
}
