// Optimizers over the flat parameter buffer; semantics in optim.h.
//
// Speed: every step builds a small table of trainable ranges (one per param
// tensor, in offset order, with that tensor's LR, decay and bias corrections),
// then one OpenMP region splits the *trainable elements* evenly over threads.
// Each thread walks its contiguous slice, crossing tensor boundaries, so there
// is no barrier per tensor and the inner loops are plain vectorisable loops
// over restrict pointers (one pass reading p, g and the state).
#include "nn/optim.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "core/check.h"
#include "core/log.h"

typedef struct {
  int64_t lo, hi;      // element range in the flat buffer
  int64_t before;      // trainable elements in earlier segments
  float lr, wd;
  float step_size;     // Adam: lr / (1 - b1^t)
  float bc2_sqrt;      // Adam: sqrt(1 - b2^t)
} optim_seg;

void optim_cfg_defaults(optim_cfg *cfg, optim_kind kind) {
  memset(cfg, 0, sizeof *cfg);
  cfg->kind = kind;
  cfg->momentum = 0.9f;
  cfg->beta1 = 0.9f;
  cfg->beta2 = 0.999f;
  cfg->eps = 1e-8f;
  if (kind == OPTIM_SGD) {
    cfg->lr = 0.1f;
    cfg->weight_decay = 1e-4f;
  } else {
    cfg->lr = 1e-3f;
    cfg->weight_decay = 0.05f;
  }
  cfg->no_decay_norm_bias = 1;
  cfg->backbone_lr_mult = 1.0f;
  cfg->sched = SCHED_CONSTANT;
  cfg->warmup_start_factor = 0.1f;
  cfg->step_gamma = 0.1f;
}

int optim_state_copies(optim_kind kind) { return kind == OPTIM_ADAMW ? 2 : 1; }

static void cfg_validate(const optim_cfg *c) {
  if (!(c->lr >= 0)) DP_FATAL("optimizer config", "set --lr >= 0", "lr = %g", (double)c->lr);
  if (c->kind != OPTIM_SGD && c->kind != OPTIM_ADAMW)
    DP_FATAL("optimizer config", "use sgd or adamw", "unknown optimizer kind %d", (int)c->kind);
  if (c->kind == OPTIM_SGD && (c->momentum < 0 || c->momentum >= 1))
    DP_FATAL("optimizer config", "momentum in [0, 1)", "momentum = %g", (double)c->momentum);
  if (c->kind == OPTIM_SGD && c->nesterov && c->momentum <= 0)
    DP_FATAL("optimizer config", "nesterov needs momentum > 0", "momentum = %g", (double)c->momentum);
  if (c->kind == OPTIM_ADAMW &&
      (c->beta1 < 0 || c->beta1 >= 1 || c->beta2 < 0 || c->beta2 >= 1 || !(c->eps > 0)))
    DP_FATAL("optimizer config", "betas in [0, 1), eps > 0", "beta1 %g beta2 %g eps %g",
             (double)c->beta1, (double)c->beta2, (double)c->eps);
  if (c->weight_decay < 0)
    DP_FATAL("optimizer config", "weight decay >= 0", "weight_decay = %g", (double)c->weight_decay);
  if (c->clip_grad_norm < 0)
    DP_FATAL("optimizer config", "clip norm >= 0 (0 = off)", "clip = %g", (double)c->clip_grad_norm);
  if (c->warmup_steps < 0 || c->warmup_start_factor < 0 || c->warmup_start_factor > 1)
    DP_FATAL("optimizer config", "warmup steps >= 0, start factor in [0, 1]",
             "warmup %lld factor %g", (long long)c->warmup_steps, (double)c->warmup_start_factor);
  if (c->backbone_lr_mult < 0)
    DP_FATAL("optimizer config", "backbone LR multiplier >= 0", "%g", (double)c->backbone_lr_mult);
  if (c->unfreeze_every < 0 || c->freeze_below_stage < 0)
    DP_FATAL("optimizer config", "freeze settings >= 0", "freeze_below %d unfreeze_every %d",
             c->freeze_below_stage, c->unfreeze_every);
}

