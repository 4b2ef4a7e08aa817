// Input-pipeline throughput, side by side in one run (see bench_input.sh):
//   raw      tjDecompress2 of each JPEG into an RGB buffer, nothing else;
//   fused    our per-sample path on one thread: header, RandomResizedCrop
//            params, DCT-scale pick, tjDecompress2 (STOPONWARNING), crop +
//            bilinear resize + flip + normalise into float (224, 224, 3);
//   loader   the full loader (pread from an HDF5 shard, N decode threads,
//            batches of 32) at 1 and 2 threads.
// The JPEGs are synthetic photos (smooth shapes + sensor-like noise),
// 224x224, quality 90, 4:2:0; they are also written as files for
// bench/torch_loader.py so PyTorch decodes the very same bytes.
//
// usage: bench_decode [--n N] [--seconds S] [--dir DIR] [--threads "1 2"] [--size PX]
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "core/opts.h"
#include "core/check.h"
#include "core/rng.h"
#include "core/timer.h"
#include "input/augment.h"
#include "input/decode.h"
#include "input/loader.h"
#include "input/shard.h"

static uint8_t *make_photo(int w, int h, uint32_t seed) {
  uint8_t *p = dp_malloc((size_t)w * h * 3, "bench image");
  dp_rng r = dp_rng_stream(seed, 99);
  double cx = w * dp_rng_range(&r, 0.3, 0.7), cy = h * dp_rng_range(&r, 0.3, 0.7);
  double rad = w * dp_rng_range(&r, 0.15, 0.35), hue = dp_rng_uniform(&r) * 6.28;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double d = sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
      int in = d < rad;
      for (int c = 0; c < 3; c++) {
        double v = in ? 120 + 90 * sin(hue + 2.1 * c + 0.03 * x) * cos(0.05 * y)
                      : 200 - 0.3 * y + 20 * sin(0.2 * x + c);
        v += 12.0 * (dp_rng_uniform(&r) - 0.5) * 2;   // noise: photo-like entropy
        p[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  return p;
}

typedef struct {
  int n, size;
  double seconds;
  char dir[1024], threads[256];
} args_t;
static const dp_opt arg_list[] = {
    DP_OPT_I(args_t, "n", DP_OPT_INT, n, 1, 100000, 0, "JPEGs to generate"),
    DP_OPT_F(args_t, "seconds", DP_OPT_DOUBLE, seconds, 0, 3600, DP_OPT_LO_OPEN, "time per measurement"),
    DP_OPT_S(args_t, "dir", dir, 0, "scratch directory"),
    DP_OPT_S(args_t, "threads", threads, 0, "loader thread counts to measure, space-separated"),
    DP_OPT_I(args_t, "size", DP_OPT_INT, size, 16, 8192, 0, "image side in pixels"),
};
static const dp_opts arg_table = {"bench_decode", arg_list, 5,
                                  "usage: bench_decode [--n 64] [--seconds 3] [--dir D] [--threads \"1 2\"] [--size 224]\n", 0};

int main(int argc, char **argv) {
  args_t a = {64, 224, 3.0, "/tmp/dp_bench_jpegs", "1 2"};
  int prc = dp_opts_parse(&arg_table, &a, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  int n = a.n, size = a.size;
  double seconds = a.seconds;
  const char *dir = a.dir, *threads = a.threads;
  char path[2048];
  snprintf(path, sizeof path, "%s/img", dir);
  if ((mkdir(dir, 0755) && errno != EEXIST) || (mkdir(path, 0755) && errno != EEXIST))
    DP_FATAL("mkdir", "is --dir writable?", "%s: %s", path, dp_errno_str());
  uint8_t **jp = dp_calloc((size_t)n, sizeof(uint8_t *), "jpegs");
  int64_t *len = dp_calloc((size_t)n, sizeof(int64_t), "jpeg sizes");
  tjhandle tc = tjInitCompress();
  PTR_CHECK(tc, "tjInitCompress");
  double total_bytes = 0;
  for (int i = 0; i < n; i++) {
    uint8_t *img = make_photo(size, size, (uint32_t)i);
    unsigned char *out = NULL;
    unsigned long ol = 0;
    if (tjCompress2(tc, img, size, 0, size, TJPF_RGB, &out, &ol, TJSAMP_420, 90, 0))
      DP_FATAL("tjCompress2", "bench", "%s", tjGetErrorStr2(tc));
    jp[i] = dp_malloc(ol, "jpeg");
    memcpy(jp[i], out, ol);
    len[i] = (int64_t)ol;
    total_bytes += (double)ol;
    tjFree(out);
    free(img);
    snprintf(path, sizeof path, "%s/img/%04d.jpg", dir, i);
    FILE *f = fopen(path, "wb");
    PTR_CHECK(f, "writing a bench JPEG");
    DP_CHECK(fwrite(jp[i], 1, ol, f) == ol, "fwrite", "disk full?");
    fclose(f);
  }
  tjDestroy(tc);
  printf("jpegs: %d x %dx%d q90 4:2:0, mean %.1f KB, written to %s/img\n", n, size, size,
         total_bytes / n / 1024, dir);

  // Raw tjDecompress2 loop and our fused path, measured in alternating
  // windows; the best window of each counts, which resists the noise of a
  // shared machine (both see the same conditions).
  tjhandle td = tjInitDecompress();
  PTR_CHECK(td, "tjInitDecompress");
  uint8_t *rgb = dp_malloc((size_t)size * size * 3, "rgb");
  decoder *d = decoder_create();
  // Two outputs: float NHWC normalised (CPU training), uint8 NHWC (GPU path).
  aug_out o[2];
  aug_scratch *as[2];
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  for (int m = 0; m < 2; m++) {
    aug_out_init(&o[m], 224, 3, 0, m, mean, std);
    as[m] = aug_scratch_create(&o[m]);
  }
  float *dst = dp_aligned_alloc(4096, (size_t)224 * 224 * 3 * sizeof(float), "dst");
  const float sc[2] = {0.08f, 1.0f}, ra[2] = {0.75f, 4.0f / 3.0f};
  const int rounds = 8;
  double raw_rate = 0, fused_rate[2] = {0, 0}, best_dec[2] = {0, 0}, best_aug[2] = {0, 0}, el;
  int64_t seq = 0;
  for (int round = 0; round < rounds; round++) {
    int64_t cnt = 0;
    double t0 = dp_now();
    do {
      for (int i = 0; i < n; i++, cnt++)
        if (tjDecompress2(td, jp[i], (unsigned long)len[i], rgb, size, 0, size, TJPF_RGB, 0))
          DP_FATAL("tjDecompress2", "bench", "%s", tjGetErrorStr2(td));
    } while ((el = dp_now() - t0) < seconds / rounds);
    if (cnt / el > raw_rate) raw_rate = cnt / el;
    for (int m = 0; m < 2; m++) {
      double tdec = 0, taug = 0;
      cnt = 0;
      t0 = dp_now();
      do {
        for (int i = 0; i < n; i++, cnt++, seq++) {
          dp_rng r = dp_rng_stream3(1, 0, (uint64_t)seq);
          img_header h;
          img_view v;
          aug_params p;
          dp_err e;
          double a = dp_now();
          if (decoder_jpeg_header(d, jp[i], len[i], &h, &e)) DP_FATAL("decode", "bench", "%s", e.msg);
          aug_train_params(&r, h.w, h.h, sc, ra, 0.5f, 0.0f, &p);
          int num, den;
          decoder_pick_scale(p.cw, p.ch, 224, &num, &den);
          if (decoder_jpeg_decode(d, jp[i], len[i], &h, 3, num, den, &v, &e))
            DP_FATAL("decode", "bench", "%s", e.msg);
          double b = dp_now();
          aug_render(&v, h.w, h.h, &p, &o[m], as[m], dst);
          taug += dp_now() - b;
          tdec += b - a;
        }
      } while ((el = dp_now() - t0) < seconds / rounds);
      if (cnt / el > fused_rate[m]) {
        fused_rate[m] = cnt / el;
        best_dec[m] = tdec / cnt;
        best_aug[m] = taug / cnt;
      }
    }
  }
  printf("raw tjDecompress2, 1 thread: %.0f img/s (best of %d windows)\n", raw_rate, rounds);
  printf("fused decode+RRC+flip+normalise, 1 thread: %.0f img/s (%.1f%% of raw); "
         "per image: header+decode %.1f us, crop/resize/flip/normalise %.1f us\n",
         fused_rate[0], 100.0 * fused_rate[0] / raw_rate, 1e6 * best_dec[0], 1e6 * best_aug[0]);
  printf("fused decode+RRC+flip to uint8, 1 thread: %.0f img/s (%.1f%% of raw); "
         "per image: header+decode %.1f us, crop/resize/flip %.1f us\n",
         fused_rate[1], 100.0 * fused_rate[1] / raw_rate, 1e6 * best_dec[1], 1e6 * best_aug[1]);
  tjDestroy(td);
  aug_scratch_destroy(as[0]);
  aug_scratch_destroy(as[1]);
  decoder_destroy(d);
  free(dst);
  double t0;

  // Full loader from an HDF5 shard of the same bytes.
  snprintf(path, sizeof path, "%s/bench.h5", dir);
  const char *cn[2] = {"a", "b"};
  shard_writer_cfg wc = {SHARD_CODEC_JPEG, 2, cn, 0, 0, 0, NULL};
  dp_err err;
  dp_err_clear(&err);
  shard_writer *w = shard_writer_create(path, &wc, &err);
  if (!w) DP_FATAL("shard_writer_create", "bench", "%s", err.msg);
  for (int i = 0; i < n; i++)
    if (shard_writer_add(w, jp[i], len[i], i % 2, i, NULL, &err)) DP_FATAL("shard", "bench", "%s", err.msg);
  if (shard_writer_close(w, &err)) DP_FATAL("shard", "bench", "%s", err.msg);
  // Record reads: pread at the blob's file offset vs H5Dread (page cache warm).
  for (int mode = 0; mode < 2; mode++) {
    shard *sh = shard_open(path, &err);
    if (!sh) DP_FATAL("shard_open", "bench", "%s", err.msg);
    if (mode == 1 && shard_force_h5dread(sh, &err)) DP_FATAL("shard_force_h5dread", "bench", "%s", err.msg);
    uint8_t *rb = dp_malloc(1 << 20, "read buffer");
    int64_t reads = 0;
    double bytes = 0;
    dp_rng rr = dp_rng_stream(5, 5);
    t0 = dp_now();
    do {
      for (int i = 0; i < 256; i++, reads++) {
        int64_t k = (int64_t)dp_rng_below(&rr, (uint64_t)sh->n);
        int64_t got = shard_read_record(sh, k, rb, 1 << 20, &err);
        if (got < 0) DP_FATAL("shard_read_record", "bench", "%s", err.msg);
        bytes += (double)got;
      }
    } while ((el = dp_now() - t0) < seconds / 2);
    printf("record reads (%s), 1 thread: %.0f records/s, %.0f MB/s\n",
           mode == 0 ? "pread" : "H5Dread", reads / el, bytes / el / 1e6);
    free(rb);
    shard_close(sh);
  }

  char *paths[1] = {path};
  for (const char *t = threads; *t;) {
    char *end;
    long nt = strtol(t, &end, 10);
    if (end == t) break;
    t = end;
    loader_cfg c;
    loader_cfg_defaults(&c);
    c.shards = paths;
    c.nshards = 1;
    c.batch = 32;
    c.threads = (int)nt;
    c.prefetch = 3;
    c.drop_last = 0;
    loader *l = loader_create(&c, &err);
    if (!l) DP_FATAL("loader_create", "bench", "%s", err.msg);
    // Average over the whole time (windows of 1/8 of it shown for information).
    int64_t imgs = 0, win_imgs = 0, ep = 0;
    double best = 0, w0;
    t0 = w0 = dp_now();
    do {
      loader_start_epoch(l, ep++);
      const loader_batch *b;
      while ((b = loader_next_batch(l))) {
        imgs += b->n;
        win_imgs += b->n;
        double now = dp_now();
        if (now - w0 >= seconds / 8) {
          if (win_imgs / (now - w0) > best) best = win_imgs / (now - w0);
          win_imgs = 0;
          w0 = now;
        }
      }
    } while ((el = dp_now() - t0) < seconds);
    loader_stats st = loader_get_stats(l);
    // The average is the figure: a prefetch queue makes short windows bursty.
    printf("loader (HDF5 pread, batch 32), %ld thread(s): %.0f img/s (%.0f img/s per thread; "
           "best window %.0f img/s), consumer waited %.2f s of %.2f s\n",
           nt, imgs / el, imgs / el / nt, best, st.wait_s, el);
    loader_destroy(l);
  }
  for (int i = 0; i < n; i++) free(jp[i]);
  free(jp);
  free(len);
  free(rgb);
  return 0;
}
