// The state layer: checkpoint files, their validation, and the writer thread
// that every file of a run's state goes through (checkpoints, the best and
// the last model).
//
// A checkpoint is a safetensors file OUT/checkpoints/ckpt-<step>.safetensors
// (docs/checkpoints.md):
//   * the model's tensors with torchvision names (rank 0's parameters and BN
//     buffers; "<bn>.num_batches_tracked"), so torch and `dptrain eval` read
//     it like a weights file;
//   * "dptrain.rank<r>.<buffer>" for the BN buffers of every other rank (they
//     drift apart between evaluations: exact resume needs each);
//   * "optimizer.momentum_buffer.<param>" (SGD) or "optimizer.exp_avg.<param>"
//     and "optimizer.exp_avg_sq.<param>" (AdamW), and the I64 tensor
//     "dptrain.optimizer.param_step" (nparams);
//   * metadata: the weights metadata (model config, classes, normalisation),
//     "dptrain.checkpoint" = the run state as JSON (train/resume.c), and the
//     completeness proof "dptrain.data_bytes" + "dptrain.crc32" (CRC-32 over
//     every tensor's bytes in name order).
// A file is valid only when the safetensors rules hold (core/safetensors.h),
// the data section has exactly data_bytes and the CRC matches.
#ifndef DP_TRAIN_CHECKPOINT_H
#define DP_TRAIN_CHECKPOINT_H
#include <stdint.h>

#include "core/jsonread.h"
#include "core/safetensors.h"
#include "core/stpack.h"
#include "nn/graph.h"
#include "nn/optim.h"
#include "train/weights.h"

#define CKPT_FORMAT_VERSION 1

typedef struct {
  const nn_graph *g;              // names and shapes
  const float *params, *bufs;     // rank 0's host copies (flat layout)
  const float *rank_bufs;         // (world, nbuf_elems) every rank's BN buffers, or NULL
  int world;
  const weights_meta *wm;
  const optim_snapshot *opt;      // NULL: no optimizer state
  const char *state_json;         // the run state (train/resume.c)
} ckpt_content;

// Builds the whole file in pk, copying every byte (the pack outlives the
// step that made it); the writer thread adds data_bytes and the CRC.
int ckpt_pack(st_pack *pk, const ckpt_content *c, char *err, int err_sz);
// "<dir>/ckpt-<step, 12 digits>.safetensors".
void ckpt_path(const char *dir, int64_t step, char *out, size_t n);

// ---- writer thread ---------------------------------------------------------------
typedef struct {
  int64_t writes, failures;
  int64_t last_bytes;
  double last_seconds, total_seconds, max_seconds;
  char last_path[1100];
  char last_error[600];      // "" when the last write succeeded
} ckpt_stats;

typedef struct ckpt_writer ckpt_writer;
// dir: the checkpoint directory (created now when create, else before the
// first checkpoint; stray temp files of dead writers removed); keep: how
// many newest checkpoints survive pruning.
ckpt_writer *ckpt_writer_create(const char *dir, int create, int keep, dp_err *err);
// Queues a checkpoint of `step` (takes pk's contents; pk is left empty).
// After it is written the directory is pruned to the newest `keep`
// checkpoints plus protect_step's (the best; -1: none). Blocks only while two
// writes are already queued; returns the seconds it blocked.
double ckpt_writer_submit(ckpt_writer *w, st_pack *pk, int64_t step, int64_t protect_step);
// Queues a plain file (e.g. model.safetensors) at path.
double ckpt_writer_submit_file(ckpt_writer *w, st_pack *pk, const char *path);
// Waits until every queued write is done; returns the seconds waited.
double ckpt_writer_flush(ckpt_writer *w);
ckpt_stats ckpt_writer_get_stats(ckpt_writer *w);
// Test hook: when the checkpoint of `step` is being written, the thread
// writes part of it to the temp file and kills the process (SIGKILL), as a
// node failure in mid-write would.
void ckpt_writer_kill_at(ckpt_writer *w, int64_t step);
// Flushes and stops the thread.
void ckpt_writer_destroy(ckpt_writer *w);

// ---- reading --------------------------------------------------------------------
typedef struct {
  st_file *f;
  jv *state;                 // the "dptrain.checkpoint" JSON
  char path[1100];
  int64_t step;
} ckpt_file;

// Opens and validates a checkpoint. Returns 0, or -1 with err naming the
// file and the reason (truncated, checksum, not a checkpoint, ...).
int ckpt_open(const char *path, ckpt_file *cf, dp_err *err);
void ckpt_close(ckpt_file *cf);
// The newest valid checkpoint in dir. Returns 0 (cf open), 1 when dir has no
// checkpoint, -1 when none of them is valid. Every checkpoint skipped as
// invalid is described in notes ("... is corrupt (reason); using ...").
int ckpt_find_latest(const char *dir, ckpt_file *cf, char *notes, size_t notes_n);
// Copies an F32 tensor of numel elements (shape checked by count). -1 + err if absent or different.
int ckpt_read_f32(const ckpt_file *cf, const char *name, float *dst, int64_t numel, dp_err *err);
// The model's parameters and rank `rank`'s BN buffers into the host copies
// (rank 0's buffers when the checkpoint has none for that rank).
int ckpt_read_model(const ckpt_file *cf, const nn_graph *g, int rank, float *params, float *bufs, dp_err *err);
// Optimizer state into s (allocated with optim_snapshot_alloc for the run's kind).
int ckpt_read_optim(const ckpt_file *cf, const nn_graph *g, optim_snapshot *s, dp_err *err);
#endif