optimizer *optim_create(const optim_cfg *cfg, nn_graph *g, int num_stages) {
  DP_CHECK(g->finalized, "creating the optimizer", "finalize the graph first");
  cfg_validate(cfg);
  optimizer *o = dp_calloc(1, sizeof *o, "optimizer");
  o->cfg = *cfg;
  o->n = g->nparam_elems;
  size_t bytes = (size_t)(o->n > 0 ? o->n : 1) * sizeof(float);
  // Zeroed (and so touched) now: the first step must not pay page faults and
  // RSS must match the memory plan.
  o->state1 = dp_aligned_alloc(64, bytes, "optimizer state");
  memset(o->state1, 0, bytes);
  if (cfg->kind == OPTIM_ADAMW) {
    o->state2 = dp_aligned_alloc(64, bytes, "optimizer state");
    memset(o->state2, 0, bytes);
  }
  o->nparams = g->nparams;
  o->param_step = dp_calloc((size_t)(g->nparams > 0 ? g->nparams : 1), sizeof(int64_t), "optimizer");
  o->base_frozen = optim_freeze_capture(g, num_stages, &o->num_stages);
  o->segs = dp_calloc((size_t)(g->nparams > 0 ? g->nparams : 1), sizeof(optim_seg), "optimizer");
  o->last_grad_norm = -1;
  o->last_clip_coef = 1;
  o->trainable_elems = -1;
  o->last_lr = optim_lr_at(cfg, 0);
  // Epoch-0 freezing right away, so a caller that never calls
  // optim_apply_freezing still gets the configured stages frozen.
  if (cfg->freeze_below_stage > 0 || cfg->unfreeze_every > 0) optim_apply_freezing(o, g, 0);
  return o;
}

void optim_destroy(optimizer *o) {
  if (!o) return;
  free(o->state1);
  free(o->state2);
  free(o->param_step);
  free(o->base_frozen);
  free(o->segs);
  free(o);
}

float optim_lr_at(const optim_cfg *c, int64_t s) {
  double lr = c->lr;
  if (s < 0) s = 0;
  if (s < c->warmup_steps) {
    double f = c->warmup_start_factor;
    return (float)(lr * (f + (1.0 - f) * (double)s / (double)c->warmup_steps));
  }
  int64_t k = s - c->warmup_steps;
  switch (c->sched) {
    case SCHED_COSINE: {
      int64_t d = c->total_steps - c->warmup_steps;
      if (d <= 0) return (float)lr;
      if (k > d) k = d;
      double mn = c->min_lr;
      return (float)(mn + (lr - mn) * 0.5 * (1.0 + cos(M_PI * (double)k / (double)d)));
    }
    case SCHED_STEP:
      if (c->step_every <= 0) return (float)lr;
      return (float)(lr * pow((double)c->step_gamma, (double)(k / c->step_every)));
    case SCHED_CONSTANT:
    default:
      return (float)lr;
  }
}

int optim_stage_trainable(const optim_cfg *c, int num_stages, int stage, int64_t epoch) {
  if (stage < c->freeze_below_stage) return 0;
  if (c->unfreeze_every > 0) {
    int64_t top = num_stages - 1;
    if (epoch < 0) epoch = 0;
    if ((int64_t)stage < top - epoch / c->unfreeze_every) return 0;
  }
  return 1;
}

uint8_t *optim_freeze_capture(const nn_graph *g, int num_stages, int *num_stages_out) {
  uint8_t *base = dp_calloc((size_t)(g->nparams > 0 ? g->nparams : 1), 1, "frozen flags");
  int top = 0;
  for (int32_t i = 0; i < g->nparams; i++) {
    base[i] = (uint8_t)(g->params[i].frozen != 0);
    if (g->params[i].stage > top) top = g->params[i].stage;
  }
  *num_stages_out = num_stages > 0 ? num_stages : top + 1;
  if (*num_stages_out < top + 1)
    DP_FATAL("optimizer create", "pass 0 to derive the stage count",
             "num_stages %d but a parameter has stage %d", num_stages, top);
  return base;
}

int64_t optim_freeze_apply(const optim_cfg *cfg, const uint8_t *base_frozen, int num_stages, nn_graph *g,
                           int64_t epoch) {
  int64_t trainable = 0;
  for (int32_t i = 0; i < g->nparams; i++) {
    nn_param *p = &g->params[i];
    p->frozen = base_frozen[i] || !optim_stage_trainable(cfg, num_stages, p->stage, epoch);
    if (!p->frozen) trainable += p->numel;
  }
  return trainable;
}

