// Internals of `dptrain train`, shared by the files of the training run (not
// an API): setup.c (configuration checks, loaders, model, optimizer),
// step.c (one optimizer step), baseline.c (the in-job single-rank
// baseline), aggregate.c (per-step timings, steps.csv, results), resume.c
// (checkpoints, exact resume, best/last model, pretrained init), signals.c
// (preemption and fault injection) and trainer.c (the loop).
#ifndef DP_TRAIN_RUN_H
#define DP_TRAIN_RUN_H
#include <stdint.h>
#include <stdio.h>

#include "core/afile.h"
#include "dist/dist.h"
#include "input/loader.h"
#include "nn/models/models.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/cost.h"
#include "train/device.h"
#include "train/results.h"
#include "train/progress.h"
#include "train/skiplog.h"
#include "train/state.h"

// Exit code of a run stopped by SIGUSR1/SIGTERM after writing its checkpoint
// (sysexits' EX_TEMPFAIL: "try again later"); the Slurm scripts requeue on it.
#define TRAIN_EXIT_PREEMPTED 75

// Per-step values each rank sends to rank 0.
enum { V_STEP, V_DATA, V_FB, V_COMM, V_OPT, V_LOSS, V_SPAN, V_IMAGES, V_RSS, NV };
typedef struct {
  double v[NV];
} step_vals;

// Rank 0's aggregates over the timed steps. Saved in checkpoints, so the
// results of a resumed run cover all of it.
typedef struct {
  double *rank_sums;          // (world, NV)
  double sum_step_max;
  double sum_comm_exposed;    // least comm wait of any rank, summed over timed steps
  int64_t timed_steps, timed_images;
  double timed_wall_s;        // wall time of the timed steps including any stall between them
  double last_step_end;       // dp_now() at the end of the previous step (< 0: none yet)
  double eval_s;              // time in evaluations (not training throughput)
  double ckpt_stall_s;        // time the loop waited for checkpoint snapshots / the writer
  int64_t warm_steps;
  int64_t first_step;         // step the current segment started at (warm-up counts from it)
  int64_t csv_rows;
} step_agg;

typedef struct {
  double rate, f1;            // single-rank img/s and macro-F1 (NAN: none)
  char source[TC_PATH_MAX];   // "in-job", a results.json path, "" (none)
} baseline_info;

// Checkpoint schedule and the writer.
typedef struct {
  ckpt_writer *w;             // rank 0 only
  char dir[TC_PATH_MAX + 32]; // OUT/checkpoints
  int64_t last_step;          // step of the last checkpoint taken (-1: none)
  double last_time;           // dp_now() of it (or of the start)
  int64_t best_ckpt_step;     // checkpoint taken at the best evaluation (-1: none)
  double snapshot_s;          // time of the last snapshot (the stall a checkpoint causes)
  double max_snapshot_s;
  int64_t taken;
  char resumed_from[TC_PATH_MAX + 64];
  optim_snapshot opt_snap;    // reused host copy of the optimizer state (rank 0)
  ckpt_file file;             // the checkpoint being resumed (between prepare and apply)
  int saved_world;            // its world size
  int64_t csv_bytes;          // steps.csv length it recorded (-1: unknown)
  int64_t skips_bytes;        // [inputs] skipped.csv length it recorded (-1: unknown)
} ckpt_ctl;

