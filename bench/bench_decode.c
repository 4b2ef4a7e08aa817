// Input-pipeline throughput, side by side in one run (see bench_input.sh):
//   raw      tjDecompress2 of each JPEG into an RGB buffer, nothing else;
//   fused    our per-sample path on one thread: header, RandomResizedCrop
//            params, DCT-scale pick, tjDecompress2 (STOPONWARNING), crop +
//            bilinear resize + flip + normalise into float (224, 224, 3);
//   loader   the full loader (pread from an HDF5 shard, N decode threads,
//            batches of 32) at 1 and 2 threads.
// The JPEGs are synthetic photos (smooth shapes + sensor-like noise),
// 224x224, quality 90, 4:2:0 by default; they are also written as files for
// bench/torch_loader.py so PyTorch decodes the very same bytes.
// For the study's input-pipeline term (bench/bench_input_180kb.sh) the photos
// are product-photo sized: --width 1000 --height 800 --quality 92 and
// --target-kb 180 tunes the noise so the mean file is ~180 KB (the dataset's
// documented average); --out-sizes measures the fused path per training
// image size, and --json writes the figures for `dptrain study --input-bench`.
//
// usage: bench_decode [--n N] [--seconds S] [--dir DIR] [--threads "1 2"] [--size PX]
//                     [--width W --height H] [--quality Q] [--noise A | --target-kb K]
//                     [--out-sizes "224"] [--json FILE]
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <turbojpeg.h>

#include <unistd.h>

#include "core/afile.h"
#include "core/check.h"
#include "core/opts.h"
#include "core/rng.h"
#include "core/timer.h"
#include "input/augment.h"
#include "input/decode.h"
#include "input/loader.h"
#include "input/shard.h"

