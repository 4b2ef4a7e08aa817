// The decision layer of the study: for a scenario and a hardware row, where
// each model input comes from (measured run, bench, published figure, table
// column, or a labelled assumption), the grid of (row, device count)
// configurations, the cheapest one per option class that meets the deadline
// and budget, and the production and fallback picks with their reasons.
#ifndef DP_STUDY_DECIDE_H
#define DP_STUDY_DECIDE_H
#include <stdint.h>

#include "study/runs.h"
#include "study/sources.h"
#include "study/terms.h"
#include "study/workload.h"
#include "train/cost.h"

// Provenance of a number: how it was obtained and from what.
typedef enum { PV_MEASURED, PV_PUBLISHED, PV_MODELLED, PV_ASSUMED, PV_TABLE } pv_kind;
const char *pv_name(pv_kind k);   // "measured", "published", "modelled", "assumed", "table"
typedef struct {
  double v;
  pv_kind kind;
  char src[400];
} pv_num;

typedef struct {
  double deadline_h, budget_usd;
  double images, image_bytes;   // dataset: 1.2M, 180 KB
  int max_devices;              // grid: 1, 2, 4, ... up to this
  double memory_margin;         // share of device memory kept free (0.10)
  double default_storage_bps;   // rows without storage_GBps
  double assume_gpu_cv;         // step-time CV on devices without a measurement
  double assume_mfu;            // last resort when no figure of any kind exists
  int include_core_rows;        // decision grid also over unit=core rows
} dc_opts;

typedef struct {
  const dc_opts *o;
  const hw_table *hw;
  const study_sources *src;
  sr_set *runs;
  wl_cache *wl;
  // CUDA status from the inputs (not hard-coded): a training run on a GPU.
  int cuda_verified;
  char cuda_status[400];
} dc_ctx;

// Overrides for the sensitivity analysis (0 = the scenario's own value).
typedef struct {
  double images_mult;
  int64_t image_size;
  double batch_mult;
  double cores_per_device;      // GPU/TPU rows only
  double cpu_mfu_mult, gpu_mfu_mult;   // scale the MFU of CPU / GPU+TPU rows
} dc_variant;

typedef enum { OC_CPU, OC_GPU1, OC_GPU_NODE, OC_MULTINODE, OC_TPU, OC_N } dc_class;
const char *dc_class_name(dc_class c);

// One evaluated configuration with the provenance of its inputs.
typedef struct {
  const hw_entry *row;
  int devices;
  dc_class cls;
  int64_t image_size, batch, epochs;
  sm_input in;
  sm_result res;
  pv_num mfu, input_rate, hidden, cv, max_batch, bus, storage, cores;
  double flops_fwd;
  int runnable;                 // dptrain can run it (CPU, CUDA)
  int risk;                     // 0 = verified, single node; higher = more to go wrong
  char risks[600];              // "; "-separated
  int meets;                    // feasible, runnable or not, within deadline and budget
} dc_config;

typedef struct {
  dc_config *c;
  int n;
  int best[OC_N];               // index of the cheapest config meeting both limits per class (-1: none)
  int fastest[OC_N];            // index of the fastest feasible config per class (-1: none)
  int production, fallback;     // indices (-1: none)
  char production_why[700], fallback_why[700];
} dc_grid;

void dc_ctx_init(dc_ctx *x, const dc_opts *o, const hw_table *hw, const study_sources *src, sr_set *runs, wl_cache *wl);
// MFU for a model family on a row at an image size. exclude: a run path left
// out (calibration predicts each run from the others); NULL for none.
pv_num dc_mfu(dc_ctx *x, const char *model, int64_t image_size, const hw_entry *row, const char *exclude,
              const sr_run **from);
pv_num dc_hidden(dc_ctx *x, const char *family, const char *kind, const char *exclude);
pv_num dc_cv(dc_ctx *x, const char *family, const char *kind, const char *exclude);
// Evaluates the whole grid for a scenario (and a variant) and picks.
int dc_grid_build(dc_ctx *x, const sc_scenario *sc, const dc_variant *v, dc_grid *g, char *err, int err_sz);
void dc_grid_free(dc_grid *g);
// One sentence on why a configuration is what it is (binding term and its figures).
void dc_explain(const dc_config *c, char *out, int n);
#endif