typedef struct trainer {
  const train_config *cfg;
  dist_ctx *d;
  // Model and data (setup.c).
  model_cfg mc;
  nn_graph *g;
  train_device *td;           // CPU or CUDA: input staging, reduction, optimizer
  nn_step ns;                 // per-step inputs of the graph, with the reducer's hook
  optim_cfg oc;
  char **train_paths, **val_paths;
  int ntrain, nval;
  loader *train, *val;
  loader_cfg train_lc;
  int num_classes;
  float *class_weights;
  int64_t steps_per_epoch, total_steps;
  char config_hash[64], data_fingerprint[160];   // train/lineage.h
  struct run_tracking *trk;   // MLflow hooks (train/tracking.h; rank 0, NULL when off)
  // Hardware.
  hw_table hw;
  const hw_entry *hwe;
  char hw_name[64];
  char cfg_msg[1024];         // a configuration error, printed after all ranks agree
  // Run.
  train_state st;
  step_agg agg;
  baseline_info base;
  ckpt_ctl ck;
  run_results res;
  dp_alog csv;                // steps.csv (rank 0)
  int csv_open;
  FILE *dump;                 // --dump-ids
  progress prog;
  double t_start, loop_start;
  double loop_cpu0;          // study: process CPU seconds when this segment's loop started
  int inject_rank;
  int64_t inject_step;
  skiplog skips;              // [inputs] OUT/skipped.csv (rank 0 writes; every rank collects)
} trainer;

// setup.c
void setup_state_init(trainer *t);       // a fresh train_state (before a resume fills it)
int setup_checks(trainer *t);            // 0, or -1 with t->cfg_msg
void setup_model(trainer *t);
// Collective: rank 0's n floats to every rank (in chunks MPI counts can hold).
void setup_bcast_floats(dist_ctx *d, float *x, int64_t n);

// quality.c (issue 12)
// train_loader_quality: train/memfit.h
// Collective, after training with validation: restores the best weights
// (model.safetensors) into the graph, tunes per-class logit offsets on val for
// macro-F1, reports them and rewrites model.safetensors with them.
void quality_logit_adjust(trainer *t);
void setup_teardown(trainer *t);
const char *trainer_class_name(const trainer *t, int c);

// step.c: accum micro-steps and one optimizer update (reduce = 0: no communication).
step_vals train_step(trainer *t, loader *l, void *opt, nn_step *ns, int reduce, int dump);

// baseline.c
void run_baseline(trainer *t);

// aggregate.c
void agg_init(trainer *t);
void agg_free(trainer *t);
// Gathers the step's values at rank 0, appends the steps.csv row, updates progress.
void agg_record_step(trainer *t, const step_vals *s, int64_t epoch);
// Fills t->res from the aggregates (collective: gathers hosts and memory).
void agg_finish_results(trainer *t, int64_t decoded, int64_t skipped);
void agg_to_json(const trainer *t, void *dp_json_writer);
void agg_from_json(trainer *t, const void *jv_obj);

// resume.c
// Collective. Writes a checkpoint of the current step (rank 0 snapshots and
// queues it; the write runs on the checkpoint thread unless sync).
void ckpt_take(trainer *t, int sync);
// Collective, before the model exists: applies --resume's choice (auto: the
// newest valid checkpoint, else a fresh start), checks the config hash and
// data fingerprint, restores the position (re-dealing the epoch on another
// world size) and the step count. Returns 1 when resuming, 0 for a fresh
// start, -1 on a configuration error (printed).
int ckpt_resume_prepare(trainer *t);
// Collective, after setup_model: restores tensors, optimizer and state.
void ckpt_resume_apply(trainer *t);
// Collective: --init-weights into the model (fresh starts only).
void init_weights_apply(trainer *t);
// Rank 0: writes a weights file (model.safetensors or model-last.safetensors)
// of the current (BN-averaged) state through the writer thread.
void model_file_write(trainer *t, const char *name);
// The same with the weights' recorded step count (the best model's step).
void model_file_write_at(trainer *t, const char *name, int64_t steps);
// Collective: is it time for a periodic checkpoint at this step boundary?
int ckpt_due(trainer *t);

// signals.c
void signals_install(void);
int signals_pending(void);               // the signal that asked to stop (0: none)
volatile const int *signals_flag(void);  // the same, for the watchdog (dist_watchdog_set_stop)
// Fault injection for tests (DPTRAIN_INJECT_FAULT=R:S, DPTRAIN_INJECT_KILL=R:S[:ckpt]).
void fault_parse(trainer *t);
void fault_maybe(trainer *t, int during_checkpoint);
#endif
