// Writes tiny raw-codec shards for the training tests:
//   make_shards DIR [N_TRAIN] [N_VAL] [SIZE] [CLASSES] [CORRUPT_EVERY]
// DIR/train-0000{0,1}.h5 (N_TRAIN records split over two shards) and
// DIR/val-00000.h5. Each class has a distinct mean brightness per channel and
// a stripe orientation, plus noise, so a small model can learn it in a few
// steps; ids are 1000 + global index so coverage tests can check them.
// CORRUPT_EVERY k > 0: every k-th training record is truncated (skip tests).
// CORRUPT_VAL_EVERY k > 0: the same for the val records (evaluation tests).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"
#include "input/shard.h"

static void render(uint8_t *img, int size, int cls, int classes, dp_rng *r) {
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
      for (int c = 0; c < 3; c++) {
        double base = 40.0 + 170.0 * (double)((cls + c) % classes) / (double)(classes > 1 ? classes - 1 : 1);
        int stripe = (cls % 2 ? x : y) / 2 % 2;
        double v = base + (stripe ? 25 : -25) + 30.0 * (dp_rng_uniform(r) - 0.5);
        img[((size_t)y * size + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
}

static void write_shard(const char *path, int64_t first, int64_t n, int size, int classes, uint64_t seed,
                        int corrupt_every) {
  const char *names[16] = {"ok", "blurry", "watermark", "wrong_background", "other", "c5", "c6", "c7",
                           "c8", "c9", "c10", "c11", "c12", "c13", "c14", "c15"};
  shard_writer_cfg wc = {SHARD_CODEC_RAW, classes, names, size, size, 3, NULL};
  dp_err err;
  dp_err_clear(&err);
  shard_writer *w = shard_writer_create(path, &wc, &err);
  if (!w) DP_FATAL("creating a test shard", "", "%s", err.msg);
  uint8_t *img = dp_malloc((size_t)size * size * 3, "image");
  for (int64_t i = first; i < first + n; i++) {
    dp_rng r = dp_rng_stream(seed, (uint64_t)i);
    int cls = (int)(i % classes);
    render(img, size, cls, classes, &r);
    int64_t len = (int64_t)size * size * 3;
    if (corrupt_every > 0 && i % corrupt_every == corrupt_every - 1) len /= 2;   // wrong size: skipped
    if (shard_writer_add(w, img, len, cls, 1000 + i, NULL, &err))
      DP_FATAL("writing a test shard", "", "%s", err.msg);
  }
  if (shard_writer_close(w, &err)) DP_FATAL("closing a test shard", "", "%s", err.msg);
  free(img);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: make_shards DIR [N_TRAIN] [N_VAL] [SIZE] [CLASSES] [CORRUPT_EVERY] [CORRUPT_VAL_EVERY]\n");
    return 2;
  }
  const char *dir = argv[1];
  int64_t ntrain = argc > 2 ? atoll(argv[2]) : 64;
  int64_t nval = argc > 3 ? atoll(argv[3]) : 30;
  int size = argc > 4 ? atoi(argv[4]) : 16;
  int classes = argc > 5 ? atoi(argv[5]) : 5;
  int corrupt_every = argc > 6 ? atoi(argv[6]) : 0;
  int corrupt_val_every = argc > 7 ? atoi(argv[7]) : 0;
  char cmd[1200], path[1200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd) != 0) return 1;
  int64_t half = ntrain / 2;
  snprintf(path, sizeof path, "%s/train-00000.h5", dir);
  write_shard(path, 0, half, size, classes, 7, corrupt_every);
  snprintf(path, sizeof path, "%s/train-00001.h5", dir);
  write_shard(path, half, ntrain - half, size, classes, 7, corrupt_every);
  snprintf(path, sizeof path, "%s/val-00000.h5", dir);
  write_shard(path, 100000, nval, size, classes, 8, corrupt_val_every);
  printf("make_shards: %lld train + %lld val records, %dx%dx3, %d classes in %s\n", (long long)ntrain,
         (long long)nval, size, size, classes, dir);
  return 0;
}
