// Device detection without a GPU must give a clear message, never crash; with
// a GPU, the probe and the count agree. GPU-local binding must fail softly
// when the device's locality cannot be read. Needs no GPU (label unit).
#include <string.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_bind.h"
#include "nn/op_common.h"
#include "testutil.h"

// The same weak declarations the op constructors use: every table must
// resolve in a CUDA build, or graphs would fail with "no CUDA implementation".
NN_DECLARE_VT(relu);
NN_DECLARE_VT(conv2d);
NN_DECLARE_VT(batchnorm2d_relu);
NN_DECLARE_VT(linear);
NN_DECLARE_VT(attention);
NN_DECLARE_VT(softmax_xent);

int main(void) {
  TU_CHECK(&relu_cuda_vt != NULL && &conv2d_cuda_vt != NULL && &batchnorm2d_relu_cuda_vt != NULL &&
               &linear_cuda_vt != NULL && &attention_cuda_vt != NULL && &softmax_xent_cuda_vt != NULL,
           "a CUDA op table is not linked (weak reference left NULL)");
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
