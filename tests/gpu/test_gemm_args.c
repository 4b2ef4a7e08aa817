// The GEMM argument sets of the CUDA linear and attention ops (transposes,
// leading dims, head strides) run through a reference column-major BLAS GEMM
// on the CPU and compared with the row-major formulas of the ops. Needs no GPU.
#include <math.h>
#include <stdlib.h>

#include "backend/cuda/cuda_plan.h"
#include "testutil.h"

// Reference column-major GEMM with cuBLAS semantics, batched with strides.
static void ref_gemm(const cuda_gemm_args *g, float alpha, const float *A, const float *B, float beta, float *C,
                     int batch) {
  for (int b = 0; b < batch; b++) {
    const float *a = A + b * g->sa, *bb = B + b * g->sb;
    float *c = C + b * g->sc;
    for (int64_t i = 0; i < g->m; i++)
      for (int64_t j = 0; j < g->n; j++) {
        double s = 0;
        for (int64_t l = 0; l < g->k; l++) {
          double av = g->ta ? a[l + i * g->lda] : a[i + l * g->lda];
          double bv = g->tb ? bb[j + l * g->ldb] : bb[l + j * g->ldb];
          s += av * bv;
        }
        float *cij = &c[i + j * g->ldc];
        *cij = (float)(alpha * s + (beta != 0 ? beta * *cij : 0));
      }
  }
}

static float *rnd(int64_t n, uint64_t seed) {
  float *x = malloc((size_t)n * 4);
  tu_fill_uniform(x, n, seed);
  return x;
}

static void test_linear(void) {
  const int64_t R = 5, I = 7, O = 3;
  float *X = rnd(R * I, 1), *W = rnd(O * I, 2), *dY = rnd(R * O, 3);
  float *Y = calloc((size_t)(R * O), 4), *dX = calloc((size_t)(R * I), 4), *dW = calloc((size_t)(O * I), 4);
  float *wY = calloc((size_t)(R * O), 4), *wdX = calloc((size_t)(R * I), 4), *wdW = calloc((size_t)(O * I), 4);
  cuda_gemm_args g[3];
  cuda_linear_gemms(R, I, O, g);
  ref_gemm(&g[0], 1, W, X, 0, Y, 1);
  ref_gemm(&g[1], 1, W, dY, 0, dX, 1);
  ref_gemm(&g[2], 1, X, dY, 0, dW, 1);
  for (int64_t r = 0; r < R; r++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < I; i++) {
        wY[r * O + o] += X[r * I + i] * W[o * I + i];
        wdX[r * I + i] += dY[r * O + o] * W[o * I + i];
        wdW[o * I + i] += dY[r * O + o] * X[r * I + i];
      }
  tu_close("linear forward GEMM args", Y, wY, R * O, 1e-6);
  tu_close("linear dgrad GEMM args", dX, wdX, R * I, 1e-6);
  tu_close("linear wgrad GEMM args", dW, wdW, O * I, 1e-6);
  void *f[] = {X, W, dY, Y, dX, dW, wY, wdX, wdW};
  for (size_t i = 0; i < sizeof f / sizeof *f; i++) free(f[i]);
}

static void test_attention(void) {
  const int64_t T = 5, H = 2, dh = 4, D = H * dh, Q3 = 3 * D;
  float *qkv = rnd(T * Q3, 11), *dY = rnd(T * D, 12), *dS = rnd(H * T * T, 13), *P = rnd(H * T * T, 14);
  float *S = calloc((size_t)(H * T * T), 4), *Y = calloc((size_t)(T * D), 4), *dP = calloc((size_t)(H * T * T), 4);
  float *dqkv = calloc((size_t)(T * Q3), 4);
  float *wS = calloc((size_t)(H * T * T), 4), *wY = calloc((size_t)(T * D), 4), *wdP = calloc((size_t)(H * T * T), 4);
  float *wd = calloc((size_t)(T * Q3), 4);
  cuda_gemm_args g[6];
  cuda_attention_gemms(T, D, dh, g);
  const float *q = qkv, *k = qkv + D, *v = qkv + 2 * D;
  ref_gemm(&g[0], 1, k, q, 0, S, (int)H);
  ref_gemm(&g[1], 1, v, P, 0, Y, (int)H);
  ref_gemm(&g[2], 1, v, dY, 0, dP, (int)H);
  ref_gemm(&g[3], 1, dY, P, 0, dqkv + 2 * D, (int)H);
  ref_gemm(&g[4], 1, k, dS, 0, dqkv, (int)H);
  ref_gemm(&g[5], 1, q, dS, 0, dqkv + D, (int)H);
#define QV(base, i, c) (base)[(i) * Q3 + (c)]
  for (int64_t h = 0; h < H; h++)
    for (int64_t i = 0; i < T; i++)
      for (int64_t j = 0; j < T; j++)
        for (int64_t d = 0; d < dh; d++) {
          int64_t c = h * dh + d, pij = (h * T + i) * T + j;
          wS[pij] += QV(q, i, c) * QV(k, j, c);
          wY[i * D + c] += P[pij] * QV(v, j, c);
          wdP[pij] += dY[i * D + c] * QV(v, j, c);
          wd[j * Q3 + 2 * D + c] += P[pij] * dY[i * D + c];   // dV
          wd[i * Q3 + c] += dS[pij] * QV(k, j, c);            // dQ
          wd[j * Q3 + D + c] += dS[pij] * QV(q, i, c);        // dK
        }
  tu_close("attention S = Q K^T args", S, wS, H * T * T, 1e-6);
  tu_close("attention Y = P V args", Y, wY, T * D, 1e-6);
  tu_close("attention dP = dY V^T args", dP, wdP, H * T * T, 1e-6);
  tu_close("attention dQ|dK|dV args", dqkv, wd, T * Q3, 1e-6);
  void *f[] = {qkv, dY, dS, P, S, Y, dP, dqkv, wS, wY, wdP, wd};
  for (size_t i = 0; i < sizeof f / sizeof *f; i++) free(f[i]);
}

int main(void) {
  test_linear();
  test_attention();
  return tu_finish("test_gemm_args");
}
