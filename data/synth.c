// dptrain data synth: a labelled product-photo dataset with quality defects,
// deterministic for a seed whatever the thread count (every record draws from
// its own RNG stream; shards are written in record order by one thread).
// Layout, class tables, the duplicate rule and the truth file: data/SCHEMA.md.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/afile.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/opts.h"
#include "data/data_tools.h"
#include "dt_common.h"
#include "input/shard.h"
#include "synth.h"

// RNG stream tags: record index i uses dp_rng_stream3(seed, i, TAG).
enum { TAG_SCENE = 7, TAG_META = 8, TAG_CORRUPT = 4, TAG_DUP = 3, TAG_DUPJIT = 5 };
enum { CORRUPT_NONE = 0, CORRUPT_TRUNCATED, CORRUPT_GARBAGE, CORRUPT_ZERO, CORRUPT_NOT_JPEG };
static const char *const corrupt_names[] = {"none", "truncated", "garbage", "zero_length", "not_jpeg"};

typedef struct {
  int32_t cls;
  int8_t split, corrupt;
  int32_t src;       // duplicates: record whose scene is copied (-1 none)
  int32_t shots;     // originals: duplicates made of this record so far
  int64_t id;        // (product << 4) | shot
} plan_rec;

typedef struct {
  const synth_preset *ps;
  uint64_t seed;
  int size_min, size_max;
  plan_rec *plan;
} synth_ctx;

typedef struct {
  tjhandle enc, dec;
  uint8_t *px, *px2;
  int32_t *colsum;
  unsigned char *jpg;
  unsigned long jpg_cap;
} synth_tls;

typedef struct {
  char preset[32], out[1024];
  int64_t count, shard_size;
  uint64_t seed;
  double val_frac, test_frac, corrupt_frac;
  int size_min, size_max, threads;
} synth_args;
#define SA synth_args
static const dp_opt synth_opt_list[] = {
    DP_OPT_S(SA, "preset", preset, DP_OPT_REQUIRED, "shopsight5 | shoplens12"),
    DP_OPT_I(SA, "count", DP_OPT_I64, count, 1, (INT64_C(1) << 31) - 1, DP_OPT_REQUIRED, "records to make"),
    DP_OPT_S(SA, "out", out, DP_OPT_REQUIRED, "output directory"),
    {"seed", DP_OPT_U64, offsetof(SA, seed), 0, 0, 0, 0, 0, 0, "seed"},
    DP_OPT_I(SA, "shard-size", DP_OPT_I64, shard_size, 1, INT64_C(1) << 31, 0, "records per shard"),
    DP_OPT_F(SA, "val-frac", DP_OPT_DOUBLE, val_frac, 0, 1, DP_OPT_HI_OPEN, "validation share"),
    DP_OPT_F(SA, "test-frac", DP_OPT_DOUBLE, test_frac, 0, 1, DP_OPT_HI_OPEN, "test share"),
    DP_OPT_F(SA, "corrupt-frac", DP_OPT_DOUBLE, corrupt_frac, 0, 1, 0, "share of corrupt records"),
    DP_OPT_I(SA, "size-min", DP_OPT_INT, size_min, 16, SYNTH_MAX_SIDE, 0, "smallest image side"),
    DP_OPT_I(SA, "size-max", DP_OPT_INT, size_max, 16, SYNTH_MAX_SIDE, 0, "largest image side"),
    DP_OPT_I(SA, "threads", DP_OPT_INT, threads, 1, 4096, DP_OPT_CORES, "render threads"),
};
static const dp_opts synth_table = {
    "dptrain data synth", synth_opt_list, (int)(sizeof synth_opt_list / sizeof synth_opt_list[0]),
    "usage: dptrain data synth --preset shopsight5|shoplens12 --count N --out DIR\n"
    "         [--seed S] [--shard-size N] [--val-frac F] [--test-frac F]\n"
    "         [--size-min 240] [--size-max 400] [--threads T] [--corrupt-frac 0.02]\n"
    "Writes DIR/{train,val,test}-NNNNN.h5 and DIR/corrupt.txt (see data/SCHEMA.md).\n",
    0};

static int pick(dp_rng *r, const double *w, int n) {
  double u = dp_rng_uniform(r), acc = 0;
  for (int i = 0; i < n; i++) {
    acc += w[i];
    if (u < acc) return i;
  }
  return n - 1;
}

