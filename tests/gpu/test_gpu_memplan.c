// The lifetime plan on the CUDA backend (docs/memory.md).
//
//  1. No GPU needed: for every model, the CUDA planning graph has the same
//     plan as the CPU one: the same tensors recomputed in backward, the same
//     pinned tensors, the same kept-across-the-boundary set of tensors (only
//     the backend-private extra sizes differ: masks, statistics, scratch).
//  2. With a GPU: the kernels the plan relies on against CPU references: the
//     BN+ReLU bit mask (forward and the masked gradient), the BN output
//     rebuilt from saved statistics, max pooling with a saved argmax (first
//     maximum wins) and its gather backward, the LayerNorm output rebuilt
//     from saved mean / rstd (bitwise equal to the forward kernel's).
//     Without a GPU this part is skipped with a message (the test still
//     passes on part 1).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cuda/cuda.h"
#include "backend/cuda/kernels.h"
#include "gpu_util.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "nn/plan.h"
#include "testutil.h"

static void same_plan(const char *model, int64_t size) {
  model_cfg cfg;
  model_cfg_default(&cfg, model, size, 3, 10);
  nn_graph *g[2];
  nn_plan p[2];
  const nn_backend_vt *be[2] = {cpu_backend(), cuda_backend()};
  for (int k = 0; k < 2; k++) {
    g[k] = nn_graph_create_planning(be[k], 4);
    model_build(g[k], &cfg);
    nn_xent_cfg xc = {0, NULL, 10};
    nn_softmax_xent(g[k], "loss", g[k]->logits, &xc);
    nn_plan_build(g[k], 1, &p[k]);
    TU_CHECK(p[k].overlaps == 0, "%s on %s: live items overlap", model, be[k]->name);
  }
  TU_CHECK(g[0]->ntensors == g[1]->ntensors, "%s: tensor counts differ", model);
  int diff = 0;
  for (int32_t t = 0; t < g[0]->ntensors && t < g[1]->ntensors; t++)
    diff += p[0].recomputed[t] != p[1].recomputed[t] || p[0].pinned[t] != p[1].pinned[t] ||
            p[0].recompute_at[t] != p[1].recompute_at[t];
  TU_CHECK(diff == 0 && p[0].nrecompute == p[1].nrecompute, "%s: %d tensors planned differently on CPU and CUDA",
           model, diff);
  printf("%-9s CPU / CUDA plan: %d / %d recomputed, %d tensors differ; arena %.1f / %.1f MiB (extras differ by backend)\n", model,
         p[0].nrecompute, p[1].nrecompute, diff, p[0].arena_bytes / 1048576.0, p[1].arena_bytes / 1048576.0);
  for (int k = 0; k < 2; k++) {
    nn_plan_free(&p[k]);
    nn_graph_destroy(g[k]);
  }
}

static float *rnd(int64_t n, uint64_t seed) {
  float *x = malloc((size_t)n * 4);
  tu_fill_uniform(x, n, seed);
  return x;
}

