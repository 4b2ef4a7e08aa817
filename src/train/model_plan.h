// A model's cost figures without training it: forward FLOPs per image,
// trainable parameters and the planned training memory at a batch size. The
// graph (model + loss) is built on the CPU backend but not finalized, so
// nothing model-sized is allocated (as `dptrain info`). The study's memory
// and compute terms use it; it lives in train/ because it needs a backend.
#ifndef DP_TRAIN_MODEL_PLAN_H
#define DP_TRAIN_MODEL_PLAN_H
#include <stdint.h>

typedef struct {
  double flops_fwd;     // per image
  double params;        // trainable elements
  double plan_bytes;    // nn_graph_memory_plan total (fp32) incl. optimizer state
} model_plan_info;

// Returns 0, or -1 for an unknown model or a bad size/batch.
int model_plan_describe(const char *model, int64_t image_size, int64_t classes, const char *optimizer,
                        int64_t batch, model_plan_info *out);
#endif