static void draw_meta(const synth_ctx *cx, int64_t i, synth_defect def, const synth_scene *sc,
                      int32_t meta[META_NCOLS]) {
  dp_rng r = dp_rng_stream3(cx->seed, (uint64_t)i, TAG_META);
  static const double tier_clean[4] = {0.15, 0.40, 0.30, 0.15}, tier_bad[4] = {0.35, 0.40, 0.18, 0.07};
  static const double src_clean[4] = {0.60, 0.30, 0.05, 0.05}, src_phone[4] = {0.25, 0.65, 0.05, 0.05},
                      src_dup[4] = {0.20, 0.20, 0.05, 0.55}, src_other[4] = {0.40, 0.40, 0.10, 0.10};
  static const double region[6] = {0.30, 0.25, 0.10, 0.20, 0.10, 0.05};
  meta[META_CATEGORY] = sc->shape;
  meta[META_SELLER_TIER] = pick(&r, def == DEF_NONE ? tier_clean : tier_bad, 4);
  const double *sw = def == DEF_NONE ? src_clean
                     : (def == DEF_BLURRY || def == DEF_LOW_LIGHT || def == DEF_NOISY) ? src_phone
                     : def == DEF_DUPLICATE ? src_dup : src_other;
  meta[META_IMAGE_SOURCE] = pick(&r, sw, 4);
  meta[META_UPLOAD_REGION] = pick(&r, region, 6);
  meta[META_WIDTH] = sc->w;
  meta[META_HEIGHT] = sc->h;
  for (int c = 0; c < META_NCOLS; c++)
    if (dp_rng_uniform(&r) < cx->ps->missing_rate) meta[c] = SHARD_META_MISSING;
}

// Renders record i into t->jpg; returns the JPEG size.
static unsigned long render_record(const synth_ctx *cx, int64_t i, synth_tls *t, synth_scene *sc) {
  const plan_rec *p = &cx->plan[i];
  synth_defect def = cx->ps->defect[p->cls];
  if (def != DEF_DUPLICATE || p->src < 0) {
    dp_rng r = dp_rng_stream3(cx->seed, (uint64_t)i, TAG_SCENE);
    synth_draw_scene(&r, def == DEF_DUPLICATE ? DEF_NONE : def, cx->size_min, cx->size_max, sc);
    synth_render(sc, t->px, t->colsum);
    if (def != DEF_DUPLICATE) return dt_jpeg_encode(t->enc, t->px, sc->w, sc->h, 3, sc->quality, &t->jpg, &t->jpg_cap);
  } else {
    // The source record's exact scene and JPEG, decoded again: the duplicate
    // starts from the bytes a user would have downloaded.
    const plan_rec *s = &cx->plan[p->src];
    dp_rng r = dp_rng_stream3(cx->seed, (uint64_t)p->src, TAG_SCENE);
    synth_draw_scene(&r, cx->ps->defect[s->cls], cx->size_min, cx->size_max, sc);
    synth_render(sc, t->px, t->colsum);
  }
  unsigned long n = dt_jpeg_encode(t->enc, t->px, sc->w, sc->h, 3, sc->quality, &t->jpg, &t->jpg_cap);
  TJ_CHECK(tjDecompress2(t->dec, t->jpg, n, t->px2, sc->w, 0, sc->h, TJPF_RGB, 0), t->dec,
           "decoding the duplicate's source");
  // Jitter: crop 0-6 % per side, resample (nearest) back to the same size,
  // brightness +-5 %, then re-encode at a lower quality (double compression).
  dp_rng r = dp_rng_stream3(cx->seed, (uint64_t)i, TAG_DUPJIT);
  int w = sc->w, h = sc->h;
  int mx0 = (int)(dp_rng_uniform(&r) * 0.06 * w), mx1 = (int)(dp_rng_uniform(&r) * 0.06 * w);
  int my0 = (int)(dp_rng_uniform(&r) * 0.06 * h), my1 = (int)(dp_rng_uniform(&r) * 0.06 * h);
  int g = 243 + (int)dp_rng_below(&r, 27);
  int q = 70 + (int)dp_rng_below(&r, 19);
  int64_t sx = ((int64_t)(w - mx0 - mx1) << 16) / w, sy = ((int64_t)(h - my0 - my1) << 16) / h;
  for (int y = 0; y < h; y++) {
    int ys = my0 + (int)((y * sy) >> 16);
    const uint8_t *srow = t->px2 + (size_t)ys * w * 3;
    uint8_t *drow = t->px + (size_t)y * w * 3;
    for (int x = 0; x < w; x++) {
      int xs = mx0 + (int)((x * sx) >> 16);
      for (int k = 0; k < 3; k++) {
        int v = srow[3 * xs + k] * g >> 8;
        drow[3 * x + k] = (uint8_t)(v > 255 ? 255 : v);
      }
    }
  }
  return dt_jpeg_encode(t->enc, t->px, w, h, 3, q, &t->jpg, &t->jpg_cap);
}

