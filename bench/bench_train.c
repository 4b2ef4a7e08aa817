// Training-step throughput of one model on the CPU: forward + backward + SGD
// step (momentum 0.9, wd 1e-4) on a fixed random batch, timed per step after
// warmup; prints the median step time and img/s (one "RESULT" line for
// bench_train.sh). Compare with bench/torch_train.py (PyTorch, same setup).
//
// usage: bench_train --model NAME [--batch 32] [--image-size 224]
//          [--classes 1000] [--threads 2] [--warmup 2] [--steps 5] [--small-stem]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/opts.h"
#include "core/rng.h"
#include "core/sysinfo.h"
#include "core/timer.h"
#include "nn/graph.h"
#include "nn/models/models.h"
#include "nn/ops.h"
#include "nn/optim.h"


static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  char model[32];
  int64_t batch, size, classes;
  int threads, warmup, steps, small_stem;
} args_t;
static const dp_opt arg_list[] = {
    DP_OPT_S(args_t, "model", model, DP_OPT_REQUIRED, "model name"),
    DP_OPT_I(args_t, "batch", DP_OPT_I64, batch, 1, 1 << 16, 0, "batch"),
    DP_OPT_I(args_t, "image-size", DP_OPT_I64, size, 8, 8192, 0, "image size"),
    DP_OPT_I(args_t, "classes", DP_OPT_I64, classes, 1, 100000, 0, "classes"),
    DP_OPT_I(args_t, "threads", DP_OPT_INT, threads, 1, 4096, DP_OPT_CORES, "OpenMP threads"),
    DP_OPT_I(args_t, "warmup", DP_OPT_INT, warmup, 0, 100000, 0, "untimed steps"),
    DP_OPT_I(args_t, "steps", DP_OPT_INT, steps, 1, 100000, 0, "timed steps"),
    DP_OPT_I(args_t, "small-stem", DP_OPT_INT, small_stem, 0, 1, DP_OPT_BARE, "ResNet small stem"),
};
static const dp_opts arg_table = {"bench_train", arg_list, 8, NULL, 0};

int main(int argc, char **argv) {
  args_t a = {"", 32, 224, 1000, 2, 2, 5, 0};
  int prc = dp_opts_parse(&arg_table, &a, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  const char *model = a.model;
  int64_t batch = a.batch, size = a.size, classes = a.classes;
  int threads = a.threads, warmup = a.warmup, steps = a.steps, small_stem = a.small_stem;
  if (!model_known(model)) {
    fprintf(stderr, "usage: bench_train --model {%s} [--batch B] [--image-size S] [--classes C]\n"
                    "         [--threads T] [--warmup W] [--steps N] [--small-stem]\n", model_names());
    return 2;
  }
  omp_set_num_threads(threads);
  int64_t rss0 = dp_proc_status_bytes("VmRSS");

  model_cfg cfg;
  model_cfg_default(&cfg, model, size, 3, classes);
  cfg.small_stem = small_stem;
  nn_graph *g = nn_graph_create(cpu_backend(), batch, 1);
  model_build(g, &cfg);
  nn_xent_cfg xc = {.label_smoothing = 0, .class_weights = NULL, .num_classes = classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  double t_build = dp_now();
  nn_graph_finalize(g);
  t_build = dp_now() - t_build;

  nn_tensor *in = nn_t(g, g->input);   // (N, H, W, C)
  dp_rng r = dp_rng_stream(7, 0);
  for (int64_t i = 0; i < in->numel; i++) in->data[i] = (float)dp_rng_normal(&r);
  int32_t *labels = malloc((size_t)batch * sizeof *labels);
  for (int64_t i = 0; i < batch; i++) labels[i] = (int32_t)dp_rng_below(&r, (uint64_t)classes);
  nn_step st;
  nn_step_init(&st, g);
  st.labels = labels;
  optim_cfg oc;
  optim_cfg_defaults(&oc, OPTIM_SGD);
  oc.lr = 0.01f;
  optimizer *o = optim_create(&oc, g, 0);

  double *t = malloc((size_t)steps * sizeof *t);
  for (int s = 0; s < warmup + steps; s++) {
    double t0 = dp_now();
    nn_forward(g, &st);
    nn_backward(g, &st);
    optim_step(o, g);
    if (s >= warmup) t[s - warmup] = dp_now() - t0;
  }
  qsort(t, (size_t)steps, sizeof *t, cmp_double);
  double med = steps % 2 ? t[steps / 2] : 0.5 * (t[steps / 2 - 1] + t[steps / 2]);
  double gflop = 3.0 * (double)nn_flops_per_image(g) * (double)batch / 1e9;   // fwd + 2x bwd
  printf("dptrain %s %lldpx b%lld, %d threads: setup %.1f s, step median %.3f s (min %.3f, max %.3f), "
         "loss %.3f, %.1f GFLOP/s\n",
         model, (long long)size, (long long)batch, threads, t_build, med, t[0], t[steps - 1],
         (double)st.loss, gflop / med);
  nn_memory_plan mp = nn_graph_memory_plan(g, optim_state_copies(OPTIM_SGD));
  int64_t grown = dp_proc_status_bytes("VmHWM") - rss0;
  printf("memory: planned %.1f MiB (params+grads+momentum %.1f, activations+grads %.1f, extras %.1f, "
         "workspace %.1f), measured peak RSS growth %.1f MiB (%+.1f %%)\n",
         mp.total_bytes / 1048576.0, (mp.params_bytes + mp.grads_bytes + mp.optimizer_bytes) / 1048576.0,
         (mp.activations_bytes + mp.activation_grads_bytes) / 1048576.0, mp.extras_bytes / 1048576.0,
         mp.workspace_bytes / 1048576.0, grown / 1048576.0,
         100.0 * (double)(grown - mp.total_bytes) / (double)mp.total_bytes);
  printf("RESULT dptrain %s %.2f img/s\n", model, (double)batch / med);
  printf("MEMORY dptrain %s %.0f %.0f\n", model, mp.total_bytes / 1048576.0, grown / 1048576.0);
  optim_destroy(o);
  nn_graph_destroy(g);
  free(labels);
  free(t);
  return 0;
}