static void kernels(void) {
  // BN+ReLU mask: y in place, bits; dy masked.
  int64_t n = 1000;   // not a multiple of 32
  float *y = rnd(n, 1), *dy = rnd(n, 2);
  float *dy_ = gu_up(y, n * 4), *ddy = gu_up(dy, n * 4);
  uint32_t *dmask = gu_poison(dp_cuda_relu_mask_bytes(n));
  CUDA_CHECK(dp_cuda_relu_mask_fwd(dy_, dmask, n, 0), "relu mask fwd");
  CUDA_CHECK(dp_cuda_relu_mask_bwd(dmask, ddy, n, 0), "relu mask bwd");
  float *gy = gu_down(dy_, n * 4), *gdy = gu_down(ddy, n * 4), *ry = malloc(n * 4), *rdy = malloc(n * 4);
  for (int64_t i = 0; i < n; i++) {
    ry[i] = y[i] > 0 ? y[i] : 0;
    rdy[i] = y[i] > 0 ? dy[i] : 0;
  }
  tu_close("relu mask: y", gy, ry, n, 0);
  tu_close("relu mask: masked dy", gdy, rdy, n, 0);
  // BN output from saved mean / inverse std, and from running mean / var.
  int64_t px = 37, c = 5;
  float *x = rnd(px * c, 3), *mean = rnd(c, 4), *inv = rnd(c, 5), *gam = rnd(c, 6), *bet = rnd(c, 7);
  for (int64_t k = 0; k < c; k++) inv[k] = 0.5f + fabsf(inv[k]);
  float *dxx = gu_up(x, px * c * 4), *dm = gu_up(mean, c * 4), *di = gu_up(inv, c * 4), *dg = gu_up(gam, c * 4),
        *db = gu_up(bet, c * 4), *dout = gu_poison(px * c * 4);
  for (int relu = 0; relu < 2; relu++)
    for (int is_var = 0; is_var < 2; is_var++) {
      CUDA_CHECK(dp_cuda_bn_apply(dxx, dm, di, is_var, 1e-5f, dg, db, dout, relu, px, c, 0), "bn apply");
      float *got = gu_down(dout, px * c * 4), *want = malloc(px * c * 4);
      for (int64_t i = 0; i < px * c; i++) {
        int64_t k = i % c;
        float iv = is_var ? 1.0f / sqrtf(inv[k] + 1e-5f) : inv[k];
        float v = gam[k] * ((x[i] - mean[k]) * iv) + bet[k];
        want[i] = relu && !(v > 0) ? 0 : v;
      }
      tu_close(relu ? "bn+relu rebuilt" : "bn rebuilt", got, want, px * c, 1e-6);
      free(got), free(want);
    }
  // Max pool 3x3 s2 p1 with argmax, ties to the first (plateaus of equal values).
  int64_t N = 2, H = 7, W = 6, C = 3, k = 3, s = 2, p = 1, OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
  int64_t nx = N * H * W * C, ny = N * OH * OW * C;
  float *xp = rnd(nx, 8), *gp = rnd(ny, 9);
  for (int64_t i = 0; i < nx; i += 5) xp[i] = 0.25f;   // ties
  float *dxp = gu_up(xp, nx * 4), *dyp = gu_poison(ny * 4), *dgp = gu_up(gp, ny * 4), *ddx = gu_poison(nx * 4);
  uint8_t *darg = gu_poison(ny);
  CUDA_CHECK(dp_cuda_maxpool_fwd(dxp, dyp, darg, N, H, W, C, OH, OW, (int)k, (int)s, (int)p, 0), "maxpool fwd");
  CUDA_CHECK(dp_cuda_maxpool_bwd(dgp, darg, ddx, 0, N, H, W, C, OH, OW, (int)k, (int)s, (int)p, 0), "maxpool bwd");
  float *gotp = gu_down(dyp, ny * 4), *gotdx = gu_down(ddx, nx * 4), *wp = malloc(ny * 4), *wdx = calloc(nx, 4);
  for (int64_t b = 0; b < N; b++)
    for (int64_t i = 0; i < OH; i++)
      for (int64_t j = 0; j < OW; j++)
        for (int64_t ch = 0; ch < C; ch++) {
          float best = 0;
          int64_t at = -1;
          for (int64_t u = 0; u < k; u++)
            for (int64_t v = 0; v < k; v++) {
              int64_t hi = i * s - p + u, wi = j * s - p + v;
              if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
              int64_t q = ((b * H + hi) * W + wi) * C + ch;
              if (at < 0 || xp[q] > best) best = xp[q], at = q;
            }
          int64_t o = ((b * OH + i) * OW + j) * C + ch;
          wp[o] = best;
          wdx[at] += gp[o];
        }
  tu_close("maxpool y", gotp, wp, ny, 0);
  tu_close("maxpool dx (argmax gather)", gotdx, wdx, nx, 1e-6);
  // LayerNorm rebuilt from saved statistics == the forward kernel's output.
  int64_t rows = 9, d = 77;
  float *xl = rnd(rows * d, 10), *gl = rnd(d, 11), *bl = rnd(d, 12);
  float *dxl = gu_up(xl, rows * d * 4), *dgl = gu_up(gl, d * 4), *dbl = gu_up(bl, d * 4);
  float *dy1 = gu_poison(rows * d * 4), *dy2 = gu_poison(rows * d * 4), *dmu = gu_poison(rows * 4),
        *drs = gu_poison(rows * 4);
  CUDA_CHECK(dp_cuda_layernorm_fwd(dxl, dgl, dbl, dy1, dmu, drs, rows, d, 1e-6f, 0), "ln fwd");
  CUDA_CHECK(dp_cuda_layernorm_apply(dxl, dgl, dbl, dmu, drs, dy2, rows, d, 0), "ln apply");
  float *y1 = gu_down(dy1, rows * d * 4), *y2 = gu_down(dy2, rows * d * 4);
  TU_CHECK(!memcmp(y1, y2, (size_t)(rows * d * 4)), "layernorm rebuilt output differs from forward's");
  void *dev[] = {dy_, ddy, dmask, dxx, dm, di, dg, db, dout, dxp, dyp, dgp, ddx, darg, dxl, dgl, dbl, dy1, dy2, dmu, drs};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) cudaFree(dev[i]);
  free(y), free(dy), free(gy), free(gdy), free(ry), free(rdy), free(x), free(mean), free(inv), free(gam), free(bet);
  free(xp), free(gp), free(gotp), free(gotdx), free(wp), free(wdx), free(xl), free(gl), free(bl), free(y1), free(y2);
}

int main(void) {
  const char *models[] = {"cnn", "resnet18", "resnet50", "vit_ti16"};
  for (int i = 0; i < 4; i++) same_plan(models[i], models[i][0] == 'v' ? 32 : 64);
  char msg[256];
  if (cuda_device_probe(msg, sizeof msg) > 0) kernels();
  else printf("kernel checks skipped: no CUDA device (%s)\n", msg);
  return tu_finish("test_gpu_memplan");
}
