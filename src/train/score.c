// score_run and predictions.csv (train/score.h).
#include "train/score.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/afile.h"
#include "core/timer.h"
#include "dist/watchdog.h"
#include "input/shard.h"

// ---- CSV text ------------------------------------------------------------------
// RFC 4180: a field holding a comma, a quote, CR/LF or edge spaces is quoted
// and its quotes doubled.
static void csv_field(FILE *f, const char *s) {
  int q = !*s ? 0 : (s[0] == ' ' || s[strlen(s) - 1] == ' ');
  for (const char *p = s; *p && !q; p++) q = *p == ',' || *p == '"' || *p == '\n' || *p == '\r';
  if (!q) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (const char *p = s; *p; p++) {
    if (*p == '"') fputc('"', f);
    fputc(*p, f);
  }
  fputc('"', f);
}

static const char *class_name(const score_ctx *sc, int c, char *tmp, size_t n) {
  if (sc->meta.class_names && sc->meta.class_names[c]) return sc->meta.class_names[c];
  snprintf(tmp, n, "%d", c);
  return tmp;
}

static int top_k_of(const score_ctx *sc, const score_opts *o) {
  int k = o->top_k < 1 ? 1 : o->top_k;
  if (k > SCORE_MAX_TOP_K) k = SCORE_MAX_TOP_K;
  return k < sc->meta.num_classes ? k : sc->meta.num_classes;
}

static void csv_header(FILE *f, const score_ctx *sc, const score_opts *o) {
  fputs(sc->file_mode ? "path,label" : "shard,record,id,label", f);
  for (int i = 1; i <= top_k_of(sc, o); i++) fprintf(f, ",top%d,p%d", i, i);
  if (sc->logit_bias) fputs(",adjusted", f);
  fputs(",error\n", f);
}

// Per-rank growing arrays of rows: (record index, byte length) pairs.
typedef struct {
  int64_t *v;
  int64_t n, cap;
} i64_list;

static void i64_push(i64_list *l, int64_t a, int64_t b) {
  if (l->n + 2 > l->cap) {
    l->cap = l->cap ? 2 * l->cap : 1024;
    l->v = dp_realloc(l->v, (size_t)l->cap * sizeof(int64_t), "score rows");
  }
  l->v[l->n++] = a;
  l->v[l->n++] = b;
}

// Copies s into d (size n) with control characters as spaces (one line).
static void one_line(char *d, size_t n, const char *s) {
  snprintf(d, n, "%s", s);
  for (char *p = d; *p; p++)
    if ((unsigned char)*p < 0x20) *p = ' ';
}

// ---- gather to rank 0 ------------------------------------------------------------
// Rank 0 receives every rank's buffer (any size: sent in chunks of at most
// 1 GiB, MPI counts being int). Waits go through the watchdog.
#define GATHER_CHUNK ((int64_t)1 << 30)
static char **gather_blobs(dist_ctx *d, const void *buf, int64_t len, int64_t **lens_out) {
  const int W = d->world, tag = 7301;
  int64_t *lens = dp_calloc((size_t)W, sizeof(int64_t), "gather lengths");
  MPI_Request rq;
  MPI_CHECK(MPI_Igather(&len, 1, MPI_INT64_T, lens, 1, MPI_INT64_T, 0, d->comm, &rq), "gathering row lengths");
  dist_wait_all(d, 1, &rq, "gathering the scored rows (lengths)");
  char **out = NULL;
  if (d->rank == 0) {
    out = dp_calloc((size_t)W, sizeof(char *), "gathered rows");
    out[0] = dp_malloc((size_t)(len > 0 ? len : 1), "gathered rows");
    if (len) memcpy(out[0], buf, (size_t)len);
    for (int r = 1; r < W; r++) {
      out[r] = dp_malloc((size_t)(lens[r] > 0 ? lens[r] : 1), "gathered rows");
      for (int64_t at = 0; at < lens[r]; at += GATHER_CHUNK) {
        int64_t n = lens[r] - at < GATHER_CHUNK ? lens[r] - at : GATHER_CHUNK;
        MPI_CHECK(MPI_Irecv(out[r] + at, (int)n, MPI_BYTE, r, tag, d->comm, &rq), "receiving scored rows");
        dist_wait_all(d, 1, &rq, "receiving the scored rows");
      }
    }
  } else {
    for (int64_t at = 0; at < len; at += GATHER_CHUNK) {
      int64_t n = len - at < GATHER_CHUNK ? len - at : GATHER_CHUNK;
      MPI_CHECK(MPI_Isend((const char *)buf + at, (int)n, MPI_BYTE, 0, tag, d->comm, &rq), "sending scored rows");
      dist_wait_all(d, 1, &rq, "sending the scored rows to rank 0");
    }
  }
  *lens_out = lens;
  return out;
}

