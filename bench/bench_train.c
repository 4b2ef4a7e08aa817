// Training-step throughput of one model on the CPU: forward + backward + SGD
// step (momentum 0.9, wd 1e-4) on a fixed random batch, timed per step after
// warmup; prints the median step time and img/s (one "RESULT" line for
// bench_train.sh). Compare with bench/torch_train.py (PyTorch, same setup).
//
// usage: bench_train --model NAME [--batch 32] [--image-size 224]
//          [--classes 1000] [--threads 2] [--warmup 2] [--steps 5] [--small-stem]
//          [--device cpu|cuda] [--precision fp32|tf32|bf16|fp16] [--optimizer sgd|adamw]
//
// --device cuda (CUDA builds): the same graph on the GPU with the fused GPU
// optimizer (the trainer's), synthetic input uploaded once; throughput is
// timed over all STEPS steps between two device synchronisations (as
// bench/gpu/torch_bench.py times PyTorch). It prints a "RESULT_JSON" line:
// img/s, forward GFLOP/image, planned memory (nn_graph_memory_plan plus the
// optimizer state) and measured memory (device memory in use after the steps
// minus before the context; and the backend's own allocation tally).
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
#ifdef DP_HAVE_CUDA
#include "backend/cuda/cuda.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_optim.h"
#include "nn/backend.h"
#endif


static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#ifdef DP_HAVE_CUDA
static int parse_precision(const char *p, cuda_precision *out) {
  static const char *const names[] = {"fp32", "tf32", "bf16", "fp16"};
  static const cuda_precision vals[] = {CUDA_PREC_FP32, CUDA_PREC_TF32, CUDA_PREC_BF16, CUDA_PREC_FP16};
  for (int i = 0; i < 4; i++)
    if (!strcmp(p, names[i])) {
      *out = vals[i];
      return 0;
    }
  return -1;
}

