// Planned vs measured training memory: build a model, run training steps
// (forward, backward, optimizer), and compare the peak resident-set growth of
// the process (VmHWM after - VmRSS before building) with the plan
// (nn_graph_memory_plan with the optimizer's state copies). They must agree
// within 10 % (the lifetime plan and its calibrated runtime term measure within
// 0.3 % on the development machine; CPUs whose oneDNN JIT code differs need
// the headroom).
// The difference is printed: it is what the plan does not see
// (oneDNN JIT code and primitive objects, OpenMP thread stacks, malloc slack).
//
// usage: test_model_memory MODEL IMAGE_SIZE BATCH sgd|adamw
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"
#include "nn/optim.h"
#include "testutil.h"

// The step state (labels, num_valid, loss) of the graph under test.
static nn_step g_st;

static double mib(int64_t b) { return (double)b / 1048576.0; }

int main(int argc, char **argv) {
  if (getenv("DPTRAIN_SANITIZED")) {
    printf("skip: RSS vs plan is not measurable under ASan (shadow memory, quarantine); "
           "this test runs in the default suite\n");
    return 77;
  }
  if (argc != 5) {
    fprintf(stderr, "usage: %s MODEL IMAGE_SIZE BATCH sgd|adamw\n", argv[0]);
    return 2;
  }
  optim_kind kind = strcmp(argv[4], "adamw") ? OPTIM_SGD : OPTIM_ADAMW;
  int64_t size = atoll(argv[2]), batch = atoll(argv[3]);
  int64_t rss0 = mf_vm_rss(), hwm0 = mf_vm_hwm();
  TU_CHECK(rss0 > 0 && hwm0 > 0, "reading /proc/self/status");

  model_cfg cfg;
  TU_CHECK(model_cfg_default(&cfg, argv[1], size, 3, 10), "unknown model %s", argv[1]);
  nn_graph *g = mf_build(&cfg, batch);
  nn_graph_finalize(g);
  nn_tensor *in = nn_t(g, g->input);
  tu_fill_uniform(in->data, in->numel, 1);
  int32_t *labels = malloc((size_t)batch * sizeof *labels);
  for (int64_t i = 0; i < batch; i++) labels[i] = (int32_t)(i % 10);
  nn_step_init(&g_st, g);
  g_st.labels = labels;
  optim_cfg oc;
  optim_cfg_defaults(&oc, kind);
  oc.lr = 1e-3f;
  optimizer *o = optim_create(&oc, g, 0);
  for (int s = 0; s < 2; s++) {   // the second step shows no growth after the first
    nn_forward(g, &g_st);
    nn_backward(g, &g_st);
    optim_step(o, g);
  }
  int64_t hwm1 = mf_vm_hwm(), rss1 = mf_vm_rss();
  nn_memory_plan m = nn_graph_memory_plan(g, optim_state_copies(kind));
  int64_t measured = hwm1 - rss0;
  double rel = (double)(measured - m.total_bytes) / (double)m.total_bytes;
  printf("%s %lld px batch %lld %s, loss %.4f\n", argv[1], (long long)size, (long long)batch,
         argv[4], (double)g_st.loss);
  printf("plan (MiB): params %.1f grads %.1f optimizer %.1f buffers %.1f arena %.1f (at its peak: activations "
         "%.1f act-grads %.1f extras %.1f) workspace %.1f runtime %.1f = total %.1f\n",
         mib(m.params_bytes), mib(m.grads_bytes), mib(m.optimizer_bytes), mib(m.buffers_bytes), mib(m.arena_bytes),
         mib(m.activations_bytes), mib(m.activation_grads_bytes), mib(m.extras_bytes),
         mib(m.workspace_bytes), mib(m.runtime_bytes), mib(m.total_bytes));
  printf("measured (MiB): RSS before %.1f, peak after %.1f (RSS now %.1f): growth %.1f\n",
         mib(rss0), mib(hwm1), mib(rss1), mib(measured));
  printf("%-4s measured - plan = %.1f MiB (%+.1f %% of the plan; tolerance 10 %%)\n",
         fabs(rel) <= 0.10 ? "ok" : "FAIL", mib(measured - m.total_bytes), 100 * rel);
  TU_CHECK(fabs(rel) <= 0.10, "planned and measured training memory differ by %.1f %%", 100 * rel);
  optim_destroy(o);
  nn_graph_destroy(g);
  free(labels);
  return tu_finish("test_model_memory");
}
