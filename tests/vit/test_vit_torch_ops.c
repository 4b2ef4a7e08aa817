// ViT ops against PyTorch (fixture vit_ops.h5 from make_vit_fixtures.py):
// forward output, input gradient and parameter gradients for the same inputs,
// parameters and upstream gradient. Shapes here must match the script.
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "nn/ops.h"
#include "testutil.h"

// The step state passed to the ops driven alone (reset for each graph).
static nn_step g_st;

// fp32 both sides, same formulas up to summation order: errors ~1e-7 relative
// to the tensor's scale; 1e-5 keeps a 100x margin and still catches any
// wrong term.
#define TOL 1e-5

static char fx[512];

static float *rd(const char *op, const char *what, int64_t want) {
  char ds[128];
  snprintf(ds, sizeof ds, "%s/%s", op, what);
  int64_t n = 0;
  float *v = tu_h5_read_f32(fx, ds, &n);
  if (!v || n != want) {
    fprintf(stderr, "FAIL fixture %s: %lld elements, expected %lld\n", ds, (long long)n, (long long)want);
    exit(1);
  }
  return v;
}

static void cmp(const char *op, const char *what, const float *got, int64_t n) {
  float *want = rd(op, what, n);
  char nm[96];
  snprintf(nm, sizeof nm, "torch %s %s", op, what);
  tu_close(nm, got, want, n, TOL);
  free(want);
}

// g holds one op: input x, output y, params named pw ("<op>.weight") and pb.
static void run(const char *opname, nn_graph *g, nn_tid x, nn_tid y, const char *pw, const char *pb) {
  nn_graph_finalize(g);
  nn_op *op = g->ops[g->nops - 1];
  nn_tensor *xt = nn_t(g, x), *yt = nn_t(g, y);
  float *v = rd(opname, "x", xt->numel);
  memcpy(xt->data, v, (size_t)xt->numel * 4);
  free(v);
  int32_t iw = pw ? nn_param_find(g, pw) : -1, ib = pb ? nn_param_find(g, pb) : -1;
  if (iw >= 0) {
    v = rd(opname, "weight", g->params[iw].numel);
    memcpy(nn_param_data(g, iw), v, (size_t)g->params[iw].numel * 4);
    free(v);
  }
  if (ib >= 0) {
    v = rd(opname, "bias", g->params[ib].numel);
    memcpy(nn_param_data(g, ib), v, (size_t)g->params[ib].numel * 4);
    free(v);
  }
  op->vt->forward(op, g, &g_st);
  cmp(opname, "y", yt->data, yt->numel);
  for (int32_t i = 0; i < g->ntensors; i++) g->tensors[i].grad_written = 0;
  v = rd(opname, "dy", yt->numel);
  memcpy(yt->grad, v, (size_t)yt->numel * 4);
  free(v);
  yt->grad_written = 1;
  op->vt->backward(op, g, &g_st);
  cmp(opname, "dx", xt->grad, xt->numel);
  if (iw >= 0) cmp(opname, "dweight", nn_param_grad(g, iw), g->params[iw].numel);
  if (ib >= 0) cmp(opname, "dbias", nn_param_grad(g, ib), g->params[ib].numel);
  nn_graph_destroy(g);
}

static nn_graph *graph_with_input(int ndim, const int64_t *d, nn_tid *x) {
  nn_graph *g = nn_graph_create(cpu_backend(), d[0], 3);
  nn_step_init(&g_st, g);
  *x = nn_tensor_new(g, "x", ndim, d, 1);
  return g;
}

int main(void) {
  snprintf(fx, sizeof fx, "%s/vit_ops.h5", tu_fixture_dir());
  if (!tu_file_exists(fx)) {
    fprintf(stderr, "FAIL: fixture %s missing (run make_vit_fixtures.py)\n", fx);
    return 1;
  }
  nn_tid x, y;
  nn_graph *g;
  {
    int64_t d[3] = {2, 5, 24};
    g = graph_with_input(3, d, &x);
    y = nn_layernorm(g, "layernorm", x, 1e-6f);
    run("layernorm", g, x, y, "layernorm.weight", "layernorm.bias");
  }
  {
    int64_t d[2] = {4, 50};
    g = graph_with_input(2, d, &x);
    y = nn_gelu(g, "gelu", x);
    run("gelu", g, x, y, NULL, NULL);
  }
  {
    int64_t d[3] = {2, 3, 9};
    g = graph_with_input(3, d, &x);
    y = nn_softmax(g, "softmax", x);
    run("softmax", g, x, y, NULL, NULL);
  }
  {
    int64_t d[3] = {2, 17, 72};
    g = graph_with_input(3, d, &x);
    y = nn_attention(g, "attention", x, 3);
    run("attention", g, x, y, NULL, NULL);
  }
  {
    int64_t d[4] = {2, 8, 12, 3};
    g = graph_with_input(4, d, &x);
    y = nn_patch_embed(g, "patch_embed", x, 10, 4);
    run("patch_embed", g, x, y, "patch_embed.weight", "patch_embed.bias");
  }
  {
    int64_t d[3] = {3, 4, 5};
    g = graph_with_input(3, d, &x);
    y = nn_class_token(g, "class_token", x);
    run("class_token", g, x, y, "class_token", NULL);
  }
  {
    int64_t d[3] = {3, 4, 5};
    g = graph_with_input(3, d, &x);
    y = nn_pos_embed(g, "pos_embed", x);
    run("pos_embed", g, x, y, "pos_embed", NULL);
  }
  {
    int64_t d[3] = {3, 4, 5};
    g = graph_with_input(3, d, &x);
    y = nn_take_token0(g, "take_token0", x);
    run("take_token0", g, x, y, NULL, NULL);
  }
  return tu_finish("test_vit_torch_ops");
}
