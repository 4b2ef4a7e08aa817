#include "train/skiplog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Appends s as one CSV field (quoted when it holds a comma, quote, CR or LF).
static void csv_field(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

int skiplog_open(skiplog *s, const char *path, int rank, dp_err *err) { return skiplog_open_at(s, path, rank, -1, err); }

int skiplog_open_at(skiplog *s, const char *path, int rank, int64_t truncate_to, dp_err *err) {
  memset(s, 0, sizeof *s);
  s->log.fd = -1;
  if (rank != 0) return 0;
  if (dp_alog_open(&s->log, path, truncate_to, err)) return -1;
  s->open = 1;
  if (truncate_to > 0) return 0;   // resumed: the header and earlier rows are there
  dp_alog_printf(&s->log, "rank,epoch,step,file,record,id,reason\n");
  return dp_alog_flush(&s->log, 0, err);
}

int64_t skiplog_size(const skiplog *s) { return s->open ? dp_alog_size(&s->log) : -1; }

int skiplog_collect(skiplog *s, loader *l, dist_ctx *d, int64_t step, int64_t base_decoded, int64_t base_skipped,
                    int64_t *decoded, int64_t *skipped, dp_err *err) {
  loader_skip *k = NULL;
  int64_t n = loader_take_skips(l, &k);
  char *rows = NULL;
  size_t len = 0;
  FILE *mf = open_memstream(&rows, &len);
  PTR_CHECK(mf, "formatting skipped records");
  for (int64_t i = 0; i < n; i++) {
    fprintf(mf, "%d,%lld,%lld,", d->rank, (long long)k[i].epoch, (long long)step);
    csv_field(mf, loader_shard_path(l, k[i].shard));
    fprintf(mf, ",%lld,%lld,", (long long)k[i].record, (long long)k[i].id);
    csv_field(mf, k[i].reason);
    fputc('\n', mf);
  }
  fclose(mf);
  free(k);
  // Variable-length text to rank 0 (collective on every call, even when no
  // rank skipped anything: the ranks must agree on the call sequence).
  DP_CHECK(len < (size_t)1 << 30, "gathering skipped records", "more than 1 GB of skip rows in one interval");
  int mine = (int)len, *lens = NULL, *displ = NULL;
  char *all = NULL;
  if (d->rank == 0) {
    lens = dp_calloc((size_t)d->world, sizeof(int), "skip rows");
    displ = dp_calloc((size_t)d->world, sizeof(int), "skip rows");
  }
  MPI_CHECK(MPI_Gather(&mine, 1, MPI_INT, lens, 1, MPI_INT, 0, d->comm), "gathering skipped records");
  int64_t total = 0;
  if (d->rank == 0) {
    for (int r = 0; r < d->world; r++) {
      displ[r] = (int)total;
      total += lens[r];
    }
    DP_CHECK(total < (int64_t)1 << 31, "gathering skipped records", "more than 2 GB of skip rows in one interval");
    all = dp_malloc((size_t)total + 1, "skip rows");
  }
  MPI_CHECK(MPI_Gatherv(rows, mine, MPI_CHAR, all, lens, displ, MPI_CHAR, 0, d->comm), "gathering skipped records");
  free(rows);
  int rc = 0;
  if (d->rank == 0 && s->open && total > 0) {
    all[total] = 0;
    dp_alog_printf(&s->log, "%s", all);
    rc = dp_alog_flush(&s->log, 0, err);
  }
  free(all);
  free(lens);
  free(displ);
  loader_stats ls = loader_get_stats(l);
  int64_t v[3] = {base_decoded + ls.decoded, base_skipped + ls.skipped, n};
  dist_allreduce_sum_i64(d, v, 3);
  *decoded = v[0];
  *skipped = v[1];
  s->rows += v[2];
  return rc;
}

int skiplog_close(skiplog *s, dp_err *err) {
  if (!s->open) return 0;
  s->open = 0;
  return dp_alog_close(&s->log, err);
}
