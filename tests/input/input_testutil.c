#include "input_testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/check.h"
#include "testutil.h"

uint8_t *it_make_image(int w, int h, int c, uint32_t seed) {
  uint8_t *p = dp_malloc((size_t)w * h * c, "test image");
  double ph = (seed % 97) * 0.1;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++) {
        double v = 128 + 60 * sin(0.05 * x + 0.9 * k + ph) + 50 * cos(0.07 * y - 0.4 * k + ph) +
                   10 * sin(0.01 * (x + y) * (k + 1));
        p[((size_t)y * w + x) * c + k] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
      }
  return p;
}

uint8_t *it_jpeg_encode(const uint8_t *pix, int w, int h, int pf, int subsamp, int quality,
                        int flags, int64_t *len) {
  tjhandle tj = tjInitCompress();
  PTR_CHECK(tj, "tjInitCompress");
  unsigned char *out = NULL;
  unsigned long n = 0;
  if (tjCompress2(tj, pix, w, 0, h, pf, &out, &n, subsamp, quality, flags) != 0)
    DP_FATAL("tjCompress2", "test encoder", "%s", tjGetErrorStr2(tj));
  uint8_t *r = dp_malloc(n, "jpeg copy");
  memcpy(r, out, n);
  tjFree(out);
  tjDestroy(tj);
  *len = (int64_t)n;
  return r;
}

uint8_t *it_jpeg_make(int w, int h, uint32_t seed, int flags, int64_t *len) {
  uint8_t *img = it_make_image(w, h, 3, seed);
  uint8_t *j = it_jpeg_encode(img, w, h, TJPF_RGB, TJSAMP_420, 90, flags, len);
  free(img);
  return j;
}

void it_shard_write(const char *path, shard_codec codec, int num_classes, int raw_h, int raw_w,
                    int raw_c, int64_t n, uint8_t *const *records, const int64_t *lens,
                    const int32_t *labels, const int64_t *ids) {
  char names[16][16];
  const char *cn[16];
  for (int i = 0; i < num_classes && i < 16; i++) {
    snprintf(names[i], sizeof names[i], "class%d", i);
    cn[i] = names[i];
  }
  shard_writer_cfg cfg = {codec, num_classes, cn, raw_h, raw_w, raw_c, NULL};
  dp_err err;
  dp_err_clear(&err);
  shard_writer *w = shard_writer_create(path, &cfg, &err);
  if (!w) DP_FATAL("shard_writer_create", "test", "%s", err.msg);
  for (int64_t i = 0; i < n; i++)
    if (shard_writer_add(w, records[i], lens[i], labels[i], ids[i], NULL, &err))
      DP_FATAL("shard_writer_add", "test", "%s", err.msg);
  if (shard_writer_close(w, &err)) DP_FATAL("shard_writer_close", "test", "%s", err.msg);
}

const char *it_path(const char *name) {
  static _Thread_local char buf[1024];
  snprintf(buf, sizeof buf, "%s/%s", tu_fixture_dir(), name);
  return buf;
}
