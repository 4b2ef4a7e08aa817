#include "backend/cuda/cuda_optim.h"

#include <stdlib.h>
#include <string.h>

#include "backend/cuda/kernels.h"

void cuda_optim_init(cuda_optimizer *o, cuda_ctx *cx, const optim_cfg *cfg, nn_graph *g, int fp16_scaling,
                     loss_scaler *scaler) {
  memset(o, 0, sizeof *o);
  o->cx = cx;
  o->cfg = *cfg;
  o->n = g->nparam_elems;
  int64_t bytes = (o->n > 0 ? o->n : 1) * 4;
  // Zeroed on the compute stream (the backend's streams do not order after
  // the legacy default stream a plain cudaMemset would use).
  o->state1 = cuda_malloc_tracked(cx, bytes, "optimizer state");
  CUDA_CHECK(cudaMemsetAsync(o->state1, 0, (size_t)bytes, cx->compute), "zeroing optimizer state");
  if (cfg->kind == OPTIM_ADAMW) {
    o->state2 = cuda_malloc_tracked(cx, bytes, "optimizer state");
    CUDA_CHECK(cudaMemsetAsync(o->state2, 0, (size_t)bytes, cx->compute), "zeroing optimizer state");
  }
  o->nparams = g->nparams;
  int32_t np = g->nparams > 0 ? g->nparams : 1;
  o->segs = cuda_malloc_tracked(cx, (int64_t)np * (int64_t)sizeof(dp_optim_segment), "optimizer segments");
  o->hsegs = dp_calloc((size_t)np, sizeof *o->hsegs, "optimizer segments");
  o->param_step = dp_calloc((size_t)np, sizeof *o->param_step, "optimizer step counts");
  o->norm_scratch = cuda_malloc_tracked(cx, dp_cuda_norm_scratch(), "grad-norm scratch");
  o->norm = cuda_malloc_tracked(cx, 4, "grad norm");
  o->gscale = cuda_malloc_tracked(cx, 4, "grad scale");
  o->found = cuda_malloc_tracked(cx, 4, "overflow flag");
  CUDA_CHECK(cudaMallocHost((void **)&o->found_host, sizeof *o->found_host), "pinned overflow flag");
  CUDA_CHECK(cudaEventCreateWithFlags(&o->found_ev, cudaEventDisableTiming), "overflow flag event");
  o->scaler = scaler ? scaler : &o->own_scaler;
  loss_scaler_init(o->scaler, fp16_scaling);
  cuda_optim_refresh_segments(o, g);
}

void cuda_optim_free(cuda_optimizer *o) {
  if (!o->cx) return;
  CUDA_CHECK(cudaStreamSynchronize(o->cx->compute), "freeing the GPU optimizer");
  int64_t bytes = (o->n > 0 ? o->n : 1) * 4;
  cuda_free_tracked(o->cx, o->state1, bytes);
  if (o->state2) cuda_free_tracked(o->cx, o->state2, bytes);
  cuda_free_tracked(o->cx, o->segs, (int64_t)(o->nparams > 0 ? o->nparams : 1) * (int64_t)sizeof(dp_optim_segment));
  cuda_free_tracked(o->cx, o->norm_scratch, dp_cuda_norm_scratch());
  cuda_free_tracked(o->cx, o->norm, 4);
  cuda_free_tracked(o->cx, o->gscale, 4);
  cuda_free_tracked(o->cx, o->found, 4);
  cudaFreeHost(o->found_host);
  cudaEventDestroy(o->found_ev);
  free(o->hsegs);
  free(o->param_step);
  memset(o, 0, sizeof *o);
}

// Uploads the host segment table (pageable source: cudaMemcpyAsync stages it
// before returning, so the host may rewrite hsegs right away; ordered on the
// compute stream before the step's kernels).
static void upload_segments(cuda_optimizer *o) {
  CUDA_CHECK(cudaMemcpyAsync(o->segs, o->hsegs, (size_t)o->nsegs * sizeof *o->hsegs, cudaMemcpyHostToDevice,
                             o->cx->compute),
             "uploading optimizer segments");
}

void cuda_optim_refresh_segments(cuda_optimizer *o, nn_graph *g) {
  DP_CHECK(g->nparams == o->nparams, "GPU optimizer", "use the graph the optimizer was made for");
  // Tensors with different step counts (one unfrozen later) get their own
  // segments: their AdamW bias corrections differ.
  o->segs_stale = 0;
  o->nsegs = cuda_optim_segments(g->params, g->nparams, o->param_step, o->cfg.weight_decay, o->cfg.no_decay_norm_bias,
                                 o->cfg.backbone_lr_mult, o->hsegs);
  upload_segments(o);
  for (int i = 0; i < o->nsegs; i++)
    if (o->hsegs[i].frozen)
      CUDA_CHECK(cudaMemsetAsync(g->grads + o->hsegs[i].lo, 0, (size_t)(o->hsegs[i].hi - o->hsegs[i].lo) * 4,
                                 o->cx->compute),
                 "zeroing frozen gradients");
}