static uint8_t *make_photo(int w, int h, uint32_t seed, double noise) {
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
        v += noise * (dp_rng_uniform(&r) - 0.5) * 2;   // noise: photo-like entropy
        p[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  return p;
}

static unsigned long compress_one(tjhandle tc, const uint8_t *img, int w, int h, int q, unsigned char **out) {
  unsigned long ol = 0;
  *out = NULL;
  if (tjCompress2(tc, img, w, 0, h, TJPF_RGB, out, &ol, TJSAMP_420, q, 0))
    DP_FATAL("tjCompress2", "bench", "%s", tjGetErrorStr2(tc));
  return ol;
}

// Noise amplitude whose photos compress to ~target bytes on average (bisection
// over the mean of a few sample images; JPEG size grows with the noise).
static double tune_noise(tjhandle tc, int w, int h, int q, double target) {
  double lo = 0, hi = 96;
  for (int it = 0; it < 10; it++) {
    double mid = 0.5 * (lo + hi), sum = 0;
    for (uint32_t k = 0; k < 3; k++) {
      uint8_t *img = make_photo(w, h, 1000 + k, mid);
      unsigned char *out;
      sum += (double)compress_one(tc, img, w, h, q, &out);
      tjFree(out);
      free(img);
    }
    if (sum / 3 < target) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

#define MAX_OUT 8

static double thread_cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
  int n, size, width, height, quality;
  double seconds, noise, target_kb;
  char dir[1024], threads[256], out_sizes[256], json[1024];
} args_t;
static const dp_opt arg_list[] = {
    DP_OPT_I(args_t, "n", DP_OPT_INT, n, 1, 100000, 0, "JPEGs to generate"),
    DP_OPT_F(args_t, "seconds", DP_OPT_DOUBLE, seconds, 0, 3600, DP_OPT_LO_OPEN, "time per measurement"),
    DP_OPT_S(args_t, "dir", dir, 0, "scratch directory"),
    DP_OPT_S(args_t, "threads", threads, 0, "loader thread counts to measure, space-separated"),
    DP_OPT_I(args_t, "size", DP_OPT_INT, size, 16, 8192, 0, "image side in pixels (width = height)"),
    DP_OPT_I(args_t, "width", DP_OPT_INT, width, 0, 8192, 0, "image width (0: --size)"),
    DP_OPT_I(args_t, "height", DP_OPT_INT, height, 0, 8192, 0, "image height (0: --size)"),
    DP_OPT_I(args_t, "quality", DP_OPT_INT, quality, 1, 100, 0, "JPEG quality"),
    DP_OPT_F(args_t, "noise", DP_OPT_DOUBLE, noise, 0, 255, 0, "noise amplitude of the synthetic photos"),
    DP_OPT_F(args_t, "target-kb", DP_OPT_DOUBLE, target_kb, 0, 1e5, 0, "tune the noise to this mean JPEG size (0: off)"),
    DP_OPT_S(args_t, "out-sizes", out_sizes, 0, "output sizes of the fused path, space-separated"),
    DP_OPT_S(args_t, "json", json, 0, "also write the figures as JSON (for dptrain study --input-bench)"),
};
static const dp_opts arg_table = {
    "bench_decode", arg_list, (int)(sizeof arg_list / sizeof arg_list[0]),
    "usage: bench_decode [--n 64] [--seconds 3] [--dir D] [--threads \"1 2\"] [--size 224] [--width W --height H]\n"
    "                    [--quality 90] [--noise 12 | --target-kb K] [--out-sizes \"224\"] [--json FILE]\n",
    0};

int main(int argc, char **argv) {
  args_t a = {64, 224, 0, 0, 90, 3.0, 12.0, 0, "/tmp/dp_bench_jpegs", "1 2", "224", ""};
  int prc = dp_opts_parse(&arg_table, &a, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  int n = a.n, size = a.size, width = a.width, height = a.height, quality = a.quality;
  double seconds = a.seconds, noise = a.noise, target_kb = a.target_kb;
  const char *dir = a.dir, *threads = a.threads, *out_sizes_s = a.out_sizes;
  const char *json = a.json[0] ? a.json : NULL;
  if (!width) width = size;
  if (!height) height = size;
  if (n < 1 || width < 16 || height < 16 || quality < 1 || quality > 100 || !(seconds > 0))
    DP_FATAL("arguments", "n >= 1, width/height >= 16, 1 <= quality <= 100, seconds > 0", "bad values");
  int out_sizes[MAX_OUT], nout = 0;
  for (const char *t = out_sizes_s; *t && nout < MAX_OUT;) {
    char *end;
    long v = strtol(t, &end, 10);
    if (end == t) break;
    if (v < 8 || v > 2048) DP_FATAL("arguments", "--out-sizes takes sizes 8..2048", "got %ld", v);
    out_sizes[nout++] = (int)v;
    t = end;
  }
  if (!nout) DP_FATAL("arguments", "--out-sizes \"128 224\"", "no output size");
  char path[2048];
  snprintf(path, sizeof path, "%s/img", dir);
  if ((mkdir(dir, 0755) && errno != EEXIST) || (mkdir(path, 0755) && errno != EEXIST))
    DP_FATAL("mkdir", "is --dir writable?", "%s: %s", path, dp_errno_str());
  uint8_t **jp = dp_calloc((size_t)n, sizeof(uint8_t *), "jpegs");
  int64_t *len = dp_calloc((size_t)n, sizeof(int64_t), "jpeg sizes");
  tjhandle tc = tjInitCompress();
  PTR_CHECK(tc, "tjInitCompress");
  if (target_kb > 0) noise = tune_noise(tc, width, height, quality, target_kb * 1024);
  double total_bytes = 0;
  for (int i = 0; i < n; i++) {
    uint8_t *img = make_photo(width, height, (uint32_t)i, noise);
    unsigned char *out = NULL;
    unsigned long ol = compress_one(tc, img, width, height, quality, &out);
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
    DP_CHECK(fclose(f) == 0, "fclose", "disk full?");
  }
  tjDestroy(tc);
  double mean_bytes = total_bytes / n;
  printf("jpegs: %d x %dx%d q%d 4:2:0, noise %.2f, mean %.1f KB, written to %s/img\n", n, width, height, quality,
         noise, mean_bytes / 1024, dir);

  // Raw tjDecompress2 loop and our fused path (per output size, float and
  // uint8 output), measured in alternating windows; the best window of each
  // counts, which resists the noise of a shared machine (all see the same
  // conditions).
  tjhandle td = tjInitDecompress();
  PTR_CHECK(td, "tjInitDecompress");
  uint8_t *rgb = dp_malloc((size_t)width * height * 3, "rgb");
  decoder *d = decoder_create();
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  int maxo = 0;
  for (int k = 0; k < nout; k++) maxo = out_sizes[k] > maxo ? out_sizes[k] : maxo;
  float *dst = dp_aligned_alloc(4096, (size_t)maxo * maxo * 3 * sizeof(float), "dst");
  const float sc[2] = {0.08f, 1.0f}, ra[2] = {0.75f, 4.0f / 3.0f};
  const int rounds = 8;
  double raw_rate = 0, el;
  double fused_rate[MAX_OUT][2] = {{0}}, best_dec[MAX_OUT][2] = {{0}}, best_aug[MAX_OUT][2] = {{0}};
  // Also per CPU-second of this thread: what one core does when it has the
  // CPU, whatever else runs on a shared machine (the study's per-core rate).
  double fused_cpu_rate[MAX_OUT][2] = {{0}}, raw_cpu_rate = 0;
  int64_t seq = 0;
  for (int round = 0; round < rounds; round++) {
    int64_t cnt = 0;
    double t0 = dp_now(), c0 = thread_cpu_s();
    do {
      for (int i = 0; i < n; i++, cnt++)
        if (tjDecompress2(td, jp[i], (unsigned long)len[i], rgb, width, 0, height, TJPF_RGB, 0))
          DP_FATAL("tjDecompress2", "bench", "%s", tjGetErrorStr2(td));
    } while ((el = dp_now() - t0) < seconds / rounds);
    if (cnt / el > raw_rate) raw_rate = cnt / el;
    double cel = thread_cpu_s() - c0;
    if (cel > 0 && cnt / cel > raw_cpu_rate) raw_cpu_rate = cnt / cel;
    for (int k = 0; k < nout; k++)
      for (int m = 0; m < 2; m++) {
        // Two outputs: float NHWC normalised (CPU training), uint8 NHWC (GPU path).
        aug_out o;
        aug_out_init(&o, out_sizes[k], 3, 0, m, mean, std);
        aug_scratch *as = aug_scratch_create(&o);
        double tdec = 0, taug = 0;
        cnt = 0;
        t0 = dp_now();
        double c1 = thread_cpu_s();
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
            decoder_pick_scale(p.cw, p.ch, out_sizes[k], &num, &den);
            if (decoder_jpeg_decode(d, jp[i], len[i], &h, 3, num, den, &v, &e))
              DP_FATAL("decode", "bench", "%s", e.msg);
            double b = dp_now();
            aug_render(&v, h.w, h.h, &p, &o, as, dst);
            taug += dp_now() - b;
            tdec += b - a;
          }
        } while ((el = dp_now() - t0) < seconds / rounds);
        aug_scratch_destroy(as);
        double cel = thread_cpu_s() - c1;
        if (cel > 0 && cnt / cel > fused_cpu_rate[k][m]) fused_cpu_rate[k][m] = cnt / cel;
        if (cnt / el > fused_rate[k][m]) {
          fused_rate[k][m] = cnt / el;
          best_dec[k][m] = tdec / cnt;
          best_aug[k][m] = taug / cnt;
        }
      }
  }
  printf("raw tjDecompress2, 1 thread: %.0f img/s (best of %d windows); %.0f img/s per CPU-second\n", raw_rate, rounds,
         raw_cpu_rate);
  for (int k = 0; k < nout; k++) {
    char tag[32] = "";   // the default single 224 px output keeps bench_input.sh's line format
    if (nout > 1 || out_sizes[k] != 224) snprintf(tag, sizeof tag, " to %d px", out_sizes[k]);
    printf("fused decode+RRC+flip+normalise%s, 1 thread: %.0f img/s (%.1f%% of raw); "
           "per image: header+decode %.1f us, crop/resize/flip/normalise %.1f us\n",
           tag, fused_rate[k][0], 100.0 * fused_rate[k][0] / raw_rate, 1e6 * best_dec[k][0], 1e6 * best_aug[k][0]);
    printf("fused decode+RRC+flip to uint8%s, 1 thread: %.0f img/s (%.1f%% of raw); "
           "per image: header+decode %.1f us, crop/resize/flip %.1f us\n",
           tag, fused_rate[k][1], 100.0 * fused_rate[k][1] / raw_rate, 1e6 * best_dec[k][1], 1e6 * best_aug[k][1]);
    printf("  per CPU-second of the thread%s: float %.0f img/s, uint8 %.0f img/s\n", tag, fused_cpu_rate[k][0],
           fused_cpu_rate[k][1]);
  }
  tjDestroy(td);
  decoder_destroy(d);
  free(dst);
  double t0, read_mbps[2] = {0, 0};

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
    read_mbps[mode] = bytes / el / 1e6;
    free(rb);
    shard_close(sh);
  }

  char *paths[1] = {path};
  int loader_threads[MAX_OUT], nload = 0;
  double loader_rate[MAX_OUT];
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
    c.out_size = out_sizes[0];
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
    if (nload < MAX_OUT) loader_threads[nload] = (int)nt, loader_rate[nload++] = imgs / el;
  }
  if (json) {
    dp_err je;
    dp_err_clear(&je);
    dp_afile *af = dp_afile_open(json, &je);
    if (!af) DP_FATAL("writing --json", "is the path writable?", "%s", je.msg);
    FILE *jf = dp_afile_stream(af);
    char cpu[256] = "unknown";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
      char line[512];
      while (fgets(line, sizeof line, ci))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
          snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
          cpu[strcspn(cpu, "\n")] = 0;
          break;
        }
      fclose(ci);
    }
    double la = NAN;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
      if (fscanf(lf, "%lf", &la) != 1) la = NAN;
      fclose(lf);
    }
    fprintf(jf, "{\n  \"kind\": \"input_bench\",\n  \"machine\": {\"cpu_model\": \"%s\", \"cpus_online\": %ld, "
                "\"load_1m_end\": %.2f},\n", cpu, sysconf(_SC_NPROCESSORS_ONLN), la);
    fprintf(jf, "  \"jpeg\": {\"count\": %d, \"width\": %d, \"height\": %d, \"quality\": %d, \"subsampling\": \"4:2:0\", "
                "\"noise\": %.3f, \"mean_bytes\": %.0f},\n", n, width, height, quality, noise, mean_bytes);
    // Per core = per CPU-second of the decoding thread (robust to other jobs);
    // the wall-clock best windows are kept for comparison.
    fprintf(jf, "  \"raw_decode_img_s_per_core\": %.1f,\n  \"raw_decode_img_s_wall\": %.1f,\n  \"fused\": [", raw_cpu_rate,
            raw_rate);
    for (int k = 0; k < nout; k++)
      fprintf(jf,
              "%s\n    {\"out_size\": %d, \"float_img_s_per_core\": %.1f, \"uint8_img_s_per_core\": %.1f, "
              "\"float_img_s_wall\": %.1f, \"uint8_img_s_wall\": %.1f}",
              k ? "," : "", out_sizes[k], fused_cpu_rate[k][0], fused_cpu_rate[k][1], fused_rate[k][0], fused_rate[k][1]);
    fprintf(jf, "\n  ],\n  \"loader\": [");
    for (int k = 0; k < nload; k++)
      fprintf(jf, "%s\n    {\"threads\": %d, \"out_size\": %d, \"img_s\": %.1f}", k ? "," : "", loader_threads[k],
              out_sizes[0], loader_rate[k]);
    fprintf(jf, "\n  ],\n  \"record_read_MBps\": {\"pread\": %.1f, \"h5dread\": %.1f},\n", read_mbps[0], read_mbps[1]);
    fprintf(jf, "  \"method\": \"fused = header + RandomResizedCrop params + DCT-scaled tjDecompress2 + crop/resize/flip "
                "(+ normalise for float) on one thread; per core = images per CPU-second of the thread, best of %d alternating windows of %.3f s\"\n}\n",
            rounds, seconds / rounds);
    if (dp_afile_commit(af, &je)) DP_FATAL("writing --json", "disk full?", "%s", je.msg);
    printf("wrote %s\n", json);
  }
  for (int i = 0; i < n; i++) free(jp[i]);
  free(jp);
  free(len);
  free(rgb);
  return 0;
}
