// Distributed evaluation: every rank runs the graph in eval mode over its
// share of the val shards (sampler without shuffle, drop_last = 0; the
// wrap-around samples that even out the ranks are excluded), then the
// int64 confusion matrix and the loss sum are all-reduced, so every rank ends
// with the same metrics. Used by training (each eval) and `dptrain eval`.
#ifndef DP_TRAIN_EVAL_H
#define DP_TRAIN_EVAL_H
#include "dist/dist.h"
#include "input/loader.h"
#include "nn/graph.h"
#include "train/metrics.h"

typedef struct train_device train_device;

// Rows of an eval batch that are real samples: the loader's positional
// batches put sampler position k = index * B + j in row j, and positions
// with rank + k * world >= total are the sampler's wrap-around padding.
int64_t eval_batch_valid(const loader_batch *b, int64_t batch, int64_t total, int rank, int world);
// Returns wall seconds spent. Restores g's training flag afterwards.
// td stages batches and reads logits back on g's device (train/device.h);
// l must produce what td->feed takes (uint8 pixels for a GPU device).
double eval_run_device(nn_graph *g, train_device *td, loader *l, dist_ctx *d, int num_classes, class_metrics *out);
// Same on a CPU graph (used by `dptrain eval`).
double eval_run(nn_graph *g, loader *l, dist_ctx *d, int num_classes, class_metrics *out);
#endif
