// Drive single ops (or tiny graphs) without a loss: run the tape forward,
// seed the output's gradient by hand and run the tape backward.
#ifndef DP_TESTS_OP_HARNESS_H
#define DP_TESTS_OP_HARNESS_H
#include <stdint.h>

#include "nn/graph.h"

// A CPU graph for op tests; resets the harness's step state (oh_step) for it.
nn_graph *oh_graph(int64_t batch, uint64_t seed);
// The step state (labels, num_valid, accumulate_grads, step, loss) the
// harness passes to every op of the current oh_graph.
nn_step *oh_step(void);
void oh_forward(nn_graph *g);
// Resets grad_written, writes dy into y's gradient, runs every op's backward in reverse.
void oh_backward(nn_graph *g, nn_tid y, const float *dy);
// Fresh arrays (malloc'd): uniform(-1, 1) floats stored as doubles, so a
// float copy holds exactly the same values.
double *oh_rand_d(int64_t n, uint64_t seed);
void oh_to_f(float *dst, const double *src, int64_t n);
float *oh_f(const double *src, int64_t n);      // malloc'd float copy
double *oh_zeros(int64_t n);
#endif
