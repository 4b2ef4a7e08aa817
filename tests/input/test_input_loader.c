// Loader tests:
//  - exact-once coverage for world sizes 1..4, three epochs, drop_last on and
//    off, from the sample indices the loader returned (raw shards whose pixels
//    encode the sample, so images are checked to travel with their labels);
//  - determinism: 1 vs 3 threads give byte-identical batches (JPEG shards,
//    train augmentation with jitter and mixup, corrupt records included);
//  - loader_seek gives the same batches as reading through;
//  - class counts.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "input/loader.h"
#include "input_testutil.h"
#include "testutil.h"

enum { NSH = 3, TOTAL = 103, K = 4, RAW = 6 };
static const int64_t SHARD_N[NSH] = {40, 33, 30};
static char raw_paths[NSH][1024];

static uint8_t pixel_of(int64_t g) { return (uint8_t)(g % 251); }

static void write_raw_shards(void) {
  int64_t g = 0;
  for (int s = 0; s < NSH; s++) {
    int64_t n = SHARD_N[s];
    uint8_t **recs = malloc(sizeof(uint8_t *) * n);
    int64_t *lens = malloc(sizeof(int64_t) * n), *ids = malloc(sizeof(int64_t) * n);
    int32_t *labels = malloc(sizeof(int32_t) * n);
    for (int64_t i = 0; i < n; i++, g++) {
      recs[i] = malloc(RAW * RAW * 3);
      memset(recs[i], pixel_of(g), RAW * RAW * 3);
      lens[i] = RAW * RAW * 3;
      labels[i] = (int32_t)(g % K);
      ids[i] = 100000 + g;
    }
    char name[64];
    snprintf(name, sizeof name, "loader_raw_%d.h5", s);
    snprintf(raw_paths[s], sizeof raw_paths[s], "%s", it_path(name));
    it_shard_write(raw_paths[s], SHARD_CODEC_RAW, K, RAW, RAW, 3, n, recs, lens, labels, ids);
    for (int64_t i = 0; i < n; i++) free(recs[i]);
    free(recs); free(lens); free(ids); free(labels);
  }
}

static loader *make_raw_loader(int rank, int world, int drop_last, int64_t batch, int threads) {
  static char *paths[NSH];
  for (int s = 0; s < NSH; s++) paths[s] = raw_paths[s];
  loader_cfg c;
  loader_cfg_defaults(&c);
  c.shards = paths;
  c.nshards = NSH;
  c.rank = rank;
  c.world = world;
  c.batch = batch;
  c.drop_last = drop_last;
  c.threads = threads;
  c.out_size = RAW;
  c.out_uint8 = 1;
  c.train = 0;   // eval transform: a flat image stays exactly flat
  c.seed = 42;
  dp_err err;
  dp_err_clear(&err);
  loader *l = loader_create(&c, &err);
  if (!l) DP_FATAL("loader_create", "test", "%s", err.msg);
  return l;
}

static void test_coverage(void) {
  const int64_t B = 4;
  for (int world = 1; world <= 4; world++)
    for (int dl = 0; dl <= 1; dl++) {
      int64_t first_order[2][8] = {{0}};
      for (int64_t epoch = 0; epoch < 3; epoch++) {
        int counts[TOTAL] = {0};
        int64_t returned = 0, bad_pixels = 0, bad_labels = 0;
        for (int r = 0; r < world; r++) {
          loader *l = make_raw_loader(r, world, dl, B, 2);
          loader_start_epoch(l, epoch);
          int64_t per_rank = dl ? TOTAL / world : (TOTAL + world - 1) / world;
          int64_t want_batches = dl ? per_rank / B : (per_rank + B - 1) / B;
          TU_CHECK(loader_batches_per_epoch(l) == want_batches, "batches per epoch");
          const loader_batch *b;
          int64_t nb = 0, rank_n = 0;
          while ((b = loader_next_batch(l))) {
            TU_CHECK(b->index == nb, "batch index %lld want %lld", (long long)b->index, (long long)nb);
            nb++;
            for (int64_t i = 0; i < B; i++) {
              if (i >= b->n) {   // padding rows of the last batch
                TU_CHECK(!dl && b->labels[i] == -1 && b->sample_index[i] == -1, "padding row");
                continue;
              }
              int64_t g = b->sample_index[i];
              TU_CHECK(g >= 0 && g < TOTAL, "index range");
              if (g < 0 || g >= TOTAL) continue;
              if (epoch < 2 && r == 0 && rank_n < 8) first_order[epoch][rank_n] = g;
              counts[g]++;
              returned++;
              rank_n++;
              bad_labels += b->labels[i] != g % K || b->ids[i] != 100000 + g;
              const uint8_t *px = b->images_u8 + i * RAW * RAW * 3;
              for (int k = 0; k < RAW * RAW * 3; k++) bad_pixels += px[k] != pixel_of(g);
            }
          }
          TU_CHECK(nb == want_batches, "world %d rank %d: %lld batches", world, r, (long long)nb);
          TU_CHECK(rank_n == (dl ? want_batches * B : per_rank), "rank %d got %lld samples", r,
                   (long long)rank_n);
          loader_destroy(l);
        }
        TU_CHECK(bad_labels == 0 && bad_pixels == 0, "labels/pixels must follow the sample (%lld, %lld)",
                 (long long)bad_labels, (long long)bad_pixels);
        int64_t dup = 0, missing = 0;
        for (int g = 0; g < TOTAL; g++) {
          if (counts[g] == 0) missing++;
          if (counts[g] > 1) dup += counts[g] - 1;
        }
        if (dl) {
          int64_t per = (TOTAL / world / B) * B;
          TU_CHECK(dup == 0 && returned == per * world, "world %d drop_last: dup %lld returned %lld",
                   world, (long long)dup, (long long)returned);
        } else {
          int64_t padded = ((TOTAL + world - 1) / world) * world;
          TU_CHECK(missing == 0 && dup == padded - TOTAL && returned == padded,
                   "world %d pad: missing %lld dup %lld (want %lld)", world, (long long)missing,
                   (long long)dup, (long long)(padded - TOTAL));
        }
      }
      TU_CHECK(memcmp(first_order[0], first_order[1], sizeof first_order[0]) != 0,
               "epochs 0 and 1 must be shuffled differently");
    }
}

