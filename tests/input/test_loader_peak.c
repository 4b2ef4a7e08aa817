// The loader's memory does not depend on the images or the augmentation drawn
// (what the batch-size finder's plan relies on, docs/memory.md).
//
// Shards mix tiny JPEGs with a large one, a grayscale one and a CMYK one (4
// bytes per pixel of staging), without /meta/width,height (so loader_create
// reads their headers). The loader runs the extremes of the augmentation:
// random-resized-crop with tiny crops (no DCT down-scaling: the large image is
// decoded at full size), whole-image crops (maximum down-scaling), the eval
// transform, mixup and cutmix, colour jitter. For each, the peak resident set
// over several epochs must not grow past what loader_create left resident
// (by more than a little slack for thread stacks and skip messages), and the
// loader's plan (loader_memory_bytes / loader_plan_bytes) must cover what
// creating it added. Without the worst-case reservation the large image's
// decode grows the resident set by ~10 MiB here and the test fails.
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "core/sysinfo.h"
#include "input/loader.h"
#include "input_testutil.h"
#include "testutil.h"

#define SLACK ((int64_t)2 << 20)
enum { N = 24, BIG_W = 1800, BIG_H = 1400 };

static char path[1024];

static void write_shard(void) {
  uint8_t *recs[N];
  int64_t lens[N], ids[N];
  int32_t labels[N];
  for (int i = 0; i < N; i++) {
    int w = 24 + i, h = 20 + 2 * i;
    if (i == 5) {
      recs[i] = it_jpeg_make(BIG_W, BIG_H, 7, 0, &lens[i]);   // the large source
    } else if (i == 9) {
      uint8_t *px = it_make_image(300, 200, 1, 9);           // grayscale
      recs[i] = it_jpeg_encode(px, 300, 200, TJPF_GRAY, TJSAMP_GRAY, 90, 0, &lens[i]);
      free(px);
    } else if (i == 13) {
      uint8_t *px = it_make_image(640, 480, 4, 13);          // CMYK (Adobe)
      recs[i] = it_jpeg_encode(px, 640, 480, TJPF_CMYK, TJSAMP_444, 90, 0, &lens[i]);
      free(px);
    } else {
      recs[i] = it_jpeg_make(w, h, (uint32_t)i, 0, &lens[i]);
    }
    labels[i] = i % 3;
    ids[i] = 500 + i;
  }
  snprintf(path, sizeof path, "%s", it_path("loader_peak.h5"));
  it_shard_write(path, SHARD_CODEC_JPEG, 3, 0, 0, 0, N, recs, lens, labels, ids);
  for (int i = 0; i < N; i++) free(recs[i]);
}

// Resets the peak (VmHWM) to the current resident set; 0 when the kernel refused.
static int reset_peak(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY);
  if (fd < 0) return 0;
  int ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

static void run_case(const char *what, int train, float scale_lo, float scale_hi, float mixup, float cutmix,
                     float jitter) {
  char *paths[1] = {path};
  loader_cfg c;
  loader_cfg_defaults(&c);
  c.shards = paths;
  c.nshards = 1;
  c.batch = 6;
  c.threads = 2;
  c.out_size = 48;
  c.out_channels = 3;
  c.train = train;
  c.rrc_scale[0] = scale_lo;
  c.rrc_scale[1] = scale_hi;
  c.jitter = jitter;
  c.mixup_alpha = mixup;
  c.cutmix_alpha = cutmix;
  dp_err err;
  dp_err_clear(&err);
  loader_dims d;
  TU_CHECK(loader_scan(&c, &d, &err) == 0, "loader_scan: %s", err.msg);
  int64_t rss0 = dp_proc_status_bytes("VmRSS");
  loader *l = loader_create(&c, &err);
  TU_CHECK(l != NULL, "loader_create: %s", err.msg);
  if (!l) return;
  int64_t rss1 = dp_proc_status_bytes("VmRSS");
  int had_reset = reset_peak();
  int64_t base = had_reset ? rss1 : dp_proc_status_bytes("VmHWM");
  int64_t batches = 0;
  for (int e = 0; e < 4; e++) {
    loader_start_epoch(l, e);
    while (loader_next_batch(l)) batches++;
  }
  int64_t peak = dp_proc_status_bytes("VmHWM");
  int64_t plan = loader_memory_bytes(l);
  printf("%-34s created +%6.2f MiB (plan %6.2f MiB, scan %6.2f), %lld batches: peak +%5.2f MiB over it%s\n", what,
         (double)(rss1 - rss0) / 1048576.0, (double)plan / 1048576.0,
         (double)loader_plan_bytes(&c, &d) / 1048576.0, (long long)batches, (double)(peak - base) / 1048576.0,
         had_reset ? "" : " (peak not resettable: from the earlier peak)");
  TU_CHECK(peak - base <= SLACK, "%s: the resident set grew %.2f MiB while loading (slack %.0f MiB)", what,
           (double)(peak - base) / 1048576.0, (double)SLACK / 1048576.0);
  TU_CHECK(plan + SLACK >= rss1 - rss0, "%s: creating the loader added %.2f MiB, its plan says %.2f MiB", what,
           (double)(rss1 - rss0) / 1048576.0, (double)plan / 1048576.0);
  TU_CHECK(d.max_decode_bytes >= (int64_t)BIG_W * BIG_H * 3, "%s: worst-case decode %lld below the large image",
           what, (long long)d.max_decode_bytes);
  loader_destroy(l);
}

int main(void) {
  if (getenv("DPTRAIN_SANITIZED")) {
    printf("skip: the loader's peak RSS is not measurable under ASan (shadow memory, quarantine); "
           "this test runs in the default suite\n");
    return 77;
  }
  write_shard();
  run_case("rrc tiny crops (full-size decode)", 1, 0.001f, 0.002f, 0, 0, 0);
  run_case("rrc whole image (DCT down-scale)", 1, 1.0f, 1.0f, 0, 0, 0);
  run_case("eval transform", 0, 0.08f, 1.0f, 0, 0, 0);
  run_case("mixup + cutmix + jitter", 1, 0.08f, 1.0f, 0.4f, 1.0f, 0.4f);
  return tu_finish("test_loader_peak");
}
