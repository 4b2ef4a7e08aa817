// Model registry: names, defaults and dispatch for --model NAME.
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "nn/models/models.h"

typedef struct {
  const char *name;
  int kind;              // 0 cnn, 1 resnet, 2 vit
  int depth;             // resnet depth / vit depth
  int64_t dim;           // vit width
  int heads;             // vit heads
} model_entry;

static const model_entry registry[] = {
    {"cnn", 0, 0, 0, 0},
    {"resnet18", 1, 18, 0, 0},
    {"resnet50", 1, 50, 0, 0},
    {"vit_ti16", 2, 12, 192, 3},
    {"vit_s16", 2, 12, 384, 6},
    {"vit_b16", 2, 12, 768, 12},
};
#define NMODELS ((int)(sizeof registry / sizeof registry[0]))

static const model_entry *find_model(const char *name) {
  for (int i = 0; i < NMODELS; i++)
    if (name && !strcmp(registry[i].name, name)) return &registry[i];
  return NULL;
}

int model_known(const char *name) { return find_model(name) != NULL; }

const char *model_names(void) { return "cnn, resnet18, resnet50, vit_ti16, vit_s16, vit_b16"; }

// Defaults follow the reference models: torchvision ResNet stem (small_stem
// off; the caller turns it on for 28-64 px inputs), no zero-init, no dropout,
// ViT patch 16, CNN width 32.
int model_cfg_default(model_cfg *cfg, const char *name, int64_t image_size, int channels,
                      int64_t classes) {
  memset(cfg, 0, sizeof *cfg);
  const model_entry *e = find_model(name);
  if (!e) return 0;
  snprintf(cfg->name, sizeof cfg->name, "%s", name);
  cfg->image_size = image_size;
  cfg->channels = channels;
  cfg->classes = classes;
  cfg->patch = e->kind == 2 ? 16 : 0;
  cfg->cnn_width = e->kind == 0 ? 32 : 0;
  return 1;
}

void model_build(nn_graph *g, const model_cfg *cfg) {
  const model_entry *e = find_model(cfg->name);
  if (!e)
    DP_FATAL("building the model", "pick one of the known models", "unknown model '%s' (known: %s)",
             cfg->name, model_names());
  if (cfg->classes < 1)
    DP_FATAL("building the model", "use --classes >= 1", "classes = %lld", (long long)cfg->classes);
  if (cfg->image_size < 1)
    DP_FATAL("building the model", "use --image-size >= 1", "image size = %lld",
             (long long)cfg->image_size);
  switch (e->kind) {
    case 0: cnn_build(g, cfg); break;
    case 1: resnet_build(g, cfg, e->depth); break;
    default: vit_build(g, cfg, e->dim, e->heads, e->depth); break;
  }
  DP_CHECK(g->input >= 0 && g->logits >= 0, "building the model", "builder must set input and logits");
}

// Number of distinct stages (0 = stem .. num - 1 = head), the same values the
// builders store in nn_param.stage.
int model_num_stages(const model_cfg *cfg) {
  const model_entry *e = find_model(cfg->name);
  if (!e) return 0;
  switch (e->kind) {
    case 0: return 5;                // stages.0..3, head
    case 1: return 6;                // stem, layer1..4, head
    default: return e->depth + 2;    // patch embed, blocks, final norm + head
  }
}
