// The batch-size finder and the memory budget of a training run
// (docs/memory.md, `dptrain tune-batch`, `dptrain train --batch auto`).
//
// A run's memory is planned, not discovered: the static graph's lifetime plan
// (nn_graph_memory_plan: parameters, gradients, optimizer state, the
// activation arena, op workspace, library runtime) plus the loaders' buffers
// sized for the worst case the data and augmentation can produce
// (loader_plan_bytes), gradient-reduction buffers and, on a GPU, the library
// workspace bound and the context. The finder picks the largest batch whose
// plan fits the budget minus the margin from the plan alone (a planning graph
// per candidate, no allocation), then runs ONE training step at that batch to
// measure the real peak. If the measurement exceeds the plan by more than the
// margin, the plan is wrong: the finder says so, scales the plan by what it
// measured and steps down. It never needs an out-of-memory error to decide.
//
// Budget per rank: --memory-budget, else the device's free memory (GPU:
// cudaMemGetInfo; CPU: cgroup memory.max or MemAvailable) minus a reserve
// (10 %, at least 512 MiB; GPU at least 1 GiB), divided among the ranks that
// share it (the node's ranks on a CPU). It counts from after a one-image
// warm-up step (memfit_warmup): the libraries' start-up memory (oneDNN JIT
// code, thread pools, code pages; 10-20 MiB) is outside it, like the
// process's own start-up.
#ifndef DP_TRAIN_MEMFIT_H
#define DP_TRAIN_MEMFIT_H
#include <stdint.h>
#include <stdio.h>

#include "dist/dist.h"
#include "input/loader.h"
#include "nn/graph.h"
#include "nn/models/models.h"
#include "train/config.h"
#include "train/device.h"

// The model and loader settings of a run (shared by the trainer and the probe).
int train_model_cfg(const train_config *c, int num_classes, model_cfg *mc);
// train = 1: the training loader; 0: the evaluation loader (same batch).
void train_loader_cfg(const train_config *c, const dist_ctx *d, const train_device *td, char **paths, int npaths,
                      int train, loader_cfg *lc);
// quality.c (issue 12): the augmentation policy (--augment-policy, or the shards' attribute for
// auto), class-aware jitter, crop padding and the sampler into a training
// loader's settings; logs the choice when rank is 0. -1 with err set.
int train_loader_quality(const train_config *c, int rank, loader_cfg *lc, dp_err *err);


typedef struct {
  int64_t batch;
  nn_memory_plan graph;     // with the optimizer's state copies
  int64_t loader_bytes;     // training + evaluation loaders, worst case
  int64_t comm_bytes;       // gradient reduction buffers beyond the optimizer's
  int64_t device_bytes;     // GPU: library workspace bound, context, input staging (estimates)
  int64_t total_bytes;
} memfit_plan;

typedef struct {
  int64_t budget;           // per rank, bytes
  char source[192];         // where it came from, for messages
} memfit_budget;

typedef struct {
  int64_t batch, planned, measured;   // measured: peak growth over the probe (CPU RSS, GPU driver); -1 unknown
  double img_s;                       // 0 when not timed
} memfit_row;

typedef struct memfit memfit;
// Scans the data (loader_scan) and prepares planning. Returns NULL with a
// message in err (a configuration error).
memfit *memfit_open(const train_config *c, const dist_ctx *d, train_device *td, char *err, size_t n);
void memfit_close(memfit *m);
void memfit_plan_batch(memfit *m, int64_t batch, memfit_plan *p);
int memfit_budget_get(memfit *m, memfit_budget *b, char *err, size_t n);
// Largest batch whose plan total, times `scale` (1 unless a probe measured
// more), is at most `usable` bytes; 0 when batch 1 does not fit.
int64_t memfit_search(memfit *m, int64_t usable, double scale);
// `steps` training steps at `batch` on real data (the loader, graph and
// optimizer of the run), everything freed afterwards: the first step's peak
// is row->measured; the median of the others gives row->img_s.
void memfit_probe(memfit *m, int64_t batch, int steps, memfit_row *row);
// One training step at batch 1: the libraries start (JIT code, thread pools,
// code pages), so later probes and the budget see only the run's memory.
void memfit_warmup(memfit *m);
// The batch for a run under budget b: search, one confirming probe, step
// down while the probe exceeds the plan by more than the margin. Fills the
// accepted row; returns the batch (0: none fits, message in err).
int64_t memfit_choose(memfit *m, const memfit_budget *b, FILE *log, memfit_row *row, char *err, size_t n);
// Human-readable one-line breakdown of a plan.
void memfit_plan_format(const memfit_plan *p, char *buf, size_t n);

// The run's configuration as the finder may change it: a copy of c in this
// module's storage (one run per process), valid until the next call.
train_config *memfit_config_copy(const train_config *c);
// The trainer's hook, before any loader or graph allocates (collective):
// --batch auto picks c->batch (the minimum over the ranks); any batch whose
// plan exceeds the budget is refused with the planned size; with a budget
// and --memory-enforce the budget is then enforced (core/membudget.h).
// Returns 0, or 2 after printing why on rank 0 (a configuration error).
int memfit_prepare(train_config *c, dist_ctx *d, train_device *td);
// End of a run under an enforced budget: logs the peak growth against it (collective).
void memfit_report(const dist_ctx *d);
// `dptrain tune-batch`: the table of batch, planned, measured, img/s.
int memfit_tune(const train_config *c, dist_ctx *d, train_device *td);
#endif
