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
  o->state1 = cuda_malloc_tracked(cx, bytes, "optimizer state");
  CUDA_CHECK(cudaMemset(o->state1, 0, (size_t)bytes), "zeroing optimizer state");
  if (cfg->kind == OPTIM_ADAMW) {
    o->state2 = cuda_malloc_tracked(cx, bytes, "optimizer state");
    CUDA_CHECK(cudaMemset(o->state2, 0, (size_t)bytes), "zeroing optimizer state");
  }
  o->segs = cuda_malloc_tracked(cx, (int64_t)(g->nparams > 0 ? g->nparams : 1) * (int64_t)sizeof(dp_optim_segment),
                                "optimizer segments");
  o->norm_scratch = cuda_malloc_tracked(cx, dp_cuda_norm_scratch(), "grad-norm scratch");
  o->norm = cuda_malloc_tracked(cx, 4, "grad norm");
  o->gscale = cuda_malloc_tracked(cx, 4, "grad scale");
  o->found = cuda_malloc_tracked(cx, 4, "overflow flag");
  o->scaler = scaler ? scaler : &o->own_scaler;
  loss_scaler_init(o->scaler, fp16_scaling);
  cuda_optim_refresh_segments(o, g);
}

void cuda_optim_free(cuda_optimizer *o) {
  if (!o->cx) return;
  int64_t bytes = (o->n > 0 ? o->n : 1) * 4;
  cuda_free_tracked(o->cx, o->state1, bytes);
  if (o->state2) cuda_free_tracked(o->cx, o->state2, bytes);
  cuda_free_tracked(o->cx, o->segs, 0);
  cuda_free_tracked(o->cx, o->norm_scratch, dp_cuda_norm_scratch());
  cuda_free_tracked(o->cx, o->norm, 4);
  cuda_free_tracked(o->cx, o->gscale, 4);
  cuda_free_tracked(o->cx, o->found, 4);
  memset(o, 0, sizeof *o);
}

void cuda_optim_refresh_segments(cuda_optimizer *o, nn_graph *g) {
  dp_optim_segment *h = dp_malloc((size_t)(g->nparams > 0 ? g->nparams : 1) * sizeof *h, "segments");
  o->nsegs = cuda_optim_segments(g->params, g->nparams, o->cfg.weight_decay, o->cfg.no_decay_norm_bias,
                                 o->cfg.backbone_lr_mult, h);
  CUDA_CHECK(cudaStreamSynchronize(o->cx->compute), "updating optimizer segments");
  CUDA_CHECK(cudaMemcpy(o->segs, h, (size_t)o->nsegs * sizeof *h, cudaMemcpyHostToDevice), "uploading segments");
  for (int i = 0; i < o->nsegs; i++)
    if (h[i].frozen)
      CUDA_CHECK(cudaMemsetAsync(g->grads + h[i].lo, 0, (size_t)(h[i].hi - h[i].lo) * 4, o->cx->compute),
                 "zeroing frozen gradients");
  free(h);
}

int cuda_optim_step(cuda_optimizer *o, nn_graph *g, cuda_flag_any_fn flag_any, void *flag_ctx) {
  cudaStream_t s = o->cx->compute;
  float lr = optim_lr_at(&o->cfg, o->step);
  o->step++;
  o->last_lr = lr;
  if (o->scaler->enabled) {
    CUDA_CHECK(dp_cuda_nonfinite_check(g->grads, o->n, o->found, s), "checking gradients for inf/NaN");
    int any;
    if (flag_any) {
      any = flag_any(flag_ctx, o->found);
    } else {
      int32_t h = 0;
      CUDA_CHECK(cudaMemcpyAsync(&h, o->found, 4, cudaMemcpyDeviceToHost, s), "reading the overflow flag");
      CUDA_CHECK(cudaStreamSynchronize(s), "reading the overflow flag");
      any = h != 0;
    }
    float inv = loss_scaler_inv_scale(o->scaler);
    if (!loss_scaler_update(o->scaler, any)) return 0;   // skipped on every rank alike
    CUDA_CHECK(dp_cuda_grad_norm(g->grads, o->n, inv, o->cfg.clip_grad_norm, o->norm_scratch, o->norm, o->gscale, s),
               "gradient norm");
  } else {
    CUDA_CHECK(dp_cuda_grad_norm(g->grads, o->n, 1.0f, o->cfg.clip_grad_norm, o->norm_scratch, o->norm, o->gscale, s),
               "gradient norm");
  }
  if (o->cfg.kind == OPTIM_SGD) {
    CUDA_CHECK(dp_cuda_sgd_step(g->params_data, g->grads, o->state1, NULL, o->segs, o->nsegs, o->n, lr,
                                o->cfg.momentum, o->cfg.nesterov, o->applied == 0, o->gscale, NULL, s),
               "SGD step");
  } else {
    CUDA_CHECK(dp_cuda_adamw_step(g->params_data, g->grads, o->state1, o->state2, NULL, o->segs, o->nsegs, o->n, lr,
                                  o->cfg.beta1, o->cfg.beta2, o->cfg.eps, o->applied + 1, o->gscale, NULL, s),
               "AdamW step");
  }
  o->applied++;
  return 1;
}

float cuda_optim_last_norm(cuda_optimizer *o) {
  float h = 0;
  CUDA_CHECK(cudaMemcpyAsync(&h, o->norm, 4, cudaMemcpyDeviceToHost, o->cx->compute), "reading the grad norm");
  CUDA_CHECK(cudaStreamSynchronize(o->cx->compute), "reading the grad norm");
  return h;
}