void optim_apply_freezing(optimizer *o, nn_graph *g, int64_t epoch) {
  DP_CHECK(g->nparams == o->nparams, "applying freezing", "use the graph the optimizer was made for");
  int64_t trainable = optim_freeze_apply(&o->cfg, o->base_frozen, o->num_stages, g, epoch);
  if (trainable != o->trainable_elems && (o->cfg.freeze_below_stage > 0 || o->cfg.unfreeze_every > 0))
    LOG_INFO("epoch %lld: %lld of %lld parameters trainable", (long long)epoch,
             (long long)trainable, (long long)nn_param_count(g));
  o->trainable_elems = trainable;
}

// Trainable ranges in offset order (params are laid out in reverse
// registration order, so walk the table backwards). Returns the count and the
// number of trainable elements.
static int32_t build_segs(const nn_graph *g, optim_seg *segs, int64_t *total) {
  int32_t ns = 0;
  int64_t before = 0;
  for (int32_t i = g->nparams - 1; i >= 0; i--) {
    const nn_param *p = &g->params[i];
    if (p->frozen || p->numel == 0) continue;
    optim_seg *s = &segs[ns++];
    memset(s, 0, sizeof *s);
    s->lo = p->offset;
    s->hi = p->offset + p->numel;
    s->before = before;
    before += p->numel;
  }
  *total = before;
  return ns;
}

// Slice [a, b) of the trainable elements handed to thread t of nt; boundaries
// rounded to 16 elements (one cache line) so threads do not share lines.
static void thread_slice(int64_t total, int t, int nt, int64_t *a, int64_t *b) {
  int64_t per = (total + nt - 1) / nt;
  per = (per + 15) / 16 * 16;
  *a = (int64_t)t * per;
  *b = *a + per;
  if (*a > total) *a = total;
  if (*b > total) *b = total;
}

