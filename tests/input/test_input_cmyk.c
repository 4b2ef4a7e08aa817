// test_input_cmyk JPEG REF_RGB: decodes JPEG with the training decoder
// (decoder_jpeg_decode, full size, RGB) and compares with REF_RGB, the
// (H, W, 3) uint8 pixels PIL's convert("RGB") gives for it. Used by
// cmyk_agree.py on CMYK JPEGs written by PIL. Exit 0 when max |diff| <= 2.
#include <stdio.h>
#include <stdlib.h>

#include "input/decode.h"
#include "testutil.h"

static uint8_t *slurp(const char *path, long *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)*n + 1);
  if (fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
  fclose(f);
  return b;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_input_cmyk JPEG REF_RGB\n");
    return 2;
  }
  long jn = 0, rn = 0;
  uint8_t *j = slurp(argv[1], &jn), *ref = slurp(argv[2], &rn);
  TU_CHECK(j && ref && jn > 0 && rn > 0, "reading %s / %s", argv[1], argv[2]);
  if (!j || !ref) return tu_finish("test_input_cmyk");
  decoder *d = decoder_create();
  img_header h;
  img_view v;
  dp_err err;
  dp_err_clear(&err);
  int rc = decoder_jpeg_header(d, j, jn, &h, &err);
  if (!rc) rc = decoder_jpeg_decode(d, j, jn, &h, 3, 1, 1, &v, &err);
  TU_CHECK(rc == 0, "decode: %s", err.msg);
  if (!rc) {
    TU_CHECK(rn == (long)v.w * v.h * 3, "reference has %ld bytes for %dx%d", rn, v.w, v.h);
    int worst = 0;
    for (int y = 0; y < v.h && rn == (long)v.w * v.h * 3; y++)
      for (int x = 0; x < v.w * 3; x++) {
        int dlt = abs((int)v.pix[y * v.stride + x] - (int)ref[(size_t)y * v.w * 3 + x]);
        if (dlt > worst) worst = dlt;
      }
    printf("%s: %dx%d colorspace %d, max |decoded - PIL| = %d\n", argv[1], v.w, v.h, h.colorspace, worst);
    TU_CHECK(worst <= 2, "max difference %d > 2", worst);
  }
  decoder_destroy(d);
  free(j);
  free(ref);
  return tu_failures ? 1 : 0;
}
