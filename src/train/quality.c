// Issue 12's training-side hooks: the augmentation policy and sampler of the
// training loader, and post-hoc logit adjustment of the model that ships.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timer.h"
#include "input/augment.h"
#include "input/sampler.h"
#include "train/eval.h"
#include "train/memfit.h"
#include "train/run.h"

int train_loader_quality(const train_config *c, int rank, loader_cfg *lc, dp_err *err) {
  char src[1200];
  if (loader_cfg_set_policy(lc, c->augment_policy, c->jitter_classes, src, sizeof src, err)) return -1;
  lc->crop_pad = c->crop_pad;
  lc->sampler_mode = sampler_mode_parse(c->sampler);   // checked by config.c
  if (rank == 0 && c->augment)
    LOG_INFO("augmentation: policy %s (from %s)%s", aug_policy_name(lc->policy), src,
             lc->policy == AUG_POLICY_DEFECTS && (c->mixup > 0 || c->cutmix > 0)
                 ? "; mixup/cutmix were asked for: they blend defects into clean images"
                 : "");
  return 0;
}

// The best weights back into the graph on every rank: rank 0 reads the file
// it wrote (after the writer thread finished it) and broadcasts.
static void restore_best(trainer *t) {
  char path[TC_PATH_MAX + 64], err[600] = "";
  snprintf(path, sizeof path, "%s/model.safetensors", t->cfg->out);
  int rc = 0;
  if (t->d->rank == 0) {
    t->agg.ckpt_stall_s += ckpt_writer_flush(t->ck.w);
    rc = weights_load(path, t->g, 0, err, sizeof err);
  }
  MPI_CHECK(MPI_Bcast(&rc, 1, MPI_INT, 0, t->d->comm), "agreeing on the best weights");
  if (rc) DP_FATAL("reading the best model back for logit adjustment", "check --out", "%s", err);
  setup_bcast_floats(t->d, nn_params_host(t->g), t->g->nparam_elems);
  nn_params_push(t->g);
  setup_bcast_floats(t->d, nn_bufs_host(t->g), t->g->nbuf_elems);
  nn_bufs_push(t->g);
}

void quality_logit_adjust(trainer *t) {
  const int C = t->num_classes;
  int64_t best_step = t->st.best_step >= 0 ? t->st.best_step : t->st.step;
  if (best_step != t->st.step) restore_best(t);
  int64_t *counts = dp_calloc((size_t)C, sizeof(int64_t), "class counts");
  loader_class_counts(t->train, counts);
  float *bias = dp_calloc((size_t)C, sizeof(float), "logit bias");
  class_metrics raw, adj;
  double secs = eval_logit_adjust(t->g, t->td, t->val, t->d, C, counts, bias, &raw, &adj);
  free(counts);
  if (t->d->rank == 0) {
    progress_break(&t->prog);
    printf("logit adjustment of model.safetensors (step %lld) tuned on val (%.1f s): macro-F1 %.4f raw -> %.4f "
           "adjusted (optimistic on the split it was tuned on: evaluate the test split with `dptrain eval`)\n"
           "  offsets:",
           (long long)best_step, secs, raw.macro_f1, adj.macro_f1);
    for (int c = 0; c < C; c++) printf(" %s %+.2f", trainer_class_name(t, c), (double)bias[c]);
    printf("\n");
    const char **names = dp_calloc((size_t)C, sizeof(char *), "class names");
    for (int k = 0; k < C; k++) names[k] = trainer_class_name(t, k);
    class_metrics_print(&adj, names, stdout);
    free(names);
    fflush(stdout);
  }
  class_metrics_free(&raw);
  if (t->res.adjusted) class_metrics_free(&t->res.q_adj);
  free(t->res.logit_bias);
  t->res.q_adj = adj;
  t->res.adjusted = 1;
  t->res.logit_bias = bias;
  snprintf(t->res.adjust_split, sizeof t->res.adjust_split, "val (tuned)");
  // model.safetensors again, now with the offsets in its metadata.
  model_file_write_at(t, "model.safetensors", best_step);
}
