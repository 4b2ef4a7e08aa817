// What a model costs at an image size: forward FLOPs per image, parameters
// (the gradient bytes) and the training-memory plan, from a provider
// (train/model_plan.h by default; tests plug in synthetic figures). The
// memory term's per-device batch limit comes from the plan, or from a
// batch-size finder result (`dptrain tune-batch`) when one matches.
#ifndef DP_STUDY_WORKLOAD_H
#define DP_STUDY_WORKLOAD_H
#include <stdint.h>

#include "study/sources.h"

// Fills flops (forward, per image), params and plan_bytes at `batch`; 0 or -1.
typedef int (*wl_describe_fn)(const char *model, int64_t image_size, int64_t classes, const char *optimizer,
                              int64_t batch, double *flops, double *params, double *plan_bytes);

typedef struct {
  char model[32], optimizer[8];
  int64_t image_size, classes;
  double flops_fwd, params;
  double plan1, plan2;       // planned bytes at batch 1 and 2 (the plan is affine in the batch)
} wl_model;

typedef struct {
  wl_model **m;              // stable pointers
  int n;
  wl_describe_fn describe;   // NULL: train/model_plan.h
} wl_cache;

// Figures of the model (computed once per key); NULL for an unknown model.
const wl_model *wl_get(wl_cache *c, const char *model, int64_t image_size, int64_t classes, const char *optimizer);
// Planned training bytes at batch b.
double wl_plan_bytes(wl_cache *c, const wl_model *m, int64_t batch);
// Largest batch whose plan fits budget bytes (0: not even batch 1; -1: no
// budget known), and where the figure came from in src.
int64_t wl_max_batch(wl_cache *c, const wl_model *m, double budget_bytes, const char *hardware,
                     const study_sources *s, char *src, int src_sz);
void wl_cache_free(wl_cache *c);
#endif