// First segment containing trainable element e (segments sorted by `before`).
static int32_t seg_find(const optim_seg *segs, int32_t ns, int64_t e) {
  int32_t lo = 0, hi = ns - 1;
  while (lo < hi) {
    int32_t mid = (lo + hi + 1) / 2;
    if (segs[mid].before <= e) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

static double sumsq_range(const float *restrict x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

// Sum of squares over trainable elements [a, b) in segment order.
static double sumsq_slice(const nn_graph *g, const optim_seg *segs, int32_t ns, int64_t a, int64_t b) {
  double sum = 0;
  for (int32_t k = seg_find(segs, ns, a); k < ns && segs[k].before < b; k++) {
    const optim_seg *s = &segs[k];
    int64_t lo = a > s->before ? a - s->before : 0;
    int64_t hi = b - s->before < s->hi - s->lo ? b - s->before : s->hi - s->lo;
    sum += sumsq_range(g->grads + s->lo + lo, hi - lo);
  }
  return sum;
}

// The norm is summed in fixed blocks, then the blocks in order, so its value
// does not depend on the thread count: ranks with different thread counts
// must clip identically or their replicas drift apart.
#define NORM_BLOCK 16384
static double grad_norm_segs(const nn_graph *g, const optim_seg *segs, int32_t ns, int64_t total) {
  if (total == 0) return 0;
  int64_t nblk = (total + NORM_BLOCK - 1) / NORM_BLOCK;
  double *part = dp_malloc((size_t)nblk * sizeof(double), "gradient norm");
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < nblk; j++) {
    int64_t a = j * NORM_BLOCK, b = a + NORM_BLOCK < total ? a + NORM_BLOCK : total;
    part[j] = sumsq_slice(g, segs, ns, a, b);
  }
  double sum = 0;
  for (int64_t j = 0; j < nblk; j++) sum += part[j];
  free(part);
  return sqrt(sum);
}

double optim_grad_norm(const nn_graph *g) {
  optim_seg *segs = dp_calloc((size_t)(g->nparams > 0 ? g->nparams : 1), sizeof *segs, "grad norm");
  int64_t total;
  int32_t ns = build_segs(g, segs, &total);
  double n = grad_norm_segs(g, segs, ns, total);
  free(segs);
  return n;
}

// p, g, buf: (n). gs = clip coefficient. Same float operation order as torch.
static void sgd_range(float *restrict p, const float *restrict g, float *restrict buf, int64_t n,
                      float lr, float wd, float mom, int nesterov, float gs) {
  if (mom == 0.0f) {
    for (int64_t i = 0; i < n; i++) {
      float d = g[i] * gs + wd * p[i];
      p[i] = p[i] - lr * d;
    }
  } else if (nesterov) {
    for (int64_t i = 0; i < n; i++) {
      float d = g[i] * gs + wd * p[i];
      float b = mom * buf[i] + d;
      buf[i] = b;
      p[i] = p[i] - lr * (d + mom * b);
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      float d = g[i] * gs + wd * p[i];
      float b = mom * buf[i] + d;
      buf[i] = b;
      p[i] = p[i] - lr * b;
    }
  }
}

// The loop is written with SSE on x86 because GCC will not vectorise sqrtf
// while -fmath-errno is on (and the build flags are not ours to change);
// _mm_sqrt_ps and _mm_div_ps round exactly like sqrtf and '/'.
static void adamw_range(float *restrict p, const float *restrict g, float *restrict m,
                        float *restrict v, int64_t n, float decay_mul, float b1, float b2,
                        float eps, float step_size, float bc2_sqrt, float gs) {
  const float c1 = 1.0f - b1, c2 = 1.0f - b2;
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128 vgs = _mm_set1_ps(gs), vdm = _mm_set1_ps(decay_mul), vb1 = _mm_set1_ps(b1),
               vb2 = _mm_set1_ps(b2), vc1 = _mm_set1_ps(c1), vc2 = _mm_set1_ps(c2),
               vbc = _mm_set1_ps(bc2_sqrt), veps = _mm_set1_ps(eps), vss = _mm_set1_ps(step_size);
  for (; i + 4 <= n; i += 4) {
    __m128 gi = _mm_mul_ps(_mm_loadu_ps(g + i), vgs);
    __m128 pi = _mm_mul_ps(_mm_loadu_ps(p + i), vdm);
    __m128 mi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m + i), vb1), _mm_mul_ps(vc1, gi));
    __m128 vi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(v + i), vb2), _mm_mul_ps(_mm_mul_ps(vc2, gi), gi));
    _mm_storeu_ps(m + i, mi);
    _mm_storeu_ps(v + i, vi);
    __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), vbc), veps);
    _mm_storeu_ps(p + i, _mm_sub_ps(pi, _mm_mul_ps(vss, _mm_div_ps(mi, denom))));
  }
#endif
  for (; i < n; i++) {
    float gi = g[i] * gs;
    float pi = p[i] * decay_mul;
    float mi = m[i] * b1 + c1 * gi;
    float vi = v[i] * b2 + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    p[i] = pi - step_size * (mi / denom);
  }
}

