#include "core/sysinfo.h"
#include "backend/cpu/cpu.h"
#include "model_fixture.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"
#include "testutil.h"

nn_graph *mf_build(const model_cfg *cfg, int64_t batch) {
  nn_graph *g = nn_graph_create(cpu_backend(), batch, 42);
  model_build(g, cfg);
  nn_xent_cfg xc = {.label_smoothing = 0, .class_weights = NULL, .num_classes = cfg->classes};
  nn_softmax_xent(g, "loss", g->logits, &xc);
  return g;
}

static int load_one(const char *file, const char *name, float *dst, int64_t numel) {
  char ds[160];
  snprintf(ds, sizeof ds, "params/%s", name);
  int64_t n = 0;
  float *v = tu_h5_read_f32(file, ds, &n);
  if (!v) {
    TU_CHECK(0, "%s missing in the fixture", name);
    return 0;
  }
  TU_CHECK(n == numel, "%s: fixture has %lld elements, model %lld", name, (long long)n, (long long)numel);
  if (n == numel) memcpy(dst, v, (size_t)n * 4);
  free(v);
  return 1;
}

// Entries of the /params group of the fixture.
static int64_t fixture_count(const char *file) {
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return -1;
  hid_t grp = H5Gopen2(f, "params", H5P_DEFAULT);
  H5G_info_t info;
  int64_t n = -1;
  if (grp >= 0 && H5Gget_info(grp, &info) >= 0) n = (int64_t)info.nlinks;
  if (grp >= 0) H5Gclose(grp);
  H5Fclose(f);
  return n;
}

void mf_load_state(nn_graph *g, const char *file) {
  for (int32_t i = 0; i < g->nparams; i++) load_one(file, g->params[i].name, nn_param_data(g, i), g->params[i].numel);
  for (int32_t i = 0; i < g->nbufs; i++) load_one(file, g->bufs[i].name, nn_buf(g, i), g->bufs[i].numel);
  int64_t n = fixture_count(file);
  TU_CHECK(n == g->nparams + g->nbufs, "fixture has %lld tensors, model %d params + %d buffers",
           (long long)n, g->nparams, g->nbufs);
}

void mf_set_input_nchw(nn_graph *g, const float *x) {
  nn_tensor *t = nn_t(g, g->input);
  int64_t N = t->dim[0], H = t->dim[1], W = t->dim[2], C = t->dim[3];
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++)
          t->data[((n * H + h) * W + w) * C + c] = x[((n * C + c) * H + h) * W + w];
}

int64_t mf_vm_hwm(void) { return dp_proc_status_bytes("VmHWM"); }
int64_t mf_vm_rss(void) { return dp_proc_status_bytes("VmRSS"); }