static void free_blobs(char **b, int64_t *lens, int W) {
  for (int r = 0; b && r < W; r++) free(b[r]);
  free(b);
  free(lens);
}

static int cmp_err(const void *a, const void *b) {
  int64_t x = ((const score_error *)a)->index, y = ((const score_error *)b)->index;
  return x < y ? -1 : x > y;
}

// ---- the loop ------------------------------------------------------------------
typedef struct {
  const score_ctx *sc;
  int k;
  FILE *rows;          // this rank's row text
  i64_list idx;        // (record, bytes) per row
  score_error *errs;
  int64_t nerr, errcap;
} row_sink;

static void row_begin(row_sink *s, int64_t rec, int shard_i, int64_t record, int64_t id, const loader *l) {
  if (s->sc->file_mode) {
    const shard_files_cfg *fc = &s->sc->files;
    csv_field(s->rows, fc->names && fc->names[rec] ? fc->names[rec] : fc->paths[rec]);
  } else {
    csv_field(s->rows, loader_shard_path(l, shard_i));
    fprintf(s->rows, ",%lld,%lld", (long long)record, (long long)id);
  }
}

static void row_end(row_sink *s, int64_t rec, long start) {
  fputc('\n', s->rows);
  i64_push(&s->idx, rec, (int64_t)(ftell(s->rows) - start));
}

static void row_error(row_sink *s, const loader *l, int64_t rec, int shard_i, int64_t record, int64_t id,
                      const char *reason) {
  long start = ftell(s->rows);
  row_begin(s, rec, shard_i, record, id, l);
  fputc(',', s->rows);   // label unknown: the record gave no image
  for (int i = 0; i < s->k; i++) fputs(",,", s->rows);
  if (s->sc->logit_bias) fputc(',', s->rows);
  fputc(',', s->rows);
  char why[400];
  one_line(why, sizeof why, reason);
  csv_field(s->rows, why);
  row_end(s, rec, start);
  if (s->nerr == s->errcap) {
    s->errcap = s->errcap ? 2 * s->errcap : 64;
    s->errs = dp_realloc(s->errs, (size_t)s->errcap * sizeof(score_error), "score errors");
  }
  score_error *e = &s->errs[s->nerr++];
  memset(e, 0, sizeof *e);
  e->index = rec;
  if (s->sc->file_mode)
    snprintf(e->where, sizeof e->where, "%s", s->sc->files.paths[rec]);
  else
    snprintf(e->where, sizeof e->where, "%.900s record %lld (id %lld)", loader_shard_path(l, shard_i),
             (long long)record, (long long)id);
  snprintf(e->reason, sizeof e->reason, "%s", why);
}

// One scored record: top-k of softmax(logits), the adjusted class.
static void row_scored(row_sink *s, const loader *l, int64_t rec, int shard_i, int64_t record, int64_t id,
                       int32_t label, const float *z, const float *bias) {
  const score_ctx *sc = s->sc;
  const int C = sc->meta.num_classes;
  char tmp[32];
  long start = ftell(s->rows);
  row_begin(s, rec, shard_i, record, id, l);
  fputc(',', s->rows);
  if (label >= 0) csv_field(s->rows, class_name(sc, label, tmp, sizeof tmp));
  double m = z[0];
  for (int c = 1; c < C; c++) m = z[c] > m ? z[c] : m;
  double sum = 0;
  for (int c = 0; c < C; c++) sum += exp((double)z[c] - m);
  int taken[SCORE_MAX_TOP_K];
  for (int i = 0; i < s->k; i++) {   // k scans: k <= 64, C small; ties go to the lower class (as argmax)
    int best = -1;
    for (int c = 0; c < C; c++) {
      int used = 0;
      for (int q = 0; q < i && !used; q++) used = taken[q] == c;
      if (!used && (best < 0 || z[c] > z[best])) best = c;
    }
    taken[i] = best;
    fputc(',', s->rows);
    csv_field(s->rows, class_name(sc, best, tmp, sizeof tmp));
    fprintf(s->rows, ",%.6g", exp((double)z[best] - m) / sum);
  }
  if (bias) {
    int best = 0;
    for (int c = 1; c < C; c++)
      if (z[c] + bias[c] > z[best] + bias[best]) best = c;
    fputc(',', s->rows);
    csv_field(s->rows, class_name(sc, best, tmp, sizeof tmp));
  }
  fputc(',', s->rows);   // no error
  row_end(s, rec, start);
}

