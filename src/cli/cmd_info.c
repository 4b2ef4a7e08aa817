// dptrain info: layer summary, parameter count, forward FLOPs per image and
// the planned training memory of a model for a batch size. The graph is
// built but not finalized, so nothing model-sized is allocated: the memory
// plan and FLOP counts come from the op descriptors alone.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "cli/commands.h"
#include "core/opts.h"
#include "nn/graph.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "nn/optim.h"

typedef struct {
  char model[32], optimizer[16];
  int64_t classes, image_size, channels, batch, patch, cnn_width;
  int small_stem, no_summary;
} info_args;

#define IA info_args
static const dp_opt info_opt_list[] = {
    DP_OPT_S(IA, "model", model, DP_OPT_REQUIRED, "model name (cnn, resnet18, resnet50, vit_ti16, vit_s16, vit_b16)"),
    DP_OPT_I(IA, "classes", DP_OPT_I64, classes, 1, 1024, 0, "classes"),
    DP_OPT_I(IA, "image-size", DP_OPT_I64, image_size, 8, 8192, 0, "input H = W"),
    DP_OPT_I(IA, "channels", DP_OPT_I64, channels, 1, 3, 0, "input channels (1 or 3)"),
    DP_OPT_I(IA, "batch", DP_OPT_I64, batch, 1, 1 << 20, 0, "batch size for the memory plan"),
    DP_OPT_I(IA, "small-stem", DP_OPT_INT, small_stem, 0, 1, DP_OPT_BARE, "ResNet: 3x3 stride-1 stem, no max-pool (28-64 px)"),
    DP_OPT_I(IA, "patch", DP_OPT_I64, patch, 0, 1024, 0, "ViT patch size (0 = model default, 16)"),
    DP_OPT_I(IA, "cnn-width", DP_OPT_I64, cnn_width, 0, 4096, 0, "CNN base width (0 = default, 32)"),
    DP_OPT_S(IA, "optimizer", optimizer, 0, "optimizer state in the plan: sgd | adamw"),
    DP_OPT_I(IA, "no-summary", DP_OPT_INT, no_summary, 0, 1, DP_OPT_BARE, "skip the per-layer table"),
};
static const dp_opts info_table = {
    "dptrain info", info_opt_list, (int)(sizeof info_opt_list / sizeof info_opt_list[0]),
    "usage: dptrain info --model NAME [--classes C --image-size S --channels 1|3 --batch B] [options]\n"
    "Layer summary, parameters, forward FLOPs per image and the planned training memory.\n",
    0};

static double mib(int64_t b) { return (double)b / (1024.0 * 1024.0); }

int cmd_info(int argc, char **argv) {
  info_args a;
  memset(&a, 0, sizeof a);
  a.classes = 10;
  a.image_size = 224;
  a.channels = 3;
  a.batch = 32;
  snprintf(a.optimizer, sizeof a.optimizer, "sgd");
  int rc = dp_opts_parse(&info_table, &a, argc, argv);
  if (rc) return rc > 0 ? 0 : 2;
  const char *model = a.model, *opt = a.optimizer;
  int64_t classes = a.classes, size = a.image_size, channels = a.channels, batch = a.batch, patch = a.patch,
          width = a.cnn_width;
  int small_stem = a.small_stem, summary = !a.no_summary;
  if (!model_known(model)) {
    fprintf(stderr, "dptrain info: setting 'model': unknown model '%s' (known: %s)\n", model, model_names());
    return 2;
  }
  if (channels != 1 && channels != 3) {
    fprintf(stderr, "dptrain info: setting 'channels': must be 1 or 3\n");
    return 2;
  }
  optim_kind ok;
  if (!strcmp(opt, "sgd")) ok = OPTIM_SGD;
  else if (!strcmp(opt, "adamw")) ok = OPTIM_ADAMW;
  else {
    fprintf(stderr, "dptrain info: --optimizer must be sgd or adamw\n");
    return 2;
  }

  model_cfg cfg;
  model_cfg_default(&cfg, model, size, (int)channels, classes);
  cfg.small_stem = small_stem;
  if (patch) cfg.patch = (int)patch;
  if (width) cfg.cnn_width = (int)width;

  nn_graph *g = nn_graph_create(cpu_backend(), batch, 0);
  model_build(g, &cfg);
  nn_xent_cfg xc = {.label_smoothing = 0, .class_weights = NULL, .num_classes = classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);

  printf("model %s: input %lldx%lldx%lld, %lld classes%s, batch %lld\n\n", model, (long long)size,
         (long long)size, (long long)channels, (long long)classes,
         small_stem ? ", small stem" : "", (long long)batch);
  if (summary) {
    nn_graph_print_summary(g, stdout);
    printf("\n");
  }
  int64_t np = 0;
  for (int32_t i = 0; i < g->nparams; i++) np += g->params[i].numel;
  int64_t flops = nn_flops_per_image(g);
  printf("parameters        %lld (%.2f M) in %d tensors; BN buffers %lld in %d tensors\n",
         (long long)np, (double)np / 1e6, g->nparams, (long long)g->nbuf_elems, g->nbufs);
  printf("forward FLOPs     %lld per image (%.3f GFLOPs; training step ~3x: %.3f GFLOPs)\n",
         (long long)flops, (double)flops / 1e9, 3.0 * (double)flops / 1e9);

  nn_memory_plan m = nn_graph_memory_plan(g, optim_state_copies(ok));
  printf("\nplanned training memory, batch %lld, %s (MiB):\n", (long long)batch, opt);
  printf("  parameters        %10.1f\n", mib(m.params_bytes));
  printf("  gradients         %10.1f\n", mib(m.grads_bytes));
  printf("  optimizer state   %10.1f\n", mib(m.optimizer_bytes));
  printf("  BN buffers        %10.1f\n", mib(m.buffers_bytes));
  printf("  activations       %10.1f\n", mib(m.activations_bytes));
  printf("  activation grads  %10.1f\n", mib(m.activation_grads_bytes));
  printf("  op extras         %10.1f\n", mib(m.extras_bytes));
  printf("  workspace         %10.1f\n", mib(m.workspace_bytes));
  printf("  total             %10.1f\n", mib(m.total_bytes));
  nn_graph_destroy(g);
  return 0;
}
