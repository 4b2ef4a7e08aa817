#include "backend/cuda/cuda_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

#define BUCKET_ALIGN 64

static int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

int cuda_bucket_plan(int64_t n, int elem_bytes, int64_t bucket_bytes, int64_t first_bytes,
                     int64_t **lo, int64_t **hi) {
  DP_CHECK(n >= 0 && elem_bytes > 0 && bucket_bytes > 0, "planning gradient buckets",
           "bucket size must be > 0");
  if (first_bytes <= 0 || first_bytes > bucket_bytes) first_bytes = bucket_bytes;
  int64_t first = round_up(first_bytes / elem_bytes > 0 ? first_bytes / elem_bytes : 1, BUCKET_ALIGN);
  int64_t rest = round_up(bucket_bytes / elem_bytes > 0 ? bucket_bytes / elem_bytes : 1, BUCKET_ALIGN);
  int count = 0;
  for (int64_t p = 0; p < n; count++) p += count == 0 ? first : rest;
  if (n == 0) count = 0;
  *lo = dp_malloc((size_t)(count > 0 ? count : 1) * sizeof(int64_t), "bucket plan");
  *hi = dp_malloc((size_t)(count > 0 ? count : 1) * sizeof(int64_t), "bucket plan");
  int64_t p = 0;
  for (int b = 0; b < count; b++) {
    int64_t len = b == 0 ? first : rest;
    (*lo)[b] = p;
    (*hi)[b] = p + len < n ? p + len : n;
    p = (*hi)[b];
  }
  return count;
}

int cuda_pick_device(int local_rank, int local_world, int device_count, const char *visible,
                     char *msg, size_t msg_size) {
  if (device_count <= 0) {
    snprintf(msg, msg_size, "no CUDA device is visible to this process%s%s",
             visible ? " (CUDA_VISIBLE_DEVICES=" : "", visible ? visible : "");
    if (visible) strncat(msg, ")", msg_size - strlen(msg) - 1);
    return -1;
  }
  if (local_rank < 0 || local_world < 1 || local_rank >= local_world) {
    snprintf(msg, msg_size, "invalid local rank %d of %d", local_rank, local_world);
    return -1;
  }
  if (local_world <= device_count) {
    snprintf(msg, msg_size, "device %d of %d (local rank %d of %d)", local_rank, device_count,
             local_rank, local_world);
    return local_rank;
  }
  if (visible && *visible) {
    // The launcher gave each rank its own subset (srun --gpus-per-task, or a
    // wrapper setting CUDA_VISIBLE_DEVICES per rank).
    int d = local_rank % device_count;
    snprintf(msg, msg_size, "device %d of %d visible (CUDA_VISIBLE_DEVICES=%s, local rank %d)", d,
             device_count, visible, local_rank);
    return d;
  }
  snprintf(msg, msg_size,
           "%d ranks on this node but only %d GPU(s): start one rank per GPU "
           "(e.g. srun --ntasks-per-node=%d or --gpus-per-task=1)",
           local_world, device_count, device_count);
  return -1;
}

int cuda_optim_segments(const nn_param *params, int32_t nparams, const int64_t *param_step, float weight_decay,
                        int no_decay_norm_bias, float backbone_lr_mult, dp_optim_segment *out) {
  // Visit parameters in offset order (registration order is the reverse).
  int32_t *order = dp_malloc((size_t)(nparams > 0 ? nparams : 1) * sizeof(int32_t), "segments");
  for (int32_t i = 0; i < nparams; i++) order[i] = i;
  for (int32_t i = 1; i < nparams; i++) {  // insertion sort: small tables, nearly sorted
    int32_t v = order[i], j = i - 1;
    while (j >= 0 && params[order[j]].offset > params[v].offset) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = v;
  }
  int n = 0;
  for (int32_t k = 0; k < nparams; k++) {
    const nn_param *p = &params[order[k]];
    if (p->numel <= 0) continue;
    dp_optim_segment s = {0};
    s.lo = p->offset;
    s.hi = p->offset + p->numel;
    s.lr_mult = p->is_head ? 1.0f : backbone_lr_mult;
    s.weight_decay = (no_decay_norm_bias && p->kind != NN_PARAM_WEIGHT) ? 0.0f : weight_decay;
    s.frozen = p->frozen ? 1 : 0;
    s.param0 = order[k];
    s.bc1 = s.sqrt_bc2 = 1.0f;
    // Only alignment padding (zeros that stay zero) between the two tensors.
    int adjacent = n > 0 && nn_param_align(out[n - 1].hi) >= s.lo && out[n - 1].hi <= s.lo;
    if (adjacent && out[n - 1].lr_mult == s.lr_mult && out[n - 1].weight_decay == s.weight_decay &&
        out[n - 1].frozen == s.frozen && (!param_step || param_step[out[n - 1].param0] == param_step[order[k]])) {
      out[n - 1].hi = s.hi;
    } else {
      out[n++] = s;
    }
  }
  free(order);
  return n;
}