// Applies record i's corruption to bytes (capacity >= len + 2048); returns the new length.
static int64_t corrupt_record(const synth_ctx *cx, int64_t i, uint8_t *b, int64_t len) {
  dp_rng r = dp_rng_stream3(cx->seed, (uint64_t)i, TAG_CORRUPT + 100);
  switch (cx->plan[i].corrupt) {
    case CORRUPT_TRUNCATED: {
      int64_t n = (int64_t)((double)len * dp_rng_range(&r, 0.05, 0.7));
      return n < 2 ? 2 : n;
    }
    case CORRUPT_GARBAGE:
      for (int64_t k = 0; k < len; k++) b[k] = (uint8_t)dp_rng_u32(&r);
      if (b[0] == 0xFF) b[0] = 0x00;   // never a JPEG marker start
      return len;
    case CORRUPT_ZERO: return 0;
    case CORRUPT_NOT_JPEG: {
      static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
      int64_t n = 200 + (int64_t)dp_rng_below(&r, 1800);
      memcpy(b, png, 8);
      for (int64_t k = 8; k < n; k++) b[k] = (uint8_t)dp_rng_u32(&r);
      return n;
    }
    default: return len;
  }
}

static void plan_build(synth_ctx *cx, int64_t n, double val_frac, double test_frac, double corrupt_frac) {
  const synth_preset *ps = cx->ps;
  int nc = ps->nclasses;
  // Exact class counts (largest remainder), then a seeded shuffle.
  int64_t cnt[SYNTH_MAX_CLASSES], assigned = 0;
  double rem[SYNTH_MAX_CLASSES];
  for (int c = 0; c < nc; c++) {
    double q = (double)n * ps->pct[c] / 100.0;
    cnt[c] = (int64_t)floor(q);
    rem[c] = q - (double)cnt[c];
    assigned += cnt[c];
  }
  while (assigned < n) {
    int best = 0;
    for (int c = 1; c < nc; c++)
      if (rem[c] > rem[best]) best = c;
    cnt[best]++;
    rem[best] = -1;
    assigned++;
  }
  int64_t *perm = dp_malloc((size_t)(n ? n : 1) * sizeof(int64_t), "synth perm");
  dp_rng r = dp_rng_stream3(cx->seed, 1, 0);
  dp_rng_permutation(&r, perm, n);
  int64_t k = 0;
  for (int c = 0; c < nc; c++)
    for (int64_t j = 0; j < cnt[c]; j++) cx->plan[perm[k++]].cls = c;
  // Stratified splits: per class, the first members (in record order) go to test, then val.
  int64_t seen[SYNTH_MAX_CLASSES] = {0};
  for (int64_t i = 0; i < n; i++) {
    plan_rec *p = &cx->plan[i];
    int c = p->cls;
    int64_t nt = llround((double)cnt[c] * test_frac), nv = llround((double)cnt[c] * val_frac);
    p->split = seen[c] < nt ? DT_TEST : seen[c] < nt + nv ? DT_VAL : DT_TRAIN;
    seen[c]++;
    p->src = -1;
    p->id = i << 4;
  }
  // Duplicates copy a clean record of the same split (same product id, next shot).
  for (int s = 0; s < DT_NSPLITS; s++) {
    int64_t ncl = 0;
    for (int64_t i = 0; i < n; i++)
      if (cx->plan[i].split == s && ps->defect[cx->plan[i].cls] == DEF_NONE) perm[ncl++] = i;
    for (int64_t i = 0; i < n; i++) {
      plan_rec *p = &cx->plan[i];
      if (p->split != s || ps->defect[p->cls] != DEF_DUPLICATE || ncl == 0) continue;
      dp_rng rd = dp_rng_stream3(cx->seed, (uint64_t)i, TAG_DUP);
      int64_t at = (int64_t)dp_rng_below(&rd, (uint64_t)ncl);
      for (int64_t tries = 0; tries < ncl; tries++, at = (at + 1) % ncl)
        if (cx->plan[perm[at]].shots < 15) break;
      plan_rec *src = &cx->plan[perm[at]];
      if (src->shots >= 15) continue;
      src->shots++;
      p->src = (int32_t)perm[at];
      p->id = (perm[at] << 4) | src->shots;
    }
  }
  // Corrupt records: an exact count chosen by a seeded permutation.
  int64_t ncorrupt = llround((double)n * corrupt_frac);
  dp_rng rc = dp_rng_stream3(cx->seed, 2, 0);
  dp_rng_permutation(&rc, perm, n);
  for (int64_t j = 0; j < ncorrupt && j < n; j++) {
    dp_rng rk = dp_rng_stream3(cx->seed, (uint64_t)perm[j], TAG_CORRUPT);
    static const double kinds[4] = {0.40, 0.25, 0.15, 0.20};
    cx->plan[perm[j]].corrupt = (int8_t)(1 + pick(&rk, kinds, 4));
  }
  free(perm);
}

