// Batch scoring of a weights file (`dptrain score`): predictions per record,
// in input order, from shards (labelled or not) or from image files read
// directly (input/shard_files.h), on the CPU or a GPU, on one or many ranks.
//
// Two steps like train/eval_file.h: score_open checks everything on this
// rank without a collective call (metadata, the transform it asks for, the
// data, the classes, the model against the tensors); score_run is collective.
//
// What one record gives (score_run): the top-k classes of softmax(logits)
// with their probabilities, the logit-adjusted class argmax(logits + bias)
// when the weights carry "dptrain.logit_bias", and its label when known. A
// record that cannot be read or decoded gives a row with the reason instead
// and is left out of the throughput and of the metrics. Each rank scores its
// share (the eval sampler: no shuffle, rank r takes records r, r + W, ...;
// the wrap-around padding is dropped), so the records are scored exactly
// once; rank 0 gathers the rows and orders them by record.
//
// Metrics (labelled records only) use train/metrics.h exactly as evaluation
// does: argmax (first max wins) into the int64 confusion matrix, all-reduced;
// the loss is plain cross-entropy of the logits.
#ifndef DP_TRAIN_SCORE_H
#define DP_TRAIN_SCORE_H
#include <stdint.h>

#include "dist/dist.h"
#include "input/loader.h"
#include "input/shard_files.h"
#include "nn/graph.h"
#include "train/device.h"
#include "train/metrics.h"
#include "train/weights.h"

#define SCORE_MAX_TOP_K 64

typedef struct {
  const char *weights;
  const char *data;                   // shard glob (NULL with files)
  const shard_files_cfg *files;       // image files (NULL with data); class fields are set by score_open
  int64_t batch;                      // per rank
  int loader_threads;
  int weights_flags;                  // WEIGHTS_ALLOW_NONFINITE or 0
} score_spec;

typedef struct {
  weights_meta meta;
  int have_meta;
  float *logit_bias;                  // (classes) "dptrain.logit_bias", or NULL
  char transform[160];                // the eval transform, in words (printed, results)
  char **paths;                       // shard paths (shards mode)
  int npaths;
  shard_files_cfg files;              // copy of the spec's, with the weights' classes
  const char *files_name[1];          // the loader's shard list in file mode
  int file_mode;
  loader *l;
  nn_graph *g;
  int64_t batch;                      // after clamping to this rank's records
  int64_t records, labelled;          // records in the input; of them labelled (>= 0)
  int64_t params, flops_per_image_fwd;
} score_ctx;

// td: the device (train/device.h) the graph is built for. Returns 0, or -1
// with err set ("setting 'weights': ..." / "setting 'data': ..."); sc is then
// safe to close.
int score_open(score_ctx *sc, const score_spec *sp, train_device *td, const dist_ctx *d, char *err, int err_sz);
void score_close(score_ctx *sc);

typedef struct {
  int top_k;                          // clamped to the class count
} score_opts;

// One record that gave no prediction.
typedef struct {
  int64_t index;                      // record in input order
  char where[1100];                   // "shard record R (id I)" or the file
  char reason[400];
} score_error;

typedef struct {
  int64_t records, scored, errors, labelled;   // all ranks
  double wall_s;                      // slowest rank's scoring loop (first batch included)
  double steady_wall_s;               // slowest rank's loop after its first batch
  int64_t steady_images;              // images scored after each rank's first batch
  double images_per_s;                // scored / wall_s
  double steady_images_per_s;         // steady_images / steady_wall_s (NAN when a rank had one batch)
  double *rank_images_per_s;          // (world)
  int evaluated;                      // labelled records were scored: q is filled
  class_metrics q;                    // argmax(logits)
  int adjusted;                       // q_adj is filled (logit bias and labels)
  class_metrics q_adj;                // argmax(logits + bias)
  // Rank 0 only.
  char *rows;                         // every row (no header), in input order
  size_t rows_len;
  score_error *err_list;              // (errors) in input order
} score_out;

// Collective. Fills out on every rank (rows and err_list on rank 0).
void score_run(score_ctx *sc, train_device *td, dist_ctx *d, const score_opts *o, score_out *out);
// Rank 0: writes header + rows atomically (core/afile.h). 0, or -1 with err.
int score_write_csv(const score_ctx *sc, const score_opts *o, const score_out *out, const char *path, dp_err *err);
void score_out_free(score_out *out);
#endif
