// `dptrain train`: data-parallel training over MPI ranks (one graph, one
// loader and one optimizer per rank; gradients averaged in buckets while
// backward runs), evaluation, and rank 0's scaling / cost / F1 aggregation.
//
// BN semantics: each rank normalises with the statistics of its own per-rank
// batch (like PyTorch DDP without SyncBatchNorm), so the effective BN batch is
// --batch, not world x batch. Running statistics drift apart per rank and are
// averaged across ranks (arithmetic mean of running_mean and running_var)
// before every evaluation and before the weights are written.
#ifndef DP_TRAIN_TRAINER_H
#define DP_TRAIN_TRAINER_H
#include "dist/dist.h"
#include "train/config.h"

// Runs a whole training job on every rank. Returns the process exit code
// (0 ok, 2 bad configuration); fatal errors abort the job.
int trainer_run(const train_config *cfg, dist_ctx *d);
#endif
