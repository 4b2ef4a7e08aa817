// ViT ops, independent of torch:
//  1. the double reference (ref_vit.c) passes central finite-difference
//     gradient checks for every input and parameter;
//  2. the fp32 CPU op (driven alone through op->vt->forward/backward) matches
//     the double reference on forward output, input grad and param grads;
//  3. the accumulation rules hold: a second backward adds into an input grad
//     that nn_grad_begin reports as written, and adds param grads when
//     g_st.accumulate_grads == 1.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "nn/ops.h"
#include "ref_vit.h"
#include "testutil.h"

// The step state passed to the ops driven alone (reset for each graph).
static nn_step g_st;

// fp32 vs double reference. The ops accumulate in fp32 over at most a few
// hundred terms (errors ~1e-7 relative); 1e-5 leaves room, a wrong formula
// gives O(1).
#define TOL_F32 1e-5
// Central differences with h = 1e-6 on smooth double functions: truncation
// ~h^2 and round-off ~1e-16/h, both far below 1e-6.
#define TOL_FD 1e-6

typedef struct {
  const char *name;
  int nv;                 // differentiable inputs: v[0] = x, then params
  double *v[3];
  int64_t n[3];
  double *gref[3];        // reference gradients (from bwd)
  float *fv[3], *fg[3];   // the fp32 op's values and gradients
  double *out, *R;        // reference output; upstream gradient
  int64_t nout;
  void (*fwd)(void);      // out = f(v)
  void (*bwd)(void);      // gref = R^T df/dv
} gc_case;

static gc_case C;
static int64_t dN, dT, dD, dH, dW, dC, dP, dRows;

static double loss_of(void) {
  C.fwd();
  double s = 0;
  for (int64_t i = 0; i < C.nout; i++) s += C.out[i] * C.R[i];
  return s;
}

static void gradcheck(void) {
  for (int k = 0; k < C.nv; k++) {
    int64_t n = C.n[k], step = n > 97 ? n / 97 : 1, m = 0;
    double *num = malloc((size_t)n * sizeof(double)), *ana = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i += step) {
      double keep = C.v[k][i], h = 1e-6;
      C.v[k][i] = keep + h;
      double lp = loss_of();
      C.v[k][i] = keep - h;
      double lm = loss_of();
      C.v[k][i] = keep;
      num[m] = (lp - lm) / (2 * h);
      ana[m] = C.gref[k][i];
      m++;
    }
    char nm[96];
    snprintf(nm, sizeof nm, "%s gradcheck d%s", C.name, k == 0 ? "x" : k == 1 ? "param0" : "param1");
    tu_close_d(nm, ana, num, m, TOL_FD);
    free(num);
    free(ana);
  }
  C.fwd();   // leave out = f(v) at the unperturbed point
}

static void cmp_f(const char *what, const float *got, const double *want, int64_t n, double scale) {
  double *g = malloc((size_t)n * sizeof(double)), *w = malloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++) {
    g[i] = got[i];
    w[i] = want[i] * scale;
  }
  char nm[96];
  snprintf(nm, sizeof nm, "%s %s", C.name, what);
  tu_close_d(nm, g, w, n, TOL_F32);
  free(g);
  free(w);
}

static void backward_once(nn_graph *g, nn_op *op, nn_tid x, nn_tid y, int x_written) {
  for (int32_t i = 0; i < g->ntensors; i++) g->tensors[i].grad_written = 0;
  nn_tensor *yt = nn_t(g, y);
  for (int64_t i = 0; i < C.nout; i++) yt->grad[i] = (float)C.R[i];
  yt->grad_written = 1;
  nn_t(g, x)->grad_written = x_written;
  op->vt->backward(op, g, &g_st);
}

