// dptrain data verify: open every shard (schema, offsets, labels), decode every
// record, and list the corrupt ones by file, index and id.
// Exit codes: 0 = schemas fine (corrupt records are listed but allowed);
// 2 = bad input: a schema error (a shard that does not open), corrupt
// records with --strict, or a bad option; 1 = a runtime failure.
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/opts.h"
#include "data/data_tools.h"
#include "dt_common.h"
#include "input/decode.h"
#include "input/shard.h"

// Each record is checked by the decoder the training loader uses
// (src/input/decode.c: the same header limits, TJFLAG_STOPONWARNING, and the
// CMYK/YCCK conversion), at full size into RGB, so verify and train agree on
// every image: what verify calls corrupt, training skips, and nothing else.
typedef struct {
  decoder *dec;
  uint8_t *rec;
  int64_t rec_cap;
} verify_tls;

// Checks one record; returns NULL if fine, else writes a reason into why.
static const char *check_record(const shard *s, int64_t i, verify_tls *t, char *why, size_t cap) {
  dp_err err;
  dp_err_clear(&err);
  int64_t len = shard_record_size(s, i);
  if (len > t->rec_cap) {
    t->rec = dp_realloc(t->rec, (size_t)len, "record buffer");
    t->rec_cap = len;
  }
  if (shard_read_record(s, i, t->rec, t->rec_cap, &err) < 0) {
    snprintf(why, cap, "read failed: %s", err.msg);
    return why;
  }
  img_view v;
  if (s->codec == SHARD_CODEC_RAW) {
    if (decoder_raw(t->dec, t->rec, len, s->raw_h, s->raw_w, s->raw_c, s->raw_c, &v, &err) == 0) return NULL;
  } else {
    img_header h;
    if (decoder_jpeg_header(t->dec, t->rec, len, &h, &err) == 0 &&
        decoder_jpeg_decode(t->dec, t->rec, len, &h, 3, 1, 1, &v, &err) == 0)
      return NULL;
  }
  snprintf(why, cap, "%s", err.msg);
  return why;
}

typedef struct {
  int strict, quiet, threads;
  const char **files;
  int nfiles;
} verify_args;
static const dp_opt verify_opt_list[] = {
    DP_OPT_I(verify_args, "strict", DP_OPT_INT, strict, 0, 1, DP_OPT_BARE, "exit 2 when any record is corrupt"),
    DP_OPT_I(verify_args, "quiet", DP_OPT_INT, quiet, 0, 1, DP_OPT_BARE, "no per-file summary on stderr"),
    DP_OPT_I(verify_args, "threads", DP_OPT_INT, threads, 1, 4096, DP_OPT_CORES, "decode threads"),
    DP_OPT_L(verify_args, "files", files, nfiles, DP_OPT_POS | DP_OPT_REQUIRED, "shard files (positional FILE...)"),
};
static const dp_opts verify_table = {
    "dptrain data verify", verify_opt_list, 4,
    "usage: dptrain data verify [--strict] [--quiet] [--threads T] FILE...\n"
    "Decodes every record the way training does (src/input/decode.c) and lists the corrupt ones as\n"
    "'CORRUPT<TAB>file<TAB>index<TAB>id<TAB>reason' on stdout.\n"
    "Exit: 0 ok (corrupt records are listed but allowed), 2 a schema error, or corrupt records with\n"
    "--strict, or a bad option (bad input); 1 a runtime failure.\n",
    0};

int data_verify_main(int argc, char **argv) {
  verify_args a = {0, 0, omp_get_max_threads() < dp_opts_cpus() ? omp_get_max_threads() : dp_opts_cpus(), NULL, 0};
  int prc = dp_opts_parse(&verify_table, &a, argc, argv);
  if (prc) {
    free((void *)a.files);
    return prc > 0 ? 0 : 2;
  }
  int strict = a.strict, quiet = a.quiet, threads = a.threads, nf = a.nfiles;
  const char **files = a.files;
  verify_tls *tls = dp_calloc((size_t)threads, sizeof(verify_tls), "verify threads");
  for (int t = 0; t < threads; t++) tls[t].dec = decoder_create();
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
      if (check_record(s, i, t, buf, sizeof buf)) why[i] = dp_strdup(buf);
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
    decoder_destroy(tls[t].dec);
    free(tls[t].rec);
  }
  free(tls);
  free((void *)files);
  if (schema_errors) return 2;
  return strict && total_bad ? 2 : 0;
}
