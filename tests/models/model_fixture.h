// Shared by the model tests: build a model + loss graph, load torch weights
// by name from a models_*.h5 fixture, set the NCHW input as NHWC.
#ifndef DP_TEST_MODEL_FIXTURE_H
#define DP_TEST_MODEL_FIXTURE_H
#include <stdint.h>

#include "nn/graph.h"
#include "nn/models/models.h"

// Builds cfg's model with a softmax-xent loss for `batch` (not finalized).
nn_graph *mf_build(const model_cfg *cfg, int64_t batch);
// Copies every parameter and BN buffer from `/params/<name>` of file into g
// (finalized). Counts missing names, shape mismatches and fixture entries with
// no C counterpart as test failures.
void mf_load_state(nn_graph *g, const char *file);
// (N, C, H, W) -> g's input (N, H, W, C).
void mf_set_input_nchw(nn_graph *g, const float *x);
// Peak and current resident set (bytes) from /proc/self/status.
int64_t mf_vm_hwm(void);
int64_t mf_vm_rss(void);
#endif