// Builds nothing: g holds exactly one op with input x, output y, params pids.
static void run_case(nn_graph *g, nn_tid x, nn_tid y, const int32_t *pids, float xscale, uint64_t seed) {
  nn_op *op = g->ops[g->nops - 1];
  C.fv[0] = nn_t(g, x)->data;
  C.fg[0] = nn_t(g, x)->grad;
  C.n[0] = nn_t(g, x)->numel;
  for (int k = 1; k < C.nv; k++) {
    C.fv[k] = nn_param_data(g, pids[k - 1]);
    C.fg[k] = nn_param_grad(g, pids[k - 1]);
    C.n[k] = g->params[pids[k - 1]].numel;
  }
  for (int k = 0; k < C.nv; k++) {
    tu_fill_uniform(C.fv[k], C.n[k], seed + (uint64_t)k);
    if (k == 0)
      for (int64_t i = 0; i < C.n[0]; i++) C.fv[0][i] *= xscale;
    if (k == 1 && !strcmp(C.name, "layernorm"))   // keep gamma away from 0
      for (int64_t i = 0; i < C.n[1]; i++) C.fv[1][i] += 1.5f;
    C.v[k] = malloc((size_t)C.n[k] * sizeof(double));
    C.gref[k] = malloc((size_t)C.n[k] * sizeof(double));
    for (int64_t i = 0; i < C.n[k]; i++) C.v[k][i] = C.fv[k][i];
  }
  C.nout = nn_t(g, y)->numel;
  C.out = malloc((size_t)C.nout * sizeof(double));
  C.R = malloc((size_t)C.nout * sizeof(double));
  float *rf = malloc((size_t)C.nout * sizeof(float));
  tu_fill_uniform(rf, C.nout, seed + 100);
  for (int64_t i = 0; i < C.nout; i++) C.R[i] = rf[i];
  free(rf);

  C.fwd();
  C.bwd();
  gradcheck();

  // fp32 op.
  op->vt->forward(op, g, &g_st);
  cmp_f("forward", nn_t(g, y)->data, C.out, C.nout, 1);
  g_st.accumulate_grads = 0;
  for (int k = 1; k < C.nv; k++)   // must be overwritten, not added
    for (int64_t i = 0; i < C.n[k]; i++) C.fg[k][i] = 1e3f;
  backward_once(g, op, x, y, 0);
  cmp_f("dx", C.fg[0], C.gref[0], C.n[0], 1);
  for (int k = 1; k < C.nv; k++) cmp_f(k == 1 ? "dparam0" : "dparam1", C.fg[k], C.gref[k], C.n[k], 1);
  // Accumulation: everything doubles.
  g_st.accumulate_grads = 1;
  backward_once(g, op, x, y, 1);
  cmp_f("dx accumulated", C.fg[0], C.gref[0], C.n[0], 2);
  for (int k = 1; k < C.nv; k++) cmp_f(k == 1 ? "dparam0 accumulated" : "dparam1 accumulated", C.fg[k], C.gref[k], C.n[k], 2);
  g_st.accumulate_grads = 0;

  for (int k = 0; k < C.nv; k++) {
    free(C.v[k]);
    free(C.gref[k]);
  }
  free(C.out);
  free(C.R);
  nn_graph_destroy(g);
}

// ---- per-op cases -------------------------------------------------------------
static void ln_fwd(void) { ref_layernorm_fwd(C.v[0], C.v[1], C.v[2], dRows, dD, 1e-6, C.out); }
static void ln_bwd(void) { ref_layernorm_bwd(C.v[0], C.v[1], C.R, dRows, dD, 1e-6, C.gref[0], C.gref[1], C.gref[2]); }
static void gelu_fwd(void) { ref_gelu_fwd(C.v[0], C.n[0], C.out); }
static void gelu_bwd(void) { ref_gelu_bwd(C.v[0], C.R, C.n[0], C.gref[0]); }
static void sm_fwd(void) { ref_softmax_fwd(C.v[0], dRows, dD, C.out); }
static void sm_bwd(void) { ref_softmax_bwd(C.v[0], C.R, dRows, dD, C.gref[0]); }
static void att_fwd(void) { ref_attention_fwd(C.v[0], dN, dT, dD, dH, C.out); }
static void att_bwd(void) { ref_attention_bwd(C.v[0], C.R, dN, dT, dD, dH, C.gref[0]); }
static void pe_fwd(void) { ref_patch_fwd(C.v[0], C.v[1], C.v[2], dN, dH, dW, dC, dD, dP, C.out); }
static void pe_bwd(void) { ref_patch_bwd(C.v[0], C.v[1], C.R, dN, dH, dW, dC, dD, dP, C.gref[0], C.gref[1], C.gref[2]); }
static void cls_fwd(void) { ref_cls_fwd(C.v[0], C.v[1], dN, dT, dD, C.out); }
static void cls_bwd(void) { ref_cls_bwd(C.R, dN, dT, dD, C.gref[0], C.gref[1]); }
static void pos_fwd(void) { ref_pos_fwd(C.v[0], C.v[1], dN, dT, dD, C.out); }
static void pos_bwd(void) { ref_pos_bwd(C.R, dN, dT, dD, C.gref[0], C.gref[1]); }
static void tok_fwd(void) { ref_tok0_fwd(C.v[0], dN, dT, dD, C.out); }
static void tok_bwd(void) { ref_tok0_bwd(C.R, dN, dT, dD, C.gref[0]); }

static nn_graph *new_graph(int64_t n, int ndim, const int64_t *dims, nn_tid *x) {
  nn_graph *g = nn_graph_create(cpu_backend(), n, 7);
  nn_step_init(&g_st, g);
  *x = nn_tensor_new(g, "x", ndim, dims, 1);
  return g;
}

static void set_case(const char *name, int nv, void (*fwd)(void), void (*bwd)(void)) {
  memset(&C, 0, sizeof C);
  C.name = name;
  C.nv = nv;
  C.fwd = fwd;
  C.bwd = bwd;
}

