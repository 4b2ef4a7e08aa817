// One optimizer step: `accum` micro-batches (stage, forward, backward; the
// gradient buckets all-reduce from backward's ready hook on the last one),
// then the wait for the reduction, the mean over micro-steps and the update.
#include <math.h>
#include <string.h>

#include "core/sysinfo.h"
#include "core/timer.h"
#include "dist/watchdog.h"
#include "train/run.h"

static void dump_batch(trainer *t, const loader_batch *b) {
  if (!t->dump) return;
  for (int64_t i = 0; i < b->n; i++)
    fprintf(t->dump, "%lld %lld %lld\n", (long long)t->st.epoch, (long long)b->sample_index[i], (long long)b->ids[i]);
}

// Adds one micro-step's loss to the step's mean; a non-finite loss ends the run.
static void add_loss(trainer *t, step_vals *s, float loss, int accum) {
  s->v[V_LOSS] += loss / accum;
  if (!isfinite(loss))
    DP_FATAL("training", "lower --lr, add --warmup-steps or --clip-grad-norm", "loss is %f at step %lld",
             (double)loss, (long long)t->st.step);
}
#define LOSS_SLOTS 8   // train_device.loss_submit slots in flight

// Runs accum micro-steps and one optimizer update on graph g with optimizer o.
// reduce = 0 for the single-rank baseline (no communication).
step_vals train_step(trainer *t, loader *l, void *o, nn_step *ns, int reduce, int dump) {
  nn_graph *g = t->g;
  train_device *td = t->td;
  int accum = t->cfg->accum;
  step_vals s;
  memset(&s, 0, sizeof s);
  unsigned pending = 0;           // loss slots submitted and not yet collected (deferred losses)
  int slot_m[LOSS_SLOTS] = {0};   // the micro-step each pending slot holds
  if (reduce) dist_watchdog_mark(t->d, t->st.step, WD_STEP_START);
  double s0 = dp_now();
  for (int m = 0; m < accum; m++) {
    if (reduce) fault_maybe(t, 0);
    double d0 = dp_now();
    const loader_batch *b = loader_next_batch(l);
    if (!b) DP_FATAL("reading a training batch", "loader bug: epoch ended early", "no batch at micro-step %d", m);
    if (dump) dump_batch(t, b);
    td->feed(td, g, ns, b, b->n);
    double f0 = dp_now();
    s.v[V_DATA] += f0 - d0;
    ns->accumulate_grads = m > 0;
    ns->step = (uint64_t)t->st.step;
    if (reduce) td->reduce_begin(td, m == accum - 1);
    if (b->n == 0) {
      // Every record of this batch was corrupt (the loader's rule): contribute
      // zero gradient but still take part in the all-reduce (wait starts the
      // buckets backward did not), so no rank blocks.
      if (m == 0) td->grads_scale(td, g, 0.0f);
      s.v[V_FB] += dp_now() - f0;
      continue;
    }
    int k = m % LOSS_SLOTS;
    if (ns->defer_loss && (pending >> k & 1)) {
      // The slot is reused: collect the micro-step that holds it.
      add_loss(t, &s, td->loss_result(td, slot_m[k]), accum);
      pending &= ~(1u << k);
    }
    nn_forward(g, ns);
    if (ns->defer_loss) {
      td->loss_submit(td, g, m);
      slot_m[k] = m;
      pending |= 1u << k;
    }
    ns->loss_scale = loss_scaler_scale(&t->st.scaler);   // 1 unless fp16 on a GPU
    nn_backward(g, ns);
    s.v[V_FB] += dp_now() - f0;
    s.v[V_IMAGES] += (double)b->n;
    if (!ns->defer_loss) add_loss(t, &s, ns->loss, accum);
  }
  double c0 = dp_now();
  if (reduce) {
    dist_watchdog_mark(t->d, t->st.step, WD_GRAD_WAIT);
    s.v[V_SPAN] = td->reduce_wait(td);
  }
  if (accum > 1) td->grads_scale(td, g, 1.0f / (float)accum);   // summed micro-batch grads -> mean
  double o0 = dp_now();
  s.v[V_COMM] = o0 - c0;
  t->st.last_lr = td->optim_step(td, o, g);
  // Deferred losses: by now the step's work is queued, so waiting for a
  // forward's copy leaves the GPU busy with the backward and optimizer.
  for (int k = 0; pending && k < LOSS_SLOTS; k++)
    if (pending >> k & 1) {
      add_loss(t, &s, td->loss_result(td, slot_m[k]), accum);
      pending &= ~(1u << k);
    }
  double e = dp_now();
  s.v[V_OPT] = e - o0;
  s.v[V_STEP] = e - s0;
  s.v[V_RSS] = (double)dp_peak_rss_bytes();
  return s;
}

