// dptrain data inspect: counts per class (and %), bytes, image sizes (from
// JPEG headers or raw_shape) and missing metadata per column, over all files.
// Parses JPEG headers only (no pixel decode), so it is fast; `verify` does the full decode.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/opts.h"
#include "data/data_tools.h"
#include "input/shard.h"

typedef struct {
  int64_t n, lo, hi;
  double sum;
} stat_acc;
static void stat_add(stat_acc *a, int64_t v) {
  if (a->n == 0 || v < a->lo) a->lo = v;
  if (a->n == 0 || v > a->hi) a->hi = v;
  a->sum += (double)v;
  a->n++;
}

int data_inspect_main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fprintf(argc < 2 ? stderr : stdout, "usage: dptrain data inspect FILE...\n");
    return argc < 2 ? 2 : 0;
  }
  tjhandle tj = tjInitDecompress();
  PTR_CHECK(tj, "tjInitDecompress");
  int64_t *count = NULL, records = 0, bytes = 0, bad_header = 0, missing[META_NCOLS] = {0},
          absent[META_NCOLS] = {0};
  stat_acc w = {0}, h = {0}, rb = {0};
  int nclasses = 0, errors = 0;
  char **names = NULL;
  uint8_t *buf = NULL;
  int64_t cap = 0;
  for (int f = 1; f < argc; f++) {
    dp_err err;
    shard *s = shard_open(argv[f], &err);
    if (!s) {
      fprintf(stderr, "inspect: %s\n", err.msg);
      errors++;
      continue;
    }
    if (!count) {
      nclasses = s->num_classes;
      count = dp_calloc((size_t)nclasses, sizeof(int64_t), "class counts");
      names = dp_calloc((size_t)nclasses, sizeof(char *), "class names");
      for (int c = 0; c < nclasses; c++) names[c] = dp_strdup(s->class_names[c]);
    } else if (s->num_classes != nclasses) {
      fprintf(stderr, "inspect: %s has %d classes, earlier files %d; skipped\n", argv[f], s->num_classes, nclasses);
      errors++;
      shard_close(s);
      continue;
    }
    for (int64_t i = 0; i < s->n; i++) {
      count[s->labels[i]]++;
      int64_t len = shard_record_size(s, i);
      stat_add(&rb, len);
      if (s->codec == SHARD_CODEC_RAW) {
        stat_add(&w, s->raw_w);
        stat_add(&h, s->raw_h);
        continue;
      }
      // The header (up to SOS) is almost always in the first 64 KB; read
      // more only when it is not, so inspect stays cheap on large datasets.
      int iw = 0, ih = 0, ss = 0, cs = 0, ok = 0;
      for (int64_t want = 65536; len > 0; want *= 4) {
        int64_t take = want < len ? want : len;
        if (take > cap) {
          buf = dp_realloc(buf, (size_t)take, "record buffer");
          cap = take;
        }
        ok = shard_read_record_prefix(s, i, buf, take, &err) == take &&
             tjDecompressHeader3(tj, buf, (unsigned long)take, &iw, &ih, &ss, &cs) == 0;
        if (ok || take == len) break;
        tjDestroy(tj);   // see below: a failed header read poisons the handle
        tj = tjInitDecompress();
        PTR_CHECK(tj, "tjInitDecompress");
      }
      if (!ok || iw < 1 || ih < 1) {
        // libjpeg-turbo 2.1.5: after a failed header read, the next
        // tjDecompressHeader3 on the same handle can "succeed" with 0 x 0.
        tjDestroy(tj);
        tj = tjInitDecompress();
        PTR_CHECK(tj, "tjInitDecompress");
        ok = 0;
      }
      if (ok) {
        stat_add(&w, iw);
        stat_add(&h, ih);
      } else {
        bad_header++;
      }
    }
    for (int c = 0; c < META_NCOLS; c++) {
      if (!s->meta[c]) {
        absent[c] += s->n;
        continue;
      }
      for (int64_t i = 0; i < s->n; i++) missing[c] += s->meta[c][i] == SHARD_META_MISSING;
    }
    records += s->n;
    bytes += s->blob_size;
    printf("%s: %lld records, %.1f MB, codec %s\n", argv[f], (long long)s->n, (double)s->blob_size / 1e6,
           s->codec == SHARD_CODEC_RAW ? "raw" : "jpeg");
    shard_close(s);
  }
  tjDestroy(tj);
  free(buf);
  if (!count) return 2;
  printf("\ntotal: %lld records, %.1f MB (%.1f KB/record, min %lld B, max %lld B)\n", (long long)records,
         (double)bytes / 1e6, rb.n ? rb.sum / (double)rb.n / 1e3 : 0.0, (long long)rb.lo, (long long)rb.hi);
  printf("\n%-4s %-20s %10s %8s\n", "id", "class", "count", "%");
  for (int c = 0; c < nclasses; c++) {
    printf("%-4d %-20s %10lld %7.2f%%\n", c, names[c], (long long)count[c],
           records ? 100.0 * (double)count[c] / (double)records : 0.0);
    free(names[c]);
  }
  if (w.n)
    printf("\nimage width  min %lld mean %.1f max %lld\nimage height min %lld mean %.1f max %lld\n",
           (long long)w.lo, w.sum / (double)w.n, (long long)w.hi, (long long)h.lo, h.sum / (double)h.n,
           (long long)h.hi);
  if (bad_header) printf("records without a readable JPEG header: %lld\n", (long long)bad_header);
  printf("\n%-14s %10s %8s %s\n", "meta column", "missing", "%", "");
  for (int c = 0; c < META_NCOLS; c++)
    printf("%-14s %10lld %7.2f%% %s\n", shard_meta_names[c], (long long)(missing[c] + absent[c]),
           records ? 100.0 * (double)(missing[c] + absent[c]) / (double)records : 0.0,
           absent[c] == records ? "(column absent)" : absent[c] ? "(absent in some files)" : "");
  free(names);
  free(count);
  return errors ? 2 : 0;
}
