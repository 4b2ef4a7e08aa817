// Lifetime planner of the activation arena (the rules are in nn/plan.h).
#include "nn/plan.h"

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/check.h"
#include "nn/backend.h"

enum { IT_DATA = 0, IT_GRAD, IT_EXTRA, IT_SCRATCH };

typedef struct {
  int64_t size, off;
  int32_t a[2], b[2];   // closed step intervals; nint of them
  int nint;
  int kind;
  int32_t owner;        // tensor id (data/grad/extra) or op index (scratch)
} item;

static int64_t align_bytes(int64_t n) { return (n + DP_ARENA_ALIGN - 1) / DP_ARENA_ALIGN * DP_ARENA_ALIGN; }

static int lives_overlap(const item *x, const item *y) {
  for (int i = 0; i < x->nint; i++)
    for (int j = 0; j < y->nint; j++)
      if (x->a[i] <= y->b[j] && y->a[j] <= x->b[i]) return 1;
  return 0;
}

static const item *g_items;   // for the qsort comparators (single-threaded planning)

// Largest first; ties by first step, then kind and owner (a deterministic order).
static int cmp_size(const void *pa, const void *pb) {
  const item *x = &g_items[*(const int32_t *)pa], *y = &g_items[*(const int32_t *)pb];
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  if (x->a[0] != y->a[0]) return x->a[0] < y->a[0] ? -1 : 1;
  if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
  return x->owner < y->owner ? -1 : x->owner > y->owner;
}

typedef struct {
  int64_t lo, hi;
} span;
static int cmp_span(const void *pa, const void *pb) {
  const span *x = pa, *y = pb;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

// Greedy by size, best-fit gap among the placed items that overlap in time.
static int64_t place(item *it, int32_t n) {
  int32_t *order = dp_malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t), "plan order");
  for (int32_t i = 0; i < n; i++) order[i] = i;
  g_items = it;
  qsort(order, (size_t)n, sizeof *order, cmp_size);
  span *busy = dp_malloc((size_t)(n > 0 ? n : 1) * sizeof(span), "plan spans");
  int64_t arena = 0;
  for (int32_t k = 0; k < n; k++) {
    item *x = &it[order[k]];
    int32_t nb = 0;
    for (int32_t j = 0; j < k; j++) {
      const item *y = &it[order[j]];
      if (lives_overlap(x, y)) busy[nb++] = (span){y->off, y->off + y->size};
    }
    qsort(busy, (size_t)nb, sizeof *busy, cmp_span);
    int64_t best = -1, best_gap = INT64_MAX, end = 0;
    for (int32_t j = 0; j < nb; j++) {
      int64_t gap = busy[j].lo - end;
      if (gap >= x->size && gap < best_gap) {
        best_gap = gap;
        best = end;
      }
      if (busy[j].hi > end) end = busy[j].hi;
    }
    x->off = best >= 0 ? best : end;
    if (x->off + x->size > arena) arena = x->off + x->size;
  }
  free(busy);
  free(order);
  return arena;
}

static void add_item(item *it, int32_t *n, int64_t bytes, int kind, int32_t owner, int32_t a0, int32_t b0,
                     int32_t a1, int32_t b1) {
  if (bytes <= 0) return;
  item *x = &it[(*n)++];
  memset(x, 0, sizeof *x);
  x->size = align_bytes(bytes);
  x->off = -1;
  x->kind = kind;
  x->owner = owner;
  x->a[0] = a0, x->b[0] = b0, x->nint = 1;
  if (a1 >= 0) x->a[1] = a1, x->b[1] = b1, x->nint = 2;
}

