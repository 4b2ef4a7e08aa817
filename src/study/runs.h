// Measured runs for the study: results.json files (training, or eval for
// quality only) read into flat records, with the honesty checks the report
// prints next to every figure: noisy runs (efficiency > 105 %, a baseline
// whose step-time CV exceeds 20 %), baselines from another image size or
// model (refused), the machine and its load.
#ifndef DP_STUDY_RUNS_H
#define DP_STUDY_RUNS_H
#include <stdint.h>

#define SR_NOISY_EFF 1.05     // scaling efficiency above this: noisy
#define SR_NOISY_CV 0.20      // baseline step-time CV above this: noisy

typedef struct {
  char path[1024];
  char kind[8];               // train | eval
  char model[32], family[32]; // family: cnn | resnet | vit (model name prefix)
  int64_t image_size, batch, classes;
  int world, nodes, cores_per_rank;
  char hardware[64], hw_kind[16], precision[8], device[8];
  int cuda_compiled;
  double peak_flops_per_rank, price_per_rank_hour;
  double flops_fwd, params, grad_bytes;
  double img_s, mfu;          // mfu recomputed from this run's own FLOPs and peak
  double cpu_share;           // share of its cores the ranks got (machine.cpu_share_mean; NAN: not recorded)
  double mfu_core;            // CPU runs: mfu / cpu_share, the MFU of the CPU time actually received
  double eff, hidden;         // file's efficiency and hidden communication (NAN: none)
  double step_cv, step_mean_s, baseline_cv, baseline_img_s;
  char baseline_source[1024];
  int64_t timed_steps, baseline_steps;
  double bus_bps;             // measured at start-up (NAN: none)
  double data_wait_s, step_s;
  // Quality.
  int evaluated;
  double macro_f1, accuracy;
  int64_t eval_samples, epochs_done, images_seen, steps;
  // Where and when.
  char host[128], cpu_model[128], created[32];
  int cpus_online;
  double load_start, load_end;
  // Checks.
  int noisy;                  // excluded from derived figures
  int loaded;                 // load average above the CPU count (a warning, not an exclusion)
  int eff_refused;            // its baseline is another model or image size
  char flags[512];            // human-readable, "; "-separated
} sr_run;

typedef struct {
  sr_run *r;
  int n;
} sr_set;

const char *sr_family(const char *model);
// Appends the runs of each path; -1 with a message naming the file on a bad one.
int sr_load(sr_set *s, const char *const *paths, int npaths, char *err, int err_sz);
// Recomputes the checks over the whole set (baselines given as files are
// looked up in it, else read from disk).
void sr_check(sr_set *s);
void sr_free(sr_set *s);
// Same series: same model, image size, per-rank batch and hardware row.
int sr_same_series(const sr_run *a, const sr_run *b);
#endif