// The local overflow flag through pinned memory: the host waits for the
// event, not for a pageable copy (which would block inside the CUDA call).
static int local_flag(cuda_optimizer *o) {
  cudaStream_t s = o->cx->compute;
  CUDA_CHECK(cudaMemcpyAsync(o->found_host, o->found, 4, cudaMemcpyDeviceToHost, s), "reading the overflow flag");
  CUDA_CHECK(cudaEventRecord(o->found_ev, s), "reading the overflow flag");
  CUDA_CHECK(cudaEventSynchronize(o->found_ev), "reading the overflow flag");
  return *o->found_host != 0;
}

int cuda_optim_step(cuda_optimizer *o, nn_graph *g, cuda_flag_any_fn flag_any, void *flag_ctx) {
  cudaStream_t s = o->cx->compute;
  if (o->segs_stale) cuda_optim_refresh_segments(o, g);
  // Backward writes every gradient, frozen tensors' too: they must not count
  // in the norm or the overflow check (the CPU optimizer skips them).
  for (int i = 0; i < o->nsegs; i++)
    if (o->hsegs[i].frozen)
      CUDA_CHECK(cudaMemsetAsync(g->grads + o->hsegs[i].lo, 0, (size_t)(o->hsegs[i].hi - o->hsegs[i].lo) * 4, s),
                 "zeroing frozen gradients");
  float lr = optim_lr_at(&o->cfg, o->step);
  o->step++;
  o->last_lr = lr;
  if (o->scaler->enabled) {
    CUDA_CHECK(dp_cuda_nonfinite_check(g->grads, o->n, o->found, s), "checking gradients for inf/NaN");
    // Several ranks: the caller's agreement (NCCL max on the comm stream, read
    // through pinned memory while polling the communicator with its timeout).
    int any = flag_any ? flag_any(flag_ctx, o->found) : local_flag(o);
    float inv = loss_scaler_inv_scale(o->scaler);
    if (!loss_scaler_update(o->scaler, any)) return 0;   // skipped on every rank alike
    CUDA_CHECK(dp_cuda_grad_norm(g->grads, o->n, inv, o->cfg.clip_grad_norm, o->norm_scratch, o->norm, o->gscale, s),
               "gradient norm");
  } else {
    CUDA_CHECK(dp_cuda_grad_norm(g->grads, o->n, 1.0f, o->cfg.clip_grad_norm, o->norm_scratch, o->norm, o->gscale, s),
               "gradient norm");
  }
  if (o->cfg.kind == OPTIM_SGD) {
    // Momentum buffers start at zero, so step 1 gives buf = d for every
    // tensor (also one unfrozen late), as torch and nn/optim.c do.
    CUDA_CHECK(dp_cuda_sgd_step(g->params_data, g->grads, o->state1, NULL, o->segs, o->nsegs, o->n, lr,
                                o->cfg.momentum, o->cfg.nesterov, o->applied == 0, o->gscale, NULL, s),
               "SGD step");
  } else {
    // Per-tensor step counts, as nn/optim.c: the bias corrections of each
    // segment come from its tensors' own count.
    cuda_adamw_corrections(o->hsegs, o->nsegs, o->param_step, o->cfg.beta1, o->cfg.beta2);
    upload_segments(o);
    CUDA_CHECK(dp_cuda_adamw_step(g->params_data, g->grads, o->state1, o->state2, NULL, o->segs, o->nsegs, o->n, lr,
                                  o->cfg.beta1, o->cfg.beta2, o->cfg.eps, o->gscale, NULL, s),
               "AdamW step");
  }
  for (int32_t i = 0; i < g->nparams; i++)
    if (!g->params[i].frozen && g->params[i].numel > 0) o->param_step[i]++;
  o->applied++;
  return 1;
}

float cuda_optim_last_norm(cuda_optimizer *o) {
  float h = 0;
  CUDA_CHECK(cudaMemcpyAsync(&h, o->norm, 4, cudaMemcpyDeviceToHost, o->cx->compute), "reading the grad norm");
  CUDA_CHECK(cudaStreamSynchronize(o->cx->compute), "reading the grad norm");
  return h;
}