void cuda_adamw_corrections(dp_optim_segment *segs, int nsegs, const int64_t *param_step, float beta1, float beta2) {
  for (int i = 0; i < nsegs; i++) {
    // In double, as nn/optim.c: pow of a float underflows differently.
    double t = (double)(param_step[segs[i].param0] + 1);
    segs[i].bc1 = (float)(1.0 - pow((double)beta1, t));
    segs[i].sqrt_bc2 = (float)sqrt(1.0 - pow((double)beta2, t));
  }
}

int64_t cuda_subbuf_plan(const int64_t *bytes, int n, int64_t *off) {
  int64_t at = 0;
  for (int i = 0; i < n; i++) {
    off[i] = at;
    int64_t b = bytes[i] > 0 ? bytes[i] : 0;
    at += (b + CUDA_SUBBUF_ALIGN - 1) / CUDA_SUBBUF_ALIGN * CUDA_SUBBUF_ALIGN;
  }
  return at > 0 ? at : CUDA_SUBBUF_ALIGN;
}

int cuda_choose_algo(const cuda_algo_candidate *c, int n, int64_t workspace_limit, int need_deterministic) {
  for (int i = 0; i < n; i++)
    if (c[i].ok && c[i].memory <= workspace_limit && (!need_deterministic || c[i].deterministic)) return i;
  return -1;
}

static cuda_gemm_args gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc,
                           int64_t sa, int64_t sb, int64_t sc) {
  cuda_gemm_args a = {ta, tb, m, n, k, lda, ldb, ldc, sa, sb, sc};
  return a;
}

// Row-major R (r x c, ld l) is column-major R^T (c x r, ld l).
void cuda_linear_gemms(int64_t rows, int64_t in, int64_t out, cuda_gemm_args g[3]) {
  g[0] = gemm(1, 0, out, rows, in, in, in, out, 0, 0, 0);    // Y^T = (W^T)^T X^T
  g[1] = gemm(0, 0, in, rows, out, in, out, in, 0, 0, 0);    // dX^T = W^T dY^T
  g[2] = gemm(0, 1, in, out, rows, in, out, in, 0, 0, 0);    // dW^T = X^T (dY^T)^T
}

void cuda_attention_gemms(int64_t T, int64_t D, int64_t dh, cuda_gemm_args g[6]) {
  int64_t tt = T * T, q = 3 * D;
  g[0] = gemm(1, 0, T, T, dh, q, q, T, dh, dh, tt);          // S^T = K Q^T
  g[1] = gemm(0, 0, dh, T, T, q, T, D, dh, tt, dh);          // Y^T = V^T P^T
  g[2] = gemm(1, 0, T, T, dh, q, D, T, dh, dh, tt);          // dP^T = V dY^T
  g[3] = gemm(0, 1, dh, T, T, D, T, q, dh, tt, dh);          // dV^T = dY^T P
  g[4] = gemm(0, 0, dh, T, T, q, T, q, dh, tt, dh);          // dQ^T = K^T dS^T
  g[5] = gemm(0, 1, dh, T, T, q, T, q, dh, tt, dh);          // dK^T = Q^T dS
}
