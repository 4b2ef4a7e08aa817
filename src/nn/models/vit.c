// Vision Transformer, torchvision 0.14 VisionTransformer layout and names:
//   conv_proj (patch embed) -> prepend class_token -> + encoder.pos_embedding
//   -> [encoder.dropout] -> depth x pre-norm block -> encoder.ln -> token 0
//   -> heads.head.
// Block i ("encoder.layers.encoder_layer_i"):
//   x = x + [dropout](out_proj(attention(in_proj(ln_1(x)))))
//   x = x + [dropout](mlp.3([dropout](gelu(mlp.0(ln_2(x))))))
// LayerNorm eps 1e-6, MLP width 4 * dim, fused qkv named like torch's
// nn.MultiheadAttention (self_attention.in_proj_weight / in_proj_bias).
// Deviation from torchvision that does not change any value: the final LN is
// applied to token 0 only (LN is per token, and only token 0 reaches the head).
//
// Inits follow torchvision: conv_proj trunc-normal std sqrt(1/fan_in) (the
// truncation is at +-2 std, torch truncates at +-2 absolute: the same for
// std <= 1), bias 0; class token 0; pos embedding N(0, 0.02); in_proj
// xavier-uniform, bias 0; out_proj torch Linear default, bias 0; MLP linears
// xavier-uniform with N(0, 1e-6) biases; LN ones/zeros; head zeros.
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "nn/models/models.h"
#include "nn/ops.h"

static void set_init(nn_graph *g, int32_t pid, nn_init_kind init, float arg) {
  g->params[pid].init = init;
  g->params[pid].init_arg = arg;
}

static void set_stage(nn_graph *g, int32_t from, int stage, int is_head) {
  for (int32_t i = from; i < g->nparams; i++) {
    g->params[i].stage = stage;
    g->params[i].is_head = is_head;
  }
}

// "<pre>.<s>" into n (NN_NAME_MAX bytes); names longer than that are a bug.
static const char *join(char *n, const char *pre, const char *s) {
  int r = snprintf(n, NN_NAME_MAX, "%s.%s", pre, s);
  if (r < 0 || r >= NN_NAME_MAX) DP_FATAL("building ViT", "shorter names", "name %s.%s too long", pre, s);
  return n;
}

static nn_tid maybe_dropout(nn_graph *g, const char *name, nn_tid x, float p) {
  return p > 0 ? nn_dropout(g, name, x, p) : x;
}

static nn_tid encoder_block(nn_graph *g, const char *pre, nn_tid x, int64_t dim, int heads,
                            float drop) {
  char n[NN_NAME_MAX];
#define NAME(s) join(n, pre, s)
  nn_tid h = nn_layernorm(g, NAME("ln_1"), x, 1e-6f);
  int32_t p0 = g->nparams;
  nn_tid qkv = nn_linear(g, NAME("self_attention.in_proj"), h, 3 * dim, 1);   // (N, T, 3D)
  // torch's MultiheadAttention keeps in_proj as bare parameters.
  join(g->params[p0].name, pre, "self_attention.in_proj_weight");
  join(g->params[p0 + 1].name, pre, "self_attention.in_proj_bias");
  set_init(g, p0, NN_INIT_XAVIER_UNIFORM, 0);
  set_init(g, p0 + 1, NN_INIT_ZEROS, 0);
  nn_tid a = nn_attention(g, NAME("self_attention"), qkv, heads);             // (N, T, D)
  p0 = g->nparams;
  a = nn_linear(g, NAME("self_attention.out_proj"), a, dim, 1);
  set_init(g, p0 + 1, NN_INIT_ZEROS, 0);
  a = maybe_dropout(g, NAME("dropout"), a, drop);
  x = nn_add(g, NAME("add_1"), x, a);
  h = nn_layernorm(g, NAME("ln_2"), x, 1e-6f);
  p0 = g->nparams;
  h = nn_linear(g, NAME("mlp.0"), h, 4 * dim, 1);
  set_init(g, p0, NN_INIT_XAVIER_UNIFORM, 0);
  set_init(g, p0 + 1, NN_INIT_NORMAL, 1e-6f);
  h = nn_gelu(g, NAME("mlp.1"), h);
  h = maybe_dropout(g, NAME("mlp.2"), h, drop);
  p0 = g->nparams;
  h = nn_linear(g, NAME("mlp.3"), h, dim, 1);
  set_init(g, p0, NN_INIT_XAVIER_UNIFORM, 0);
  set_init(g, p0 + 1, NN_INIT_NORMAL, 1e-6f);
  h = maybe_dropout(g, NAME("mlp.4"), h, drop);
  return nn_add(g, NAME("add_2"), x, h);
#undef NAME
}

