// The trainer's tracking hooks: what a run tells MLflow (docs/tracking.md),
// through track/tracker.h, so never on the critical path. Rank 0 only; the
// trainer calls these at five marked places (`// track:` in trainer.c), and
// every function accepts NULL (other ranks, or no tracking URI).
//
//   params   every setting of the effective config (as config.ini)
//   metrics  per log interval: train_loss (mean over the interval), img_per_s
//            (mean), lr, epoch; per evaluation: val_macro_f1, val_accuracy,
//            val_loss, val_f1/<class>; at the end: images_per_s,
//            scaling_efficiency, comm_hidden_fraction, mfu, cost_usd,
//            projected_cost_usd, peak_rss_bytes, train_wall_s, total_wall_s
//   tags     git commit, dptrain version, data fingerprint, config hash,
//            hardware, device, precision, world size, nodes, Slurm job id
//   files    results.json, steps.csv, config.ini, lineage.json, the model
//            (and model-last.safetensors, model.onnx, report.md,
//            eval_results.json when present at the end)
#ifndef DP_TRAIN_TRACKING_H
#define DP_TRAIN_TRACKING_H
#include <stdint.h>

#include "train/config.h"
#include "train/metrics.h"
#include "train/results.h"

typedef struct {
  char **train_paths;
  int ntrain;
  char **val_paths;
  int nval;
  const char *hardware;        // hardware table row
  const char *device;          // e.g. "cpu"
  const char *precision;
  int world, nodes;
  int num_classes;
  const char *const *class_names;   // (num_classes), copied
  int64_t total_steps;
  // 1 when this start resumes a checkpoint: the MLflow run of OUT's spool
  // (or the run id the checkpoint carried, see run_tracking_spool_dir)
  // continues. 0: a new run (an earlier spool in OUT is moved aside).
  int resuming;
  const char *parent_checkpoint;   // the checkpoint this start resumed ("" or NULL: none)
} run_tracking_info;

typedef struct run_tracking run_tracking;

// Rank 0: writes OUT/lineage.json (fatal when it cannot, like config.ini),
// then, with a tracking URI (--mlflow-uri, else $MLFLOW_TRACKING_URI), opens
// OUT/mlflow-spool and records params and tags. NULL on other ranks, without
// a URI, or when the spool cannot be written (a warning; training goes on).
run_tracking *run_tracking_open(const train_config *c, int rank, const run_tracking_info *info);
// Every optimizer step (rank 0's aggregated values); logs once per interval.
void run_tracking_step(run_tracking *t, int64_t step, int64_t epoch, double loss, double img_s, double lr);
void run_tracking_eval(run_tracking *t, int64_t step, const class_metrics *m);
// After results.json is written: the headline figures.
void run_tracking_results(run_tracking *t, const run_results *r);
// After the output files are closed: records the files and the final status
// (FINISHED, FAILED or KILLED; NULL for a preempted run that will be resumed:
// the MLflow run stays RUNNING), then lets the shipper finish while the
// server answers (track/tracker.h trk_close: idle limit the smaller of
// --mlflow-timeout and 10 s, 60 s in all). Frees t.
void run_tracking_close(run_tracking *t, const char *status);
// The spool directory, OUT/mlflow-spool. The checkpoint layer carries the
// run's identity (track/spool.h trk_ident: spool id, server, run id) with
// trk_ident_load(dir) when it saves a checkpoint, and, when it resumes one into
// an OUT without a spool, writes it back with trk_ident_save(dir) before
// run_tracking_open(..., resuming = 1): the resumed training then logs to the
// same MLflow run.
void run_tracking_spool_dir(const train_config *c, char *out, size_t n);
#endif
