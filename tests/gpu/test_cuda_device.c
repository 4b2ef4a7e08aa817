// Device detection without a GPU must give a clear message, never crash; with
// a GPU, the probe and the count agree. GPU-local binding must fail softly
// when the device's locality cannot be read. Needs no GPU (label unit).
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cuda/cuda.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_bind.h"
#include "testutil.h"

int main(void) {
  // Every op kind has a table on both backends, named for its kind, so a
  // graph never fails with "no cuda implementation".
  const nn_backend_vt *bes[2] = {cpu_backend(), cuda_backend()};
  for (int b = 0; b < 2; b++)
    for (int k = 0; k < NN_OP_KIND_COUNT; k++)
      TU_CHECK(bes[b]->ops[k] != NULL && bes[b]->ops[k]->forward && bes[b]->ops[k]->backward,
               "%s: op kind %d has no table", bes[b]->name, k);
  TU_CHECK(!strcmp(cuda_backend()->ops[NN_OP_conv2d]->kind, "conv2d") &&
               !strcmp(cpu_backend()->ops[NN_OP_softmax_xent]->kind, "softmax_xent"),
           "op tables out of order");
  char msg[256] = "";
  int n = cuda_device_probe(msg, sizeof msg);
  printf("probe: %d device(s): %s\n", n, msg);
  TU_CHECK(n == cuda_device_count(), "probe %d vs count %d", n, cuda_device_count());
  TU_CHECK(strlen(msg) > 10, "empty probe message");
  if (n == 0) {
    TU_CHECK(strstr(msg, "driver") || strstr(msg, "device") || strstr(msg, "CUDA_VISIBLE_DEVICES"),
             "probe message does not say why: %s", msg);
    cuda_binding b;
    char bm[256] = "";
    TU_CHECK(cuda_bind_near_device(0, &b, bm, sizeof bm) == -1, "binding to a missing GPU succeeded");
    printf("bind without GPU: %s\n", bm);
  } else {
    TU_CHECK(strstr(msg, "visible") != NULL, "message: %s", msg);
    cuda_binding b;
    char bm[256] = "";
    int rc = cuda_bind_near_device(0, &b, bm, sizeof bm);
    printf("bind: rc %d: %s\n", rc, bm);
    if (rc == 0) TU_CHECK(b.cores > 0, "bound to %d cores", b.cores);
  }
  return tu_finish("test_cuda_device");
}