// ---- determinism on JPEG shards with train augmentation ---------------------
static char jpg_paths[2][1024];

static void write_jpeg_shards(void) {
  for (int s = 0; s < 2; s++) {
    enum { N = 20 };
    uint8_t *recs[N];
    int64_t lens[N], ids[N];
    int32_t labels[N];
    for (int i = 0; i < N; i++) {
      int w = 60 + (i * 37) % 90, h = 50 + (i * 53) % 80;   // sizes vary
      recs[i] = it_jpeg_make(w, h, (uint32_t)(s * 100 + i), i % 5 == 2 ? TJFLAG_PROGRESSIVE : 0, &lens[i]);
      labels[i] = (s * N + i) % K;
      ids[i] = 7000 + s * N + i;
    }
    if (s == 1) {   // two corrupt records
      lens[4] /= 3;
      for (int64_t k = 100; k < lens[9]; k++) recs[9][k] = (uint8_t)(k * 7);
    }
    char name[64];
    snprintf(name, sizeof name, "loader_jpg_%d.h5", s);
    snprintf(jpg_paths[s], sizeof jpg_paths[s], "%s", it_path(name));
    it_shard_write(jpg_paths[s], SHARD_CODEC_JPEG, K, 0, 0, 0, N, recs, lens, labels, ids);
    for (int i = 0; i < N; i++) free(recs[i]);
  }
}

static loader *make_jpeg_loader(int threads, int nchw, int mix) {
  static char *paths[2];
  paths[0] = jpg_paths[0];
  paths[1] = jpg_paths[1];
  loader_cfg c;
  loader_cfg_defaults(&c);
  c.shards = paths;
  c.nshards = 2;
  c.rank = 1;
  c.world = 2;
  c.batch = 5;
  c.drop_last = 0;
  c.threads = threads;
  c.prefetch = 2;
  c.out_size = 24;
  c.nchw = nchw;
  c.jitter = 0.4f;
  c.mixup_alpha = mix ? 0.4f : 0;
  c.cutmix_alpha = mix ? 1.0f : 0;
  c.seed = 1234;
  dp_err err;
  dp_err_clear(&err);
  loader *l = loader_create(&c, &err);
  if (!l) DP_FATAL("loader_create", "test", "%s", err.msg);
  return l;
}

typedef struct {
  float *img;
  int32_t labels[8];
  int64_t ids[8], idx[8], n;
  float soft[8 * K];
  int has_soft;
} snap;

static int64_t run_epochs(loader *l, snap *out, int64_t max) {
  int64_t k = 0;
  for (int64_t e = 0; e < 2; e++) {
    loader_start_epoch(l, e);
    const loader_batch *b;
    while ((b = loader_next_batch(l)) && k < max) {
      snap *s = &out[k++];
      size_t ib = (size_t)5 * 24 * 24 * 3 * sizeof(float);
      s->img = malloc(ib);
      memcpy(s->img, b->images, ib);
      memcpy(s->labels, b->labels, 5 * sizeof(int32_t));
      memcpy(s->ids, b->ids, 5 * sizeof(int64_t));
      memcpy(s->idx, b->sample_index, 5 * sizeof(int64_t));
      s->n = b->n;
      s->has_soft = b->soft_targets != NULL;
      if (s->has_soft) memcpy(s->soft, b->soft_targets, 5 * K * sizeof(float));
    }
  }
  return k;
}