int main(void) {
  nn_tid x, y;
  int32_t pids[2];
  {  // layernorm over (N, T, D); x offset so the mean is not 0
    dN = 2, dT = 5, dD = 24, dRows = dN * dT;
    int64_t d[3] = {dN, dT, dD};
    nn_graph *g = new_graph(dN, 3, d, &x);
    y = nn_layernorm(g, "ln", x, 1e-6f);
    nn_graph_finalize(g);
    pids[0] = nn_param_find(g, "ln.weight");
    pids[1] = nn_param_find(g, "ln.bias");
    set_case("layernorm", 3, ln_fwd, ln_bwd);
    run_case(g, x, y, pids, 2.0f, 11);
  }
  {  // gelu on [-4, 4]
    int64_t d[2] = {4, 50};
    nn_graph *g = new_graph(4, 2, d, &x);
    y = nn_gelu(g, "gelu", x);
    nn_graph_finalize(g);
    set_case("gelu", 1, gelu_fwd, gelu_bwd);
    run_case(g, x, y, pids, 4.0f, 21);
  }
  {  // gelu over more than one 4096-element chunk with a 1..3 element tail
    int64_t d[2] = {3, 1367};
    nn_graph *g = new_graph(3, 2, d, &x);
    y = nn_gelu(g, "gelu", x);
    nn_graph_finalize(g);
    set_case("gelu 4101", 1, gelu_fwd, gelu_bwd);
    run_case(g, x, y, pids, 5.0f, 22);
  }
  {  // softmax over the last dim
    dRows = 6, dD = 9;
    int64_t d[3] = {2, 3, 9};
    nn_graph *g = new_graph(2, 3, d, &x);
    y = nn_softmax(g, "softmax", x);
    nn_graph_finalize(g);
    set_case("softmax", 1, sm_fwd, sm_bwd);
    run_case(g, x, y, pids, 3.0f, 31);
  }
  {  // attention: N 2, T 7, D 12, 3 heads (dh 4)
    dN = 2, dT = 7, dD = 12, dH = 3;
    int64_t d[3] = {dN, dT, 3 * dD};
    nn_graph *g = new_graph(dN, 3, d, &x);
    y = nn_attention(g, "attn", x, (int)dH);
    nn_graph_finalize(g);
    set_case("attention", 1, att_fwd, att_bwd);
    run_case(g, x, y, pids, 2.0f, 41);
  }
  {  // attention with one head and T = 1 edge case, plus a wider one
    dN = 3, dT = 1, dD = 8, dH = 1;
    int64_t d[3] = {dN, dT, 3 * dD};
    nn_graph *g = new_graph(dN, 3, d, &x);
    y = nn_attention(g, "attn", x, (int)dH);
    nn_graph_finalize(g);
    set_case("attention T=1", 1, att_fwd, att_bwd);
    run_case(g, x, y, pids, 2.0f, 42);
  }
  {  // patch embed: H != W to pin the token order, 3 channels, p 4
    dN = 2, dH = 8, dW = 12, dC = 3, dP = 4, dD = 6;
    int64_t d[4] = {dN, dH, dW, dC};
    nn_graph *g = new_graph(dN, 4, d, &x);
    y = nn_patch_embed(g, "pe", x, dD, (int)dP);
    nn_graph_finalize(g);
    pids[0] = nn_param_find(g, "pe.weight");
    pids[1] = nn_param_find(g, "pe.bias");
    set_case("patch_embed", 3, pe_fwd, pe_bwd);
    run_case(g, x, y, pids, 1.0f, 51);
  }
  {  // patch embed, grayscale
    dN = 1, dH = 6, dW = 6, dC = 1, dP = 3, dD = 5;
    int64_t d[4] = {dN, dH, dW, dC};
    nn_graph *g = new_graph(dN, 4, d, &x);
    y = nn_patch_embed(g, "pe", x, dD, (int)dP);
    nn_graph_finalize(g);
    pids[0] = nn_param_find(g, "pe.weight");
    pids[1] = nn_param_find(g, "pe.bias");
    set_case("patch_embed C=1", 3, pe_fwd, pe_bwd);
    run_case(g, x, y, pids, 1.0f, 52);
  }
  {  // class token
    dN = 2, dT = 4, dD = 5;
    int64_t d[3] = {dN, dT, dD};
    nn_graph *g = new_graph(dN, 3, d, &x);
    y = nn_class_token(g, "cls", x);
    nn_graph_finalize(g);
    pids[0] = nn_param_find(g, "cls");
    set_case("class_token", 2, cls_fwd, cls_bwd);
    run_case(g, x, y, pids, 1.0f, 61);
  }
  {  // position embedding
    dN = 3, dT = 4, dD = 5;
    int64_t d[3] = {dN, dT, dD};
    nn_graph *g = new_graph(dN, 3, d, &x);
    y = nn_pos_embed(g, "pos", x);
    nn_graph_finalize(g);
    pids[0] = nn_param_find(g, "pos");
    set_case("pos_embed", 2, pos_fwd, pos_bwd);
    run_case(g, x, y, pids, 1.0f, 71);
  }
  {  // token 0
    dN = 3, dT = 4, dD = 5;
    int64_t d[3] = {dN, dT, dD};
    nn_graph *g = new_graph(dN, 3, d, &x);
    y = nn_take_token0(g, "tok0", x);
    nn_graph_finalize(g);
    set_case("take_token0", 1, tok_fwd, tok_bwd);
    run_case(g, x, y, pids, 1.0f, 81);
  }
  return tu_finish("test_vit_ops");
}