void nn_plan_build(const nn_graph *g, int layout, nn_plan *p) {
  memset(p, 0, sizeof *p);
  const int32_t n = g->nops, nt = g->ntensors;
  const int32_t END = n > 0 ? 2 * n - 1 : 0;
  const int flat = g->plan_mode == NN_PLAN_FLAT;
#define BWD(i) (2 * n - 1 - (i))
  // Per tensor: last consumer, and the earliest / latest op that reads it in backward.
  int32_t *maxc = dp_malloc((size_t)(nt > 0 ? nt : 1) * 3 * sizeof(int32_t), "plan tensors");
  int32_t *minr = maxc + nt, *maxr = minr + nt;
  for (int32_t t = 0; t < nt; t++) maxc[t] = maxr[t] = -1, minr[t] = INT32_MAX;
  for (int32_t i = 0; i < n; i++) {
    const nn_op *op = g->ops[i];
    for (int k = 0; k < op->nin; k++) {
      nn_tid t = op->in[k];
      if (i > maxc[t]) maxc[t] = i;
      if (op->in_keep[k]) {
        if (i < minr[t]) minr[t] = i;
        if (i > maxr[t]) maxr[t] = i;
      }
    }
    if (op->out_keep && op->out >= 0) {
      if (i < minr[op->out]) minr[op->out] = i;
      if (i > maxr[op->out]) maxr[op->out] = i;
    }
  }
  item *it = dp_malloc((size_t)(3 * nt + n + 1) * sizeof(item), "plan items");
  int32_t ni = 0;
  uint8_t *pinned = dp_calloc((size_t)(nt > 0 ? nt : 1), 1, "plan pinned");
  uint8_t *recomp = dp_calloc((size_t)(nt > 0 ? nt : 1), 1, "plan recompute");
  int32_t *rat = dp_malloc((size_t)(nt > 0 ? nt : 1) * sizeof(int32_t), "plan recompute");
  for (int32_t t = 0; t < nt; t++) {
    const nn_tensor *x = &g->tensors[t];
    int32_t pr = x->producer;
    rat[t] = -1;
    pinned[t] = pr < 0 || maxc[t] < 0 || t == g->input || t == g->logits || t == g->loss_tensor;
    int64_t bytes = x->numel * 4;
    if (flat) {
      add_item(it, &ni, bytes, IT_DATA, t, 0, END, -1, -1);
      if (x->needs_grad) add_item(it, &ni, bytes, IT_GRAD, t, 0, END, -1, -1);
      add_item(it, &ni, x->extra_bytes, IT_EXTRA, t, 0, END, -1, -1);
      continue;
    }
    if (pinned[t]) {
      add_item(it, &ni, bytes, IT_DATA, t, 0, END, -1, -1);
      if (x->needs_grad) add_item(it, &ni, bytes, IT_GRAD, t, n, END, -1, -1);
      add_item(it, &ni, x->extra_bytes, IT_EXTRA, t, 0, END, -1, -1);
      continue;
    }
    if (maxr[t] < 0) {   // no backward reads it: free after the last forward reader
      add_item(it, &ni, bytes, IT_DATA, t, pr, maxc[t], -1, -1);
    } else {
      const nn_op *po = g->ops[pr];
      if (g->plan_recompute && po->recompute && g->be->recompute && g->be->recompute[po->kind]) {
        recomp[t] = 1;
        rat[t] = maxr[t];
        p->nrecompute++;
        add_item(it, &ni, bytes, IT_DATA, t, pr, maxc[t], BWD(maxr[t]), BWD(minr[t]));
      } else {
        add_item(it, &ni, bytes, IT_DATA, t, pr, BWD(minr[t]), -1, -1);
      }
    }
    if (x->needs_grad) add_item(it, &ni, bytes, IT_GRAD, t, BWD(maxc[t]), BWD(pr), -1, -1);
    add_item(it, &ni, x->extra_bytes, IT_EXTRA, t, pr, BWD(pr), -1, -1);
  }
  for (int32_t i = 0; i < n; i++)
    add_item(it, &ni, g->ops[i]->bwd_scratch_bytes, IT_SCRATCH, i, flat ? 0 : BWD(i), flat ? END : BWD(i), -1, -1);
#undef BWD
  for (int32_t k = 0; k < ni; k++) p->flat_bytes += it[k].size;
  p->arena_bytes = place(it, ni);

  // Live bytes per step (difference array), the peak and what is kept across the boundary.
  int64_t *live = dp_calloc((size_t)(END + 2) * 4, sizeof(int64_t), "plan live");
  for (int32_t k = 0; k < ni; k++) {
    int kd = it[k].kind == IT_SCRATCH ? IT_EXTRA : it[k].kind;
    for (int j = 0; j < it[k].nint; j++) {
      live[(size_t)it[k].a[j] * 4 + 3] += it[k].size;
      live[(size_t)(it[k].b[j] + 1) * 4 + 3] -= it[k].size;
      live[(size_t)it[k].a[j] * 4 + (size_t)kd] += it[k].size;
      live[(size_t)(it[k].b[j] + 1) * 4 + (size_t)kd] -= it[k].size;
      if (n > 0 && kd != IT_GRAD && it[k].a[j] <= n - 1 && it[k].b[j] >= n) p->kept_bytes += it[k].size;
    }
  }
  int64_t run[4] = {0, 0, 0, 0};
  for (int32_t s = 0; s <= END; s++) {
    for (int c = 0; c < 4; c++) run[c] += live[(size_t)s * 4 + (size_t)c];
    if (run[3] > p->peak_live_bytes) {
      p->peak_live_bytes = run[3];
      p->peak_step = s;
      p->live_data = run[IT_DATA];
      p->live_grad = run[IT_GRAD];
      p->live_extra = run[IT_EXTRA];
    }
  }
  free(live);

  if (layout) {
    // Self-check of the offset assignment: items alive at the same step never share bytes.
    for (int32_t i = 0; i < ni; i++)
      for (int32_t j = i + 1; j < ni; j++)
        if (it[i].off < it[j].off + it[j].size && it[j].off < it[i].off + it[i].size && lives_overlap(&it[i], &it[j]))
          p->overlaps++;
    p->data_off = dp_malloc((size_t)(nt > 0 ? nt : 1) * 3 * sizeof(int64_t), "plan offsets");
    p->grad_off = p->data_off + nt;
    p->extra_off = p->grad_off + nt;
    p->scratch_off = dp_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t), "plan offsets");
    for (int32_t t = 0; t < 3 * nt; t++) p->data_off[t] = -1;
    for (int32_t i = 0; i < n; i++) p->scratch_off[i] = -1;
    for (int32_t k = 0; k < ni; k++) {
      const item *x = &it[k];
      switch (x->kind) {
        case IT_DATA: p->data_off[x->owner] = x->off; break;
        case IT_GRAD: p->grad_off[x->owner] = x->off; break;
        case IT_EXTRA: p->extra_off[x->owner] = x->off; break;
        default: p->scratch_off[x->owner] = x->off; break;
      }
    }
    p->pinned = pinned;
    p->recomputed = recomp;
    p->recompute_at = rat;
  } else {
    free(pinned);
    free(recomp);
    free(rat);
  }
  free(it);
  free(maxc);
}

void nn_plan_free(nn_plan *p) {
  free(p->data_off);   // grad_off and extra_off share the block
  free(p->scratch_off);
  free(p->pinned);
  free(p->recomputed);
  free(p->recompute_at);
  memset(p, 0, sizeof *p);
}