float optim_step(optimizer *o, nn_graph *g) {
  DP_CHECK(g->nparam_elems == o->n && g->nparams == o->nparams, "optimizer step",
           "use the graph the optimizer was made for");
  const optim_cfg *c = &o->cfg;
  optim_seg *segs = o->segs;
  int64_t total;
  int32_t ns = build_segs(g, segs, &total);
  float lr = optim_lr_at(c, o->step);

  float gs = 1.0f;
  o->last_grad_norm = -1;
  if (c->clip_grad_norm > 0) {
    double norm = grad_norm_segs(g, segs, ns, total);
    o->last_grad_norm = norm;
    if (!isfinite(norm)) LOG_WARN("gradient norm is %g at step %lld", norm, (long long)o->step);
    float coef = (float)((double)c->clip_grad_norm / (norm + 1e-6));
    if (coef < 1.0f || !isfinite(norm)) gs = coef;
  }
  o->last_clip_coef = gs;

  // Per-tensor LR, decay and (Adam) bias corrections; bump per-tensor steps.
  for (int32_t i = g->nparams - 1, k = 0; i >= 0; i--) {
    nn_param *p = &g->params[i];
    if (p->frozen || p->numel == 0) continue;
    optim_seg *s = &segs[k++];
    double plr = (double)lr * (p->is_head ? 1.0 : (double)c->backbone_lr_mult);
    double wd = (c->no_decay_norm_bias && p->kind != NN_PARAM_WEIGHT) ? 0.0 : (double)c->weight_decay;
    s->lr = (float)plr;
    if (c->kind == OPTIM_ADAMW) {
      int64_t t = ++o->param_step[i];
      double bc1 = 1.0 - pow((double)c->beta1, (double)t);
      double bc2 = 1.0 - pow((double)c->beta2, (double)t);
      s->wd = (float)(1.0 - plr * wd);   // decay multiplier
      s->step_size = (float)(plr / bc1);
      s->bc2_sqrt = (float)sqrt(bc2);
    } else {
      o->param_step[i]++;
      s->wd = (float)wd;
    }
  }

  if (total > 0) {
#pragma omp parallel
    {
      int64_t a, b;
      thread_slice(total, omp_get_thread_num(), omp_get_num_threads(), &a, &b);
      if (a < b) {
        for (int32_t k = seg_find(segs, ns, a); k < ns && segs[k].before < b; k++) {
          const optim_seg *s = &segs[k];
          int64_t lo = a > s->before ? a - s->before : 0;
          int64_t hi = b - s->before < s->hi - s->lo ? b - s->before : s->hi - s->lo;
          int64_t off = s->lo + lo, cnt = hi - lo;
          if (c->kind == OPTIM_ADAMW)
            adamw_range(g->params_data + off, g->grads + off, o->state1 + off, o->state2 + off, cnt,
                        s->wd, c->beta1, c->beta2, c->eps, s->step_size, s->bc2_sqrt, gs);
          else
            sgd_range(g->params_data + off, g->grads + off, o->state1 + off, cnt, s->lr, s->wd,
                      c->momentum, c->nesterov, gs);
        }
      }
    }
  }
  o->step++;
  o->last_lr = lr;
  return lr;
}

void optim_snapshot_alloc(optim_snapshot *s, optim_kind kind, const nn_graph *g) {
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->n = g->nparam_elems;
  s->nparams = g->nparams;
  size_t bytes = (size_t)(s->n > 0 ? s->n : 1) * sizeof(float);
  s->state1 = dp_calloc(1, bytes, "optimizer snapshot");
  if (kind == OPTIM_ADAMW) s->state2 = dp_calloc(1, bytes, "optimizer snapshot");
  s->param_step = dp_calloc((size_t)(s->nparams > 0 ? s->nparams : 1), sizeof(int64_t), "optimizer snapshot");
}

void optim_snapshot_free(optim_snapshot *s) {
  free(s->state1);
  free(s->state2);
  free(s->param_step);
  memset(s, 0, sizeof *s);
}

void optim_snapshot_get(const optimizer *o, optim_snapshot *s) {
  DP_CHECK(s->kind == o->cfg.kind && s->n == o->n && s->nparams == o->nparams, "optimizer snapshot",
           "allocate the snapshot for this optimizer (optim_snapshot_alloc)");
  memcpy(s->state1, o->state1, (size_t)o->n * sizeof(float));
  if (o->state2) memcpy(s->state2, o->state2, (size_t)o->n * sizeof(float));
  memcpy(s->param_step, o->param_step, (size_t)o->nparams * sizeof(int64_t));
  s->step = o->step;
  s->applied = o->step;   // the CPU optimizer never skips a step
}

int optim_snapshot_set(optimizer *o, const optim_snapshot *s, char *err, int err_sz) {
  if (s->kind != o->cfg.kind) {
    snprintf(err, err_sz, "the saved optimizer is %s, this run uses %s", s->kind == OPTIM_ADAMW ? "adamw" : "sgd",
             o->cfg.kind == OPTIM_ADAMW ? "adamw" : "sgd");
    return -1;
  }
  if (s->n != o->n || s->nparams != o->nparams) {
    snprintf(err, err_sz, "the saved optimizer state has %lld elements in %d tensors, the model %lld in %d",
             (long long)s->n, s->nparams, (long long)o->n, o->nparams);
    return -1;
  }
  memcpy(o->state1, s->state1, (size_t)o->n * sizeof(float));
  if (o->state2) memcpy(o->state2, s->state2, (size_t)o->n * sizeof(float));
  memcpy(o->param_step, s->param_step, (size_t)o->nparams * sizeof(int64_t));
  o->step = s->step;
  o->last_lr = optim_lr_at(&o->cfg, o->step > 0 ? o->step - 1 : 0);
  return 0;
}
