#include "study/terms.h"

#include <math.h>
#include <string.h>

const char *sm_term_name(sm_term t) {
  switch (t) {
    case SM_COMPUTE: return "compute";
    case SM_SYNC: return "stragglers";
    case SM_COMM: return "communication";
    case SM_INPUT: return "input pipeline";
    case SM_STORAGE: return "storage";
    case SM_MEMORY: return "memory";
    default: return "?";
  }
}

double sm_expected_max_normal(int n) {
  // Exact values of E[max] for 1..5 (order-statistics tables); Blom's
  // approximation Phi^-1((n - 0.375) / (n + 0.25)) beyond, within ~1 %.
  static const double exact[6] = {0, 0, 0.5641896, 0.8462844, 1.0293754, 1.1629645};
  if (n <= 1) return 0;
  if (n <= 5) return exact[n];
  double p = ((double)n - 0.375) / ((double)n + 0.25);
  // Inverse normal CDF by Newton steps on erfc (p < 1, smooth: a few steps suffice).
  double x = 1.0;
  for (int it = 0; it < 50; it++) {
    double cdf = 0.5 * erfc(-x / sqrt(2.0));
    double pdf = exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    double dx = (cdf - p) / pdf;
    x -= dx;
    if (fabs(dx) < 1e-12) break;
  }
  return x;
}

double sm_ring_allreduce_s(double bytes, int n, double bw) {
  if (n <= 1) return 0;
  if (!(bw > 0)) return NAN;
  return 2.0 * (double)(n - 1) / (double)n * bytes / bw;
}

static double cap_of(double imgs, double t) { return t > 0 ? imgs / t : INFINITY; }

void sm_evaluate(const sm_input *in, sm_result *o) {
  memset(o, 0, sizeof *o);
  int n = in->devices > 0 ? in->devices : 1;
  int per_node = in->devices_per_node > 0 ? in->devices_per_node : 1;
  o->nodes = (n + per_node - 1) / per_node;
  double B = (double)in->batch, imgs = (double)n * B;
  o->feasible = !(in->max_batch >= 0 && in->batch > in->max_batch);

  double share = in->cpu_share > 0 && in->cpu_share <= 1 ? in->cpu_share : 1;
  double tc = in->peak_flops > 0 && in->mfu > 0 ? B * 3.0 * in->flops_fwd / (in->peak_flops * in->mfu * share) : INFINITY;
  double ts = tc * (in->step_cv > 0 ? in->step_cv : 0) * sm_expected_max_normal(n);
  o->bus_bps = o->nodes > 1 ? fmin(in->intra_bps > 0 ? in->intra_bps : INFINITY, in->inter_bps)
                            : in->intra_bps;
  double tm = 0;
  if (n > 1 && o->bus_bps > 0) {
    double h = in->hidden_fraction > 0 ? (in->hidden_fraction < 1 ? in->hidden_fraction : 1) : 0;
    tm = (1 - h) * sm_ring_allreduce_s(in->grad_bytes, n, o->bus_bps);
  }
  double ti = in->input_rate_per_core > 0 && in->cores_per_device > 0
                  ? B / (in->cores_per_device * in->input_rate_per_core * (in->input_shares_compute ? share : 1)) : 0;
  double tr = in->storage_bps > 0 ? imgs * in->bytes_per_image / ((double)o->nodes * in->storage_bps) : 0;
  o->t[SM_COMPUTE] = tc, o->t[SM_SYNC] = ts, o->t[SM_COMM] = tm, o->t[SM_INPUT] = ti, o->t[SM_STORAGE] = tr;
  for (int k = 0; k < SM_NTERMS; k++) o->cap[k] = k == SM_MEMORY ? INFINITY : cap_of(imgs, o->t[k]);

  double device = tc + ts + tm + (in->input_shares_compute ? ti : 0);
  double step = device;
  if (!in->input_shares_compute && ti > step) step = ti;
  if (tr > step) step = tr;
  o->step_s = step;
  // Binding term: the overlapped term that sets the step, else the largest
  // part of the device's own sequence.
  if (step == tr && tr > device && (in->input_shares_compute || tr >= ti)) o->binding = SM_STORAGE;
  else if (!in->input_shares_compute && step == ti && ti > device) o->binding = SM_INPUT;
  else {
    sm_term parts[4] = {SM_COMPUTE, SM_SYNC, SM_COMM, SM_INPUT};
    double v[4] = {tc, ts, tm, in->input_shares_compute ? ti : 0};
    int best = 0;
    for (int k = 1; k < 4; k++)
      if (v[k] > v[best]) best = k;
    o->binding = parts[best];
  }
  if (!o->feasible) {
    o->binding = SM_MEMORY;
    o->rate = 0;
    o->time_s = o->cost_usd = INFINITY;
    return;
  }
  o->rate = step > 0 && isfinite(step) ? imgs / step : 0;
  o->time_s = o->rate > 0 ? in->images * in->epochs / o->rate : INFINITY;
  o->cost_usd = isfinite(o->time_s) ? o->time_s / 3600.0 * (double)n * in->price_per_device_hour : INFINITY;
}
