// dptrain data verify: open every shard (schema, offsets, labels), decode every
// record, and list the corrupt ones by file, index and id.
// Exit codes: 0 = schemas fine (corrupt records are listed but allowed),
// 1 = corrupt records found and --strict given, 2 = a schema error (a shard
// that does not open), 3 = usage error.
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "data/data_tools.h"
#include "dt_common.h"
#include "input/shard.h"

// Largest image we agree to decode; bigger headers are rejected before any
// allocation (a 65535 x 65535 header would otherwise ask for 12 GB).
#define VERIFY_MAX_SIDE 16384
#define VERIFY_MAX_PIXELS (64LL << 20)

typedef struct {
  tjhandle tj;
  uint8_t *rec, *px;
  int64_t rec_cap, px_cap;
} verify_tls;

// Checks one record; returns NULL if fine, else writes a reason into why.
static const char *check_record(const shard *s, int64_t i, verify_tls *t, char *why, size_t cap) {
  dp_err err;
  int64_t len = shard_record_size(s, i);
  if (len > t->rec_cap) {
    t->rec = dp_realloc(t->rec, (size_t)len, "record buffer");
    t->rec_cap = len;
  }
  if (shard_read_record(s, i, t->rec, t->rec_cap, &err) < 0) {
    snprintf(why, cap, "read failed: %s", err.msg);
    return why;
  }
  if (len == 0) {
    snprintf(why, cap, "zero-length record");
    return why;
  }
  if (s->codec == SHARD_CODEC_RAW) {
    int64_t want = (int64_t)s->raw_h * s->raw_w * s->raw_c;
    if (len != want) {
      snprintf(why, cap, "raw record is %lld bytes, raw_shape needs %lld", (long long)len, (long long)want);
      return why;
    }
    return NULL;
  }
  if (len < 4 || t->rec[0] != 0xFF || t->rec[1] != 0xD8) {
    snprintf(why, cap, "not a JPEG (first bytes %02x %02x)", t->rec[0], len > 1 ? t->rec[1] : 0);
    return why;
  }
  int w = 0, h = 0, ss = 0, cs = 0;
  if (tjDecompressHeader3(t->tj, t->rec, (unsigned long)len, &w, &h, &ss, &cs) != 0) {
    snprintf(why, cap, "bad JPEG header: %s", tjGetErrorStr2(t->tj));
    return why;
  }
  if (w < 1 || h < 1 || w > VERIFY_MAX_SIDE || h > VERIFY_MAX_SIDE || (int64_t)w * h > VERIFY_MAX_PIXELS) {
    snprintf(why, cap, "absurd JPEG dimensions %d x %d", w, h);
    return why;
  }
  int gray = cs == TJCS_GRAY;
  int64_t need = (int64_t)w * h * (gray ? 1 : 3);
  if (need > t->px_cap) {
    t->px = dp_realloc(t->px, (size_t)need, "decode buffer");
    t->px_cap = need;
  }
  if (tjDecompress2(t->tj, t->rec, (unsigned long)len, t->px, w, 0, h, gray ? TJPF_GRAY : TJPF_RGB,
                    TJFLAG_STOPONWARNING) != 0) {
    snprintf(why, cap, "JPEG decode failed: %s", tjGetErrorStr2(t->tj));
    return why;
  }
  return NULL;
}

int data_verify_main(int argc, char **argv) {
  int strict = 0, quiet = 0, threads = omp_get_max_threads();
  const char *v;
  char **files = dp_calloc((size_t)argc, sizeof(char *), "file list");
  int nf = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--strict")) strict = 1;
    else if (!strcmp(argv[i], "--quiet")) quiet = 1;
    else if ((v = dt_opt(argc, argv, &i, "--threads"))) threads = (int)dt_parse_i64(v, "--threads");
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: dptrain data verify [--strict] [--quiet] [--threads T] FILE...\n"
             "Lists corrupt records as 'CORRUPT<TAB>file<TAB>index<TAB>id<TAB>reason' on stdout.\n"
             "Exit: 0 ok (corrupt records allowed), 1 corrupt records with --strict, 2 schema error.\n");
      free(files);
      return 0;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "verify: unknown option '%s'\n", argv[i]);
      free(files);
      return 3;
    } else files[nf++] = argv[i];
  }
  if (nf == 0 || threads < 1) {
    fprintf(stderr, "usage: dptrain data verify [--strict] [--quiet] [--threads T] FILE...\n");
    free(files);
    return 3;
  }
  verify_tls *tls = dp_calloc((size_t)threads, sizeof(verify_tls), "verify threads");
  for (int t = 0; t < threads; t++) {
    tls[t].tj = tjInitDecompress();
    PTR_CHECK(tls[t].tj, "tjInitDecompress");
  }
  int64_t schema_errors = 0, total = 0, total_bad = 0;
  for (int f = 0; f < nf; f++) {
    dp_err err;
    shard *s = shard_open(files[f], &err);
    if (!s) {
      printf("SCHEMA_ERROR\t%s\t%s\n", files[f], err.msg);
      schema_errors++;
      continue;
    }
    char **why = dp_calloc((size_t)(s->n + 1), sizeof(char *), "reasons");
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (int64_t i = 0; i < s->n; i++) {
      char buf[600];
      verify_tls *t = &tls[omp_get_thread_num()];
      if (!check_record(s, i, t, buf, sizeof buf)) continue;
      // A TurboJPEG handle that just failed can misreport the next header
      // (seen as "0 x 0" with libjpeg-turbo 2.1.5), so failures get a fresh
      // handle, and the record one more try on it before it is called corrupt.
      tjDestroy(t->tj);
      t->tj = tjInitDecompress();
      PTR_CHECK(t->tj, "tjInitDecompress");
      if (check_record(s, i, t, buf, sizeof buf)) {
        why[i] = dp_strdup(buf);
        tjDestroy(t->tj);
        t->tj = tjInitDecompress();
        PTR_CHECK(t->tj, "tjInitDecompress");
      }
    }
    int64_t bad = 0;
    for (int64_t i = 0; i < s->n; i++) {
      if (!why[i]) continue;
      printf("CORRUPT\t%s\t%lld\t%lld\t%s\n", files[f], (long long)i, (long long)s->ids[i], why[i]);
      free(why[i]);
      bad++;
    }
    if (!quiet)
      fprintf(stderr, "verify: %s: %lld records, %lld corrupt, codec %s, %d classes, read path %s\n",
              files[f], (long long)s->n, (long long)bad, s->codec == SHARD_CODEC_RAW ? "raw" : "jpeg",
              s->num_classes, s->fd >= 0 ? "pread" : "H5Dread");
    total += s->n;
    total_bad += bad;
    free(why);
    shard_close(s);
  }
  printf("SUMMARY\tfiles=%d\tschema_errors=%lld\trecords=%lld\tcorrupt=%lld\n", nf,
         (long long)schema_errors, (long long)total, (long long)total_bad);
  for (int t = 0; t < threads; t++) {
    tjDestroy(tls[t].tj);
    free(tls[t].rec);
    free(tls[t].px);
  }
  free(tls);
  free(files);
  if (schema_errors) return 2;
  return strict && total_bad ? 1 : 0;
}