static int snap_equal(const snap *a, const snap *b) {
  return a->n == b->n && a->has_soft == b->has_soft &&
         memcmp(a->img, b->img, (size_t)5 * 24 * 24 * 3 * sizeof(float)) == 0 &&
         memcmp(a->labels, b->labels, sizeof a->labels) == 0 &&
         memcmp(a->ids, b->ids, sizeof a->ids) == 0 && memcmp(a->idx, b->idx, sizeof a->idx) == 0 &&
         (!a->has_soft || memcmp(a->soft, b->soft, sizeof a->soft) == 0);
}

static void test_determinism(void) {
  for (int mix = 0; mix <= 1; mix++) {
    snap s1[16], s3[16];
    memset(s1, 0, sizeof s1);
    memset(s3, 0, sizeof s3);
    loader *l1 = make_jpeg_loader(1, mix, mix), *l3 = make_jpeg_loader(3, mix, mix);
    int64_t n1 = run_epochs(l1, s1, 16), n3 = run_epochs(l3, s3, 16);
    TU_CHECK(n1 == n3 && n1 == 8, "batch counts %lld %lld", (long long)n1, (long long)n3);
    int same = 1, mixed = 0;
    for (int64_t k = 0; k < n1 && k < n3; k++) {
      same &= snap_equal(&s1[k], &s3[k]);
      mixed += s1[k].has_soft;
    }
    TU_CHECK(same, "1 vs 3 threads must give byte-identical batches (mix %d)", mix);
    TU_CHECK(mix ? mixed > 0 : mixed == 0, "mixed batches %d", mixed);
    loader_stats a = loader_get_stats(l1), b = loader_get_stats(l3);
    TU_CHECK(a.skipped == b.skipped && a.skipped >= 1 && a.nskipped_ids == b.nskipped_ids &&
             memcmp(a.skipped_ids, b.skipped_ids, (size_t)a.nskipped_ids * sizeof(int64_t)) == 0,
             "skip stats deterministic (%lld vs %lld)", (long long)a.skipped, (long long)b.skipped);
    TU_CHECK(a.wait_s >= 0 && a.bytes_read > 0, "stats");
    // Seek: batch 2 of epoch 1 straight away equals the read-through one.
    loader_start_epoch(l3, 1);
    loader_seek(l3, 2);
    const loader_batch *bt = loader_next_batch(l3);
    TU_CHECK(bt && bt->index == 2, "seek returns batch 2");
    if (bt) {
      snap t = {0};
      t.img = malloc((size_t)5 * 24 * 24 * 3 * sizeof(float));
      memcpy(t.img, bt->images, (size_t)5 * 24 * 24 * 3 * sizeof(float));
      memcpy(t.labels, bt->labels, 5 * sizeof(int32_t));
      memcpy(t.ids, bt->ids, 5 * sizeof(int64_t));
      memcpy(t.idx, bt->sample_index, 5 * sizeof(int64_t));
      t.n = bt->n;
      t.has_soft = bt->soft_targets != NULL;
      if (t.has_soft) memcpy(t.soft, bt->soft_targets, 5 * K * sizeof(float));
      TU_CHECK(snap_equal(&t, &s1[4 + 2]), "seek(2) in epoch 1 equals the read-through batch");
      free(t.img);
    }
    // The first epoch's batches differ from the second's.
    TU_CHECK(!snap_equal(&s1[0], &s1[4]), "epochs differ");
    for (int64_t k = 0; k < n1; k++) free(s1[k].img);
    for (int64_t k = 0; k < n3; k++) free(s3[k].img);
    loader_destroy(l1);
    loader_destroy(l3);
  }
}

static void test_class_counts(void) {
  loader *l = make_raw_loader(0, 1, 0, 8, 1);
  int64_t counts[K];
  loader_class_counts(l, counts);
  for (int k = 0; k < K; k++) {
    int64_t want = 0;
    for (int g = 0; g < TOTAL; g++) want += g % K == k;
    TU_CHECK(counts[k] == want, "class %d count %lld want %lld", k, (long long)counts[k], (long long)want);
  }
  TU_CHECK(loader_total_samples(l) == TOTAL && loader_num_classes(l) == K, "totals");
  void *bufs[8];
  size_t sizes[8];
  int nbuf = loader_image_buffers(l, bufs, sizes, 8);
  TU_CHECK(nbuf >= 2, "prefetch buffers %d", nbuf);
  for (int i = 0; i < nbuf && i < 8; i++)
    TU_CHECK(((uintptr_t)bufs[i] & 4095) == 0 && sizes[i] % 4096 == 0 && sizes[i] >= 8 * RAW * RAW * 3,
             "buffer %d page-aligned", i);
  TU_CHECK(strcmp(loader_class_name(l, 2), "class2") == 0, "class name %s", loader_class_name(l, 2));
  // Abandoning an epoch half way and destroying must not hang.
  loader_start_epoch(l, 0);
  TU_CHECK(loader_next_batch(l) != NULL, "first batch");
  loader_destroy(l);
}

int main(void) {
  mkdir(tu_fixture_dir(), 0755);
  write_raw_shards();
  write_jpeg_shards();
  test_coverage();
  test_determinism();
  test_class_counts();
  return tu_finish("test_input_loader");
}