int data_synth_main(int argc, char **argv) {
  int nthr = omp_get_max_threads() < dp_opts_cpus() ? omp_get_max_threads() : dp_opts_cpus();
  synth_args a = {"", "", 0, 1000, 1, 0.1, 0.1, 0.02, 240, 400, nthr};
  int prc = dp_opts_parse(&synth_table, &a, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  const char *out = a.out;
  int64_t count = a.count, shard_size = a.shard_size;
  uint64_t seed = a.seed;
  double val_frac = a.val_frac, test_frac = a.test_frac, corrupt_frac = a.corrupt_frac;
  int size_min = a.size_min, size_max = a.size_max, threads = a.threads;
  const synth_preset *ps = synth_preset_find(a.preset);
  if (!ps) {
    fprintf(stderr, "dptrain data synth: setting 'preset': unknown preset '%s' (shopsight5, shoplens12)\n", a.preset);
    return 2;
  }
  if (val_frac + test_frac >= 1 || size_max < size_min) {
    fprintf(stderr, "dptrain data synth: bad configuration: %s\n",
            size_max < size_min ? "--size-max is below --size-min" : "--val-frac + --test-frac must be < 1");
    return 2;
  }
  dp_err mkerr;
  if (dp_mkdir_p(out, &mkerr) != 0) {
    fprintf(stderr, "synth: %s\n", mkerr.msg);
    return 1;
  }
  synth_ctx cx = {ps, (uint64_t)seed, size_min, size_max, NULL};
  cx.plan = dp_calloc((size_t)count, sizeof(plan_rec), "synth plan");
  plan_build(&cx, count, val_frac, test_frac, corrupt_frac);

  synth_tls *tls = dp_calloc((size_t)threads, sizeof(synth_tls), "synth threads");
  size_t pxbytes = (size_t)size_max * size_max * 3;
  for (int t = 0; t < threads; t++) {
    tls[t].enc = tjInitCompress();
    tls[t].dec = tjInitDecompress();
    PTR_CHECK(tls[t].enc, "tjInitCompress");
    PTR_CHECK(tls[t].dec, "tjInitDecompress");
    tls[t].px = dp_malloc(pxbytes, "synth pixels");
    tls[t].px2 = dp_malloc(pxbytes, "synth pixels");
    tls[t].colsum = dp_malloc((size_t)size_max * 3 * sizeof(int32_t), "blur sums");
  }
  char path[1200];
  snprintf(path, sizeof path, "%s/corrupt.txt", out);
  dp_err terr;
  dp_afile *truth_f = dp_afile_open(path, &terr);   // committed (atomically) after the last shard
  if (!truth_f) DP_FATAL("creating corrupt.txt", "check --out", "%s", terr.msg);
  FILE *truth = dp_afile_stream(truth_f);
  fprintf(truth, "# dptrain synth corrupt-record truth v1: file<TAB>index<TAB>id<TAB>kind\n");

  enum { BLOCK = 256 };
  int64_t *idx = dp_malloc((size_t)count * sizeof(int64_t), "split index");
  uint8_t *bufs[BLOCK];
  int64_t lens[BLOCK];
  int32_t metas[BLOCK][META_NCOLS];
  int64_t class_count[DT_NSPLITS][SYNTH_MAX_CLASSES] = {{0}}, total_bytes = 0, done = 0;
  dt_progress prog;
  dt_progress_start(&prog, "synth", count);
  double t0 = dt_now();
  shard_writer_cfg wcfg = {SHARD_CODEC_JPEG, ps->nclasses, ps->class_names, 0, 0, 0, "defects"};
  for (int s = 0; s < DT_NSPLITS; s++) {
    int64_t ns = 0;
    for (int64_t i = 0; i < count; i++)
      if (cx.plan[i].split == s) idx[ns++] = i;
    if (ns == 0) continue;
    shard_writer *w = NULL;
    int shard_no = 0;
    dp_err err;
    for (int64_t b0 = 0; b0 < ns; b0 += BLOCK) {
      int nb = (int)(ns - b0 < BLOCK ? ns - b0 : BLOCK);
#pragma omp parallel for schedule(dynamic, 2) num_threads(threads)
      for (int j = 0; j < nb; j++) {
        synth_tls *t = &tls[omp_get_thread_num()];
        int64_t i = idx[b0 + j];
        synth_scene sc;
        unsigned long n = render_record(&cx, i, t, &sc);
        bufs[j] = dp_malloc(n + 4096, "record bytes");
        memcpy(bufs[j], t->jpg, n);
        lens[j] = corrupt_record(&cx, i, bufs[j], (int64_t)n);
        draw_meta(&cx, i, ps->defect[cx.plan[i].cls], &sc, metas[j]);
      }
      for (int j = 0; j < nb; j++) {
        int64_t i = idx[b0 + j];
        if (!w || shard_writer_count(w) >= shard_size) {
          if (w && shard_writer_close(w, &err) != 0) DP_FATAL("writing a shard", "disk full?", "%s", err.msg);
          snprintf(path, sizeof path, "%s/%s-%05d.h5", out, dt_split_names[s], shard_no++);
          w = shard_writer_create(path, &wcfg, &err);
          if (!w) DP_FATAL("creating a shard", "check --out", "%s", err.msg);
        }
        if (cx.plan[i].corrupt)
          fprintf(truth, "%s-%05d.h5\t%lld\t%lld\t%s\n", dt_split_names[s], shard_no - 1,
                  (long long)shard_writer_count(w), (long long)cx.plan[i].id,
                  corrupt_names[cx.plan[i].corrupt]);
        if (shard_writer_add(w, bufs[j], lens[j], cx.plan[i].cls, cx.plan[i].id, metas[j], &err) != 0)
          DP_FATAL("adding a record", "bug", "%s", err.msg);
        class_count[s][cx.plan[i].cls]++;
        total_bytes += lens[j];
        free(bufs[j]);
        done++;
      }
      dt_progress_update(&prog, done, total_bytes);
    }
    if (w && shard_writer_close(w, &err) != 0) DP_FATAL("writing a shard", "disk full?", "%s", err.msg);
  }
  dt_progress_done(&prog, done, total_bytes);
  double el = dt_now() - t0;
  if (dp_afile_commit(truth_f, &terr)) DP_FATAL("writing corrupt.txt", "disk full?", "%s", terr.msg);
  printf("synth: preset %s, %lld images in %.2f s (%.0f images/s, %d threads), %.1f MB\n", ps->name,
         (long long)count, el, (double)count / (el > 0 ? el : 1e-9), threads, (double)total_bytes / 1e6);
  printf("%-18s %8s %8s %8s %8s %7s\n", "class", "train", "val", "test", "total", "%");
  for (int c = 0; c < ps->nclasses; c++) {
    int64_t tot = class_count[0][c] + class_count[1][c] + class_count[2][c];
    printf("%-18s %8lld %8lld %8lld %8lld %6.2f%%\n", ps->class_names[c], (long long)class_count[0][c],
           (long long)class_count[1][c], (long long)class_count[2][c], (long long)tot,
           100.0 * (double)tot / (double)count);
  }
  int64_t nbad = 0;
  for (int64_t i = 0; i < count; i++) nbad += cx.plan[i].corrupt != 0;
  printf("corrupt records: %lld (listed in %s/corrupt.txt)\n", (long long)nbad, out);
  for (int t = 0; t < threads; t++) {
    tjDestroy(tls[t].enc);
    tjDestroy(tls[t].dec);
    tjFree(tls[t].jpg);
    free(tls[t].px);
    free(tls[t].px2);
    free(tls[t].colsum);
  }
  free(tls);
  free(idx);
  free(cx.plan);
  return 0;
}
