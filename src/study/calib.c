#include "study/calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

int cal_build(dc_ctx *x, cal_row **rows) {
  *rows = dp_calloc((size_t)(x->runs->n + 1), sizeof(cal_row), "calibration rows");
  int n = 0;
  for (int i = 0; i < x->runs->n; i++) {
    const sr_run *r = &x->runs->r[i];
    if (strcmp(r->kind, "train") || strcmp(r->hw_kind, "cpu") || !strcmp(r->device, "cuda") || !(r->img_s > 0)) continue;
    cal_row *c = &(*rows)[n++];
    c->run = r;
    const hw_entry *row = hw_table_find(x->hw, r->hardware);
    hw_entry tmp;
    if (!row) {   // a row missing from this table: the run's own figures still give peak and price
      memset(&tmp, 0, sizeof tmp);
      snprintf(tmp.name, sizeof tmp.name, "%s", r->hardware);
      snprintf(tmp.kind, sizeof tmp.kind, "cpu");
      snprintf(tmp.unit, sizeof tmp.unit, "core");
      tmp.peak_fp32 = tmp.peak_bf16 = r->peak_flops_per_rank;
      tmp.intra_bps = tmp.inter_bps = NAN;
      row = &tmp;
    }
    c->mfu = dc_mfu(x, r->model, r->image_size, row, r->path, &c->mfu_from);
    c->hidden = dc_hidden(x, r->family, "cpu", r->path);
    c->cv = dc_cv(x, r->family, "cpu", r->path);
    sm_input *in = &c->in;
    in->flops_fwd = r->flops_fwd;
    in->batch = r->batch;
    in->grad_bytes = r->grad_bytes;
    in->bytes_per_image = 0;
    in->devices = r->world;
    in->devices_per_node = r->nodes > 0 ? (r->world + r->nodes - 1) / r->nodes : r->world;
    in->peak_flops = r->peak_flops_per_rank;
    in->mfu = c->mfu_from ? c->mfu.v : NAN;
    // The share of its cores this run got on the shared machine (measured in
    // the run, like its link): the model predicts the rate at that share.
    in->cpu_share = r->cpu_share;
    // The loader shares the cores and its cost at the synthetic data's JPEG
    // size is inside the measured MFU; storage reads hit the page cache.
    in->input_rate_per_core = 0;
    in->input_shares_compute = 1;
    in->storage_bps = 0;
    // The link measured at the run's start-up (a blocking all-reduce of the
    // same bytes), else the table's.
    in->intra_bps = r->bus_bps > 0 ? r->bus_bps : row->intra_bps;
    in->inter_bps = row->inter_bps;
    in->hidden_fraction = c->hidden.v;
    in->step_cv = c->cv.v;
    in->max_batch = -1;
    in->price_per_device_hour = r->price_per_rank_hour;
    in->images = 1, in->epochs = 1;
    sm_evaluate(in, &c->res);
    c->predicted = c->mfu_from ? c->res.rate : NAN;
    c->error = c->predicted / r->img_s - 1;
    c->within = isfinite(c->error) && fabs(c->error) <= CAL_TOLERANCE;
  }
  return n;
}