static int bench_cuda(const model_cfg *cfg, int64_t batch, int64_t classes, const char *precision,
                      optim_kind okind, int warmup, int steps) {
  cuda_precision prec;
  if (parse_precision(precision, &prec)) {
    fprintf(stderr, "bench_train: --precision fp32|tf32|bf16|fp16\n");
    return 2;
  }
  cuda_require_device();
  CUDA_CHECK(cudaSetDevice(0), "selecting GPU 0");
  CUDA_CHECK(cudaFree(0), "creating the CUDA context");
  int64_t used0 = cuda_mem_used();   // the CUDA context itself is not ours
  cuda_backend_configure(0, prec, 0, 0);
  nn_graph *g = nn_graph_create(cuda_backend(), batch, 1);
  model_build(g, cfg);
  nn_xent_cfg xc = {.label_smoothing = 0, .class_weights = NULL, .num_classes = classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  double t_build = dp_now();
  nn_graph_finalize(g);
  t_build = dp_now() - t_build;
  cuda_ctx *cx = cuda_ctx_of(g->backend_ctx);

  nn_tensor *in = nn_t(g, g->input);   // (N, H, W, C)
  float *xh = malloc((size_t)in->numel * sizeof *xh);
  int32_t *lh = malloc((size_t)batch * sizeof *lh);
  dp_rng r = dp_rng_stream(7, 0);
  for (int64_t i = 0; i < in->numel; i++) xh[i] = (float)dp_rng_normal(&r);
  for (int64_t i = 0; i < batch; i++) lh[i] = (int32_t)dp_rng_below(&r, (uint64_t)classes);
  nn_backend_upload(g, in->data, xh, (size_t)in->numel * sizeof *xh);
  int32_t *ld = cuda_malloc_tracked(cx, batch * (int64_t)sizeof *ld, "labels");
  nn_backend_upload(g, ld, lh, (size_t)batch * sizeof *lh);
  nn_step st;
  nn_step_init(&st, g);
  st.labels = ld;

  optim_cfg oc;
  optim_cfg_defaults(&oc, okind);
  oc.lr = okind == OPTIM_SGD ? 0.01f : 1e-4f;
  // Plan before the optimizer exists (its state is the optimizer_bytes term).
  nn_memory_plan mp = nn_graph_memory_plan(g, optim_state_copies(okind));
  cuda_optimizer o;
  cuda_optim_init(&o, cx, &oc, g, prec == CUDA_PREC_FP16, NULL);
  for (int s = 0; s < warmup; s++) {
    nn_forward(g, &st);
    nn_backward(g, &st);
    cuda_optim_step(&o, g, NULL, NULL);
  }
  CUDA_CHECK(cudaDeviceSynchronize(), "warmup");
  double t0 = dp_now();
  for (int s = 0; s < steps; s++) {
    nn_forward(g, &st);
    nn_backward(g, &st);
    cuda_optim_step(&o, g, NULL, NULL);
  }
  CUDA_CHECK(cudaDeviceSynchronize(), "timed steps");
  double dt = dp_now() - t0;
  int64_t used = cuda_mem_used() - used0;
  float loss = st.loss;
  double ips = (double)batch * steps / dt;
  double fwd_gflop = (double)nn_flops_per_image(g) / 1e9;
  printf("dptrain %s %s b%lld on cuda: setup %.1f s, %.2f ms/step, %.1f img/s, loss %.4f, %.1f TFLOP/s\n",
         cfg->name, cuda_precision_name(cx->precision), (long long)batch, t_build, 1e3 * dt / steps, ips,
         (double)loss, 3.0 * fwd_gflop * ips / 1e3);
  printf("memory: planned %.1f MiB (graph %.1f, optimizer %.1f, backend %.1f), measured %.1f MiB device use "
         "(%+.1f %%), backend tally peak %.1f MiB\n",
         mp.total_bytes / 1048576.0, (mp.total_bytes - mp.optimizer_bytes - mp.backend_bytes) / 1048576.0,
         mp.optimizer_bytes / 1048576.0, mp.backend_bytes / 1048576.0, used / 1048576.0,
         100.0 * (double)(used - mp.total_bytes) / (double)mp.total_bytes, cx->peak_bytes / 1048576.0);
  printf("RESULT_JSON {\"peer\": \"dptrain\", \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %lld, "
         "\"steps\": %d, \"img_per_s\": %.2f, \"step_ms\": %.3f, \"fwd_gflop_per_img\": %.4f, "
         "\"planned_bytes\": %lld, \"measured_bytes\": %lld, \"tracked_peak_bytes\": %lld, \"loss\": %.6f}\n",
         cfg->name, cuda_precision_name(cx->precision), (long long)batch, steps, ips, 1e3 * dt / steps, fwd_gflop,
         (long long)mp.total_bytes, (long long)used, (long long)cx->peak_bytes, (double)loss);
  cuda_optim_free(&o);
  cuda_free_tracked(cx, ld, batch * (int64_t)sizeof *ld);
  nn_graph_destroy(g);
  free(xh);
  free(lh);
  return 0;
}
#endif

typedef struct {
  char model[32];
  int64_t batch, size, classes;
  int threads, warmup, steps, small_stem;
  char device[8], precision[8], optimizer[8];
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
    DP_OPT_S(args_t, "device", device, 0, "cpu | cuda"),
    DP_OPT_S(args_t, "precision", precision, 0, "cuda: fp32 | tf32 | bf16 | fp16"),
    DP_OPT_S(args_t, "optimizer", optimizer, 0, "sgd | adamw (cuda)"),
};
static const dp_opts arg_table = {"bench_train", arg_list, 11, NULL, 0};

int main(int argc, char **argv) {
  args_t a = {"", 32, 224, 1000, 2, 2, 5, 0, "cpu", "bf16", "sgd"};
  int prc = dp_opts_parse(&arg_table, &a, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  const char *model = a.model;
  int64_t batch = a.batch, size = a.size, classes = a.classes;
  int threads = a.threads, warmup = a.warmup, steps = a.steps, small_stem = a.small_stem;
  if (!model_known(model)) {
    fprintf(stderr, "usage: bench_train --model {%s} [--batch B] [--image-size S] [--classes C]\n"
                    "         [--threads T] [--warmup W] [--steps N] [--small-stem]\n"
                    "         [--device cpu|cuda] [--precision fp32|tf32|bf16|fp16] [--optimizer sgd|adamw]\n",
            model_names());
    return 2;
  }
  if (strcmp(a.optimizer, "sgd") && strcmp(a.optimizer, "adamw")) {
    fprintf(stderr, "bench_train: --optimizer sgd|adamw\n");
    return 2;
  }
  if (!strcmp(a.device, "cuda")) {
#ifdef DP_HAVE_CUDA
    model_cfg gcfg;
    model_cfg_default(&gcfg, model, size, 3, classes);
    gcfg.small_stem = small_stem;
    return bench_cuda(&gcfg, batch, classes, a.precision, strcmp(a.optimizer, "sgd") ? OPTIM_ADAMW : OPTIM_SGD, warmup,
                      steps);
#else
    fprintf(stderr, "bench_train: --device cuda (--precision %s) needs a CUDA build\n", a.precision);
    return 2;
#endif
  } else if (strcmp(a.device, "cpu")) {
    fprintf(stderr, "bench_train: --device cpu|cuda\n");
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
