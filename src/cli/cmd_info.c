// dptrain info: layer summary, parameter count, forward FLOPs per image and
// the planned training memory of a model for a batch size. The graph is
// built but not finalized, so nothing model-sized is allocated: the memory
// plan and FLOP counts come from the op descriptors alone.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "cli/commands.h"
#include "nn/graph.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "nn/optim.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: dptrain info --model NAME [options]\n"
          "  --model NAME        %s\n"
          "  --classes C         classes (default 10)\n"
          "  --image-size S      input H = W (default 224)\n"
          "  --channels 1|3      input channels (default 3)\n"
          "  --batch B           batch size for the memory plan (default 32)\n"
          "  --small-stem        ResNet: 3x3 stride-1 stem, no max-pool (28-64 px)\n"
          "  --patch P           ViT patch size (default 16)\n"
          "  --cnn-width W       CNN base width (default 32)\n"
          "  --optimizer sgd|adamw  optimizer state in the plan (default sgd)\n"
          "  --no-summary        skip the per-layer table\n",
          model_names());
}

static int parse_i64(const char *opt, const char *s, int64_t lo, int64_t *out) {
  char *end = NULL;
  long long v = s ? strtoll(s, &end, 10) : 0;
  if (!s || *end || v < lo) {
    fprintf(stderr, "dptrain info: %s needs an integer >= %lld, got '%s'\n", opt, (long long)lo,
            s ? s : "");
    return -1;
  }
  *out = v;
  return 0;
}

static double mib(int64_t b) { return (double)b / (1024.0 * 1024.0); }

int cmd_info(int argc, char **argv) {
  const char *model = NULL, *opt = "sgd";
  int64_t classes = 10, size = 224, channels = 3, batch = 32, patch = 0, width = 0;
  int small_stem = 0, summary = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--model") && v) {
      model = v;
      i++;
    } else if (!strcmp(a, "--optimizer") && v) {
      opt = v;
      i++;
    } else if (!strcmp(a, "--classes")) {
      rc = parse_i64(a, v, 1, &classes), i++;
    } else if (!strcmp(a, "--image-size")) {
      rc = parse_i64(a, v, 1, &size), i++;
    } else if (!strcmp(a, "--channels")) {
      rc = parse_i64(a, v, 1, &channels), i++;
    } else if (!strcmp(a, "--batch")) {
      rc = parse_i64(a, v, 1, &batch), i++;
    } else if (!strcmp(a, "--patch")) {
      rc = parse_i64(a, v, 1, &patch), i++;
    } else if (!strcmp(a, "--cnn-width")) {
      rc = parse_i64(a, v, 1, &width), i++;
    } else if (!strcmp(a, "--small-stem")) {
      small_stem = 1;
    } else if (!strcmp(a, "--no-summary")) {
      summary = 0;
    } else {
      fprintf(stderr, "dptrain info: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (rc) return 2;
  }
  if (!model) {
    fprintf(stderr, "dptrain info: --model is required\n");
    usage(stderr);
    return 2;
  }
  if (!model_known(model)) {
    fprintf(stderr, "dptrain info: unknown model '%s' (known: %s)\n", model, model_names());
    return 2;
  }
  if (channels != 1 && channels != 3) {
    fprintf(stderr, "dptrain info: --channels must be 1 or 3\n");
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

  nn_graph *g = nn_graph_create_planning(cpu_backend(), batch);   // nothing model-sized is allocated
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
  printf("  activation arena  %10.1f   lifetime plan (every tensor for the whole step: %.1f)\n", mib(m.arena_bytes),
         mib(m.flat_arena_bytes));
  int32_t n = g->nops, ps = m.peak_step;
  const char *at = n > 0 ? g->ops[ps < n ? ps : 2 * n - 1 - ps]->name : "-";
  printf("    at its peak, %s of %s: activations %.1f, activation grads %.1f, op extras %.1f\n",
         ps < n ? "forward" : "backward", at, mib(m.activations_bytes), mib(m.activation_grads_bytes),
         mib(m.extras_bytes));
  printf("    kept from forward to backward %.1f; %d outputs recomputed in backward instead\n", mib(m.kept_bytes),
         m.recomputed_tensors);
  printf("  workspace         %10.1f\n", mib(m.workspace_bytes));
  printf("  runtime           %10.1f   libraries, JIT code, threads (calibrated, docs/memory.md)\n",
         mib(m.runtime_bytes));
  printf("  total             %10.1f\n", mib(m.total_bytes));
  nn_graph_destroy(g);
  return 0;
}