void vit_build(nn_graph *g, const model_cfg *cfg, int64_t dim, int heads, int depth) {
  int patch = cfg->patch > 0 ? cfg->patch : 16;
  if (cfg->image_size % patch)
    DP_FATAL("building ViT", "use an image size that is a multiple of the patch size",
             "image size %lld, patch %d", (long long)cfg->image_size, patch);
  if (dim % heads)
    DP_FATAL("building ViT", "hidden dim must be divisible by heads", "dim %lld heads %d",
             (long long)dim, heads);
  int64_t in[4] = {g->batch, cfg->image_size, cfg->image_size, cfg->channels};
  g->input = nn_tensor_new(g, "input", 4, in, 0);   // (N, H, W, C)
  float drop = cfg->dropout;

  int32_t p0 = g->nparams;
  nn_tid x = nn_patch_embed(g, "conv_proj", g->input, dim, patch);   // (N, Tp, D)
  x = nn_class_token(g, "class_token", x);                           // (N, T, D)
  x = nn_pos_embed(g, "encoder.pos_embedding", x);
  x = maybe_dropout(g, "encoder.dropout", x, drop);
  set_stage(g, p0, 0, 0);
  for (int i = 0; i < depth; i++) {
    char pre[NN_NAME_MAX];
    snprintf(pre, sizeof pre, "encoder.layers.encoder_layer_%d", i);
    p0 = g->nparams;
    x = encoder_block(g, pre, x, dim, heads, drop);
    set_stage(g, p0, i + 1, 0);
  }
  p0 = g->nparams;
  x = nn_take_token0(g, "take_token0", x);   // (N, D)
  x = nn_layernorm(g, "encoder.ln", x, 1e-6f);
  set_stage(g, p0, depth + 1, 0);
  p0 = g->nparams;
  g->logits = nn_linear(g, "heads.head", x, cfg->classes, 1);   // (N, classes)
  set_init(g, p0, NN_INIT_ZEROS, 0);
  set_init(g, p0 + 1, NN_INIT_ZEROS, 0);
  set_stage(g, p0, depth + 1, 1);
}

// torchvision -> timm names. timm's qkv/proj/fc1/fc2 match torchvision's
// in_proj/out_proj/mlp.0/mlp.3 tensor for tensor (same layouts); conv_proj
// and the embeddings keep their shapes too (timm's pos_embed is (1, T, D)).
int vit_name_to_timm(const char *tv, char *out, size_t outsz) {
  static const struct { const char *tv, *timm; } fixed[] = {
      {"class_token", "cls_token"},
      {"conv_proj.weight", "patch_embed.proj.weight"},
      {"conv_proj.bias", "patch_embed.proj.bias"},
      {"encoder.pos_embedding", "pos_embed"},
      {"encoder.ln.weight", "norm.weight"},
      {"encoder.ln.bias", "norm.bias"},
      {"heads.head.weight", "head.weight"},
      {"heads.head.bias", "head.bias"},
  };
  static const struct { const char *tv, *timm; } block[] = {
      {"ln_1.weight", "norm1.weight"},
      {"ln_1.bias", "norm1.bias"},
      {"self_attention.in_proj_weight", "attn.qkv.weight"},
      {"self_attention.in_proj_bias", "attn.qkv.bias"},
      {"self_attention.out_proj.weight", "attn.proj.weight"},
      {"self_attention.out_proj.bias", "attn.proj.bias"},
      {"ln_2.weight", "norm2.weight"},
      {"ln_2.bias", "norm2.bias"},
      {"mlp.0.weight", "mlp.fc1.weight"},
      {"mlp.0.bias", "mlp.fc1.bias"},
      {"mlp.3.weight", "mlp.fc2.weight"},
      {"mlp.3.bias", "mlp.fc2.bias"},
  };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if (!strcmp(tv, fixed[i].tv)) return snprintf(out, outsz, "%s", fixed[i].timm) < (int)outsz;
  const char *pfx = "encoder.layers.encoder_layer_";
  size_t pl = strlen(pfx);
  if (strncmp(tv, pfx, pl)) return 0;
  const char *s = tv + pl;
  int layer = 0, nd = 0;
  while (*s >= '0' && *s <= '9') {
    layer = layer * 10 + (*s - '0');
    s++;
    nd++;
  }
  if (!nd || *s != '.') return 0;
  s++;
  for (size_t i = 0; i < sizeof block / sizeof block[0]; i++)
    if (!strcmp(s, block[i].tv))
      return snprintf(out, outsz, "blocks.%d.%s", layer, block[i].timm) < (int)outsz;
  return 0;
}