void score_run(score_ctx *sc, train_device *td, dist_ctx *d, const score_opts *o, score_out *out) {
  memset(out, 0, sizeof *out);
  out->steady_images_per_s = NAN;
  nn_graph *g = sc->g;
  loader *l = sc->l;
  const int C = sc->meta.num_classes, W = d->world, rank = d->rank;
  const int64_t B = g->batch, total = loader_total_samples(l);
  const int64_t own = total > rank ? (total - rank + W - 1) / W : 0;   // this rank's records
  const float *bias = sc->logit_bias;
  int64_t *cm = dp_calloc((size_t)C * C * 2, sizeof(int64_t), "confusion matrices");   // raw, adjusted
  float *zb = dp_malloc((size_t)C * sizeof(float), "adjusted logits");
  double sums[2] = {0, 0};   // cross-entropy sum, labelled rows
  row_sink s;
  memset(&s, 0, sizeof s);
  s.sc = sc;
  s.k = top_k_of(sc, o);
  char *rows_buf = NULL;
  size_t rows_cap = 0;
  s.rows = open_memstream(&rows_buf, &rows_cap);
  DP_CHECK(s.rows != NULL, "open_memstream for the score rows", "out of memory?");
  int64_t *bad = dp_malloc((size_t)B * sizeof(int64_t), "row errors");   // skip index + 1, 0 = fine
  int64_t scored = 0, errors = 0, labelled = 0, first_images = 0, batches = 0;
  double first_end = NAN;
  int was_training = g->training;
  nn_graph_set_training(g, 0);
  nn_step st;
  nn_step_init(&st, g);
  const double t0 = dp_now();
  loader_start_epoch(l, 0);
  const loader_batch *b;
  while ((b = loader_next_batch(l)) != NULL) {
    // Real positions of this batch (the sampler's wrap-around padding is not
    // a record of this rank), and the records the loader could not decode.
    int64_t real = own - b->index * B;
    real = real < 0 ? 0 : (real < B ? real : B);
    loader_skip *sk = NULL;
    int64_t ns = loader_take_skips(l, &sk);
    memset(bad, 0, (size_t)B * sizeof(int64_t));
    for (int64_t q = 0; q < ns; q++) {
      int64_t gi = loader_global_index(l, sk[q].shard, sk[q].record), pos = gi - rank;
      int64_t j = pos >= 0 && pos % W == 0 ? pos / W - b->index * B : -1;
      if (j >= 0 && j < real) bad[j] = q + 1;
    }
    int64_t good = 0;
    for (int64_t j = 0; j < real; j++) good += bad[j] == 0;
    const float *logits = NULL;
    if (good > 0) {
      int64_t nv = b->n < real ? b->n : real;
      td->feed(td, g, &st, b, nv);
      st.soft_targets = NULL;
      nn_forward(g, &st);
      logits = td->logits(td, g);   // (B, C) host
    }
    for (int64_t j = 0; j < real; j++) {
      const int64_t rec = rank + (b->index * B + j) * W;   // the eval sampler: position -> record
      int si = 0;
      int64_t ri = 0;
      loader_locate(l, rec, &si, &ri);
      if (bad[j]) {
        const loader_skip *k = &sk[bad[j] - 1];
        row_error(&s, l, rec, si, ri, k->id, k->reason);
        errors++;
        continue;
      }
      DP_CHECK(b->sample_index[j] == rec, "ordering scored rows", "the eval loader's row order changed");
      const float *z = logits + j * C;
      int32_t y = b->labels[j];
      row_scored(&s, l, rec, si, ri, b->ids[j], y, z, bias);
      scored++;
      if (y >= 0 && y < C) {
        confusion_add_logits(cm, C, &y, z, 1);
        if (bias) {
          for (int c = 0; c < C; c++) zb[c] = z[c] + bias[c];
          confusion_add_logits(cm + (int64_t)C * C, C, &y, zb, 1);
        }
        double m = z[0], e = 0;
        for (int c = 1; c < C; c++) m = z[c] > m ? z[c] : m;
        for (int c = 0; c < C; c++) e += exp((double)z[c] - m);
        sums[0] += log(e) + m - (double)z[y];
        sums[1] += 1;
        labelled++;
      }
    }
    free(sk);
    batches++;
    if (isnan(first_end)) {
      first_end = dp_now();
      first_images = scored;
    }
  }
  const double t1 = dp_now();
  nn_graph_set_training(g, was_training);
  DP_CHECK(fflush(s.rows) == 0, "writing score rows to memory", "out of memory?");
  // Totals over ranks.
  double walls[2] = {t1 - t0, isnan(first_end) ? 0.0 : t1 - first_end};
  int64_t cnt[5] = {own, scored, errors, labelled, scored - first_images};
  double notok = batches >= 2 && walls[1] > 0 ? 0.0 : 1.0;   // every rank needs batches after its first
  dist_allreduce_sum_i64(d, cm, (int64_t)C * C * 2);
  dist_allreduce_sum_f64(d, sums, 2);
  dist_allreduce_sum_i64(d, cnt, 5);
  dist_allreduce_max_f64(d, walls, 2);
  dist_allreduce_max_f64(d, &notok, 1);
  out->rank_images_per_s = dp_calloc((size_t)W, sizeof(double), "rank throughput");
  out->rank_images_per_s[rank] = t1 > t0 ? (double)scored / (t1 - t0) : 0.0;
  dist_allreduce_sum_f64(d, out->rank_images_per_s, W);
  out->records = cnt[0];
  out->scored = cnt[1];
  out->errors = cnt[2];
  out->labelled = cnt[3];
  out->steady_images = cnt[4];
  out->wall_s = walls[0];
  out->steady_wall_s = walls[1];
  out->images_per_s = walls[0] > 0 ? (double)out->scored / walls[0] : NAN;
  if (notok == 0.0 && walls[1] > 0) out->steady_images_per_s = (double)out->steady_images / walls[1];
  if (out->labelled > 0) {
    class_metrics_compute(&out->q, cm, C);
    out->q.loss = sums[0] / sums[1];
    out->evaluated = 1;
    if (bias) {
      class_metrics_compute(&out->q_adj, cm + (int64_t)C * C, C);
      out->q_adj.loss = NAN;
      out->adjusted = 1;
    }
  }
  // Rows to rank 0, merged in record order: record t is rank t % W's next row.
  int64_t *lens = NULL, *ilens = NULL, *elens = NULL;
  char **texts = gather_blobs(d, rows_buf, (int64_t)ftell(s.rows), &lens);
  char **idxs = gather_blobs(d, s.idx.v, s.idx.n * (int64_t)sizeof(int64_t), &ilens);
  char **errs = gather_blobs(d, s.errs, s.nerr * (int64_t)sizeof(score_error), &elens);
  if (rank == 0) {
    size_t need = 0;
    for (int r = 0; r < W; r++) need += (size_t)lens[r];
    out->rows = dp_malloc(need + 1, "predictions");
    int64_t *at = dp_calloc((size_t)W, sizeof(int64_t), "merge cursors");    // row number per rank
    int64_t *off = dp_calloc((size_t)W, sizeof(int64_t), "merge cursors");   // byte offset per rank
    for (int64_t t = 0; t < out->records; t++) {
      int r = (int)(t % W);
      const int64_t *iv = (const int64_t *)idxs[r];
      DP_CHECK(2 * (at[r] + 1) * (int64_t)sizeof(int64_t) <= ilens[r] && iv[2 * at[r]] == t, "merging scored rows",
               "a rank's rows are not the eval sampler's share");
      int64_t n = iv[2 * at[r] + 1];
      memcpy(out->rows + out->rows_len, texts[r] + off[r], (size_t)n);
      out->rows_len += (size_t)n;
      off[r] += n;
      at[r]++;
    }
    out->rows[out->rows_len] = 0;
    free(at);
    free(off);
    out->err_list = dp_calloc((size_t)(out->errors > 0 ? out->errors : 1), sizeof(score_error), "score errors");
    int64_t ne = 0;
    for (int r = 0; r < W; r++) {
      int64_t n = elens[r] / (int64_t)sizeof(score_error);
      if (ne + n <= out->errors) memcpy(out->err_list + ne, errs[r], (size_t)n * sizeof(score_error));
      ne += n;
    }
    DP_CHECK(ne == out->errors, "gathering the record errors", "counts disagree");
    qsort(out->err_list, (size_t)ne, sizeof(score_error), cmp_err);
  }
  free_blobs(texts, lens, W);
  free_blobs(idxs, ilens, W);
  free_blobs(errs, elens, W);
  fclose(s.rows);
  free(rows_buf);
  free(s.idx.v);
  free(s.errs);
  free(bad);
  free(zb);
  free(cm);
}

int score_write_csv(const score_ctx *sc, const score_opts *o, const score_out *out, const char *path, dp_err *err) {
  dp_afile *af = dp_afile_open(path, err);
  if (!af) return -1;
  FILE *f = dp_afile_stream(af);
  csv_header(f, sc, o);
  if (out->rows_len) fwrite(out->rows, 1, out->rows_len, f);
  return dp_afile_commit(af, err);
}

void score_out_free(score_out *out) {
  if (out->evaluated) class_metrics_free(&out->q);
  if (out->adjusted) class_metrics_free(&out->q_adj);
  free(out->rank_images_per_s);
  free(out->rows);
  free(out->err_list);
  memset(out, 0, sizeof *out);
}
