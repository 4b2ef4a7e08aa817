// Threaded input pipeline. See loader.h.
//
// Work is split into items = (batch b, slot j) of this rank's stream, claimed
// in order by N worker threads. Batch b is written into prefetch buffer
// b % prefetch, and may be worked on only once the consumer has released
// batch b - prefetch, so at most `prefetch` batches are in flight. Every item
// depends only on (seed, epoch, rank, world, b, j), never on which thread ran
// it or when, so batches are byte-identical whatever the thread count.
//
// Corrupt records (documented rule): if slot j's record fails (read, decode,
// absurd header, zero length), it is counted as skipped with its id and
// reason, and the slot is filled with the next record of the same batch
// (j+1, j+2, ... wrapping within the batch's valid slots) that decodes,
// augmented with a stream keyed by slot j's own sample so it is not an exact
// copy. Batches therefore stay independent (no shift of later batches). If no
// record of a batch decodes, that batch comes back with n = 0. With
// cfg.fill_skipped = 0 (evaluation) the slot is not filled: label -1, zeros,
// and n keeps every position.
//
// Padding: without drop_last the sampler pads ranks to ceil(total / world)
// with wrapped-around duplicates (real labels); the last batch of the epoch
// may then be partial: rows [n, B) are zeros with label -1, id -1.
// With drop_last, the sampler drops the global tail and the loader drops a
// partial last batch.
#include "input/loader.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rng.h"
#include "core/timer.h"
#include "input/augment.h"
#include "input/decode.h"
#include "input/mix.h"
#include "input/shard.h"
#include "input/shard_files.h"

#define REPLACE_SALT 0x7e91ace5ULL
#define MAX_RECORD_BYTES (256LL << 20)   // larger records are skipped as corrupt

typedef struct {
  loader_batch b;
  void *img;                 // page-aligned image buffer (B * per_sample)
  int64_t done;              // items finished
  int ready;
  int64_t decoded, skipped, bytes;
  int64_t *skip_id;          // (B) record id skipped at slot j, or INT64_MIN
  int *skip_shard;           // (B) its shard
  int64_t *skip_rec;         // (B) its record index
  char **skip_msg;           // (B) its reason (malloc'd on a skip, freed when merged)
  int64_t nvalid;            // slots that got a decoded image
  int reason_j;              // slot whose reason is kept (highest j)
  char reason[512];
  float *soft;               // (B, num_classes)
  int mixed;
} pslot;

typedef struct {
  pthread_t th;
  loader *l;
  decoder *dec;
  aug_scratch *as;
  uint8_t *rbuf;
  int64_t rcap;
} worker;

struct loader {
  loader_cfg cfg;
  char **paths;
  shard **shards;
  int nshards;
  int64_t *cum;              // (nshards + 1) first global index of each shard
  int64_t total;
  sampler smp;
  int64_t nbatches;          // batches of a whole epoch
  int64_t nbatches_now;      // batches of the current epoch (after a mid-epoch restart: fewer)
  int num_classes;
  int64_t *class_counts;
  aug_out out;
  mix_cfg mix;
  int64_t per_sample;        // elements per sample
  size_t elem_size;
  int P;
  size_t img_bytes;          // bytes of each image buffer (multiple of 4096)
  pslot *slots;
  worker *w;
  int nw;
  // Shared state, under mu.
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  int64_t epoch;
  int started;
  int64_t next_item, end_item;
  int64_t released;          // batches < released are no longer held by the consumer
  int64_t consume;           // next batch the consumer returns
  int64_t held;              // batch the consumer holds, or -1
  int active;                // items in progress
  int stop, quit;
  loader_stats stats;
  loader_skip *skips;        // recorded, not yet taken (loader_take_skips)
  int64_t nskips, skips_cap;
  loader_dims dims;          // what its memory depends on (loader_memory_bytes)
};

void loader_cfg_defaults(loader_cfg *c) {
  memset(c, 0, sizeof(*c));
  c->world = 1;
  c->batch = 32;
  c->drop_last = 1;
  c->shuffle = 1;
  c->seed = 1;
  c->threads = 2;
  c->prefetch = 3;
  c->out_size = 224;
  c->out_channels = 3;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  memcpy(c->mean, mean, sizeof(mean));
  memcpy(c->std, std, sizeof(std));
  c->train = 1;
  c->rrc_scale[0] = 0.08f;
  c->rrc_scale[1] = 1.0f;
  c->rrc_ratio[0] = 3.0f / 4.0f;
  c->rrc_ratio[1] = 4.0f / 3.0f;
  c->hflip_p = 0.5f;
  c->eval_resize_ratio = 0.875f;
  c->mix_prob = 1.0f;
  c->fill_skipped = 1;
}

static void slot_reset(loader *l, pslot *s) {
  s->done = 0;
  s->ready = 0;
  s->decoded = s->skipped = s->bytes = 0;
  s->nvalid = 0;
  s->reason_j = -1;
  s->reason[0] = 0;
  s->mixed = 0;
  for (int64_t j = 0; j < l->cfg.batch; j++) {
    s->skip_id[j] = INT64_MIN;
    free(s->skip_msg[j]);
    s->skip_msg[j] = NULL;
  }
}

// Global sample index -> (shard, record).
static void locate(const loader *l, int64_t g, int *si, int64_t *ri) {
  int lo = 0, hi = l->nshards - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (l->cum[mid] <= g) lo = mid; else hi = mid - 1;
  }
  *si = lo;
  *ri = g - l->cum[lo];
}

// Reads, decodes and renders global sample g with randomness r into dst.
static int sample_render(worker *w, int64_t g, dp_rng *r, void *dst, int64_t *bytes, dp_err *err) {
  loader *l = w->l;
  const loader_cfg *c = &l->cfg;
  int si;
  int64_t ri;
  locate(l, g, &si, &ri);
  const shard *s = l->shards[si];
  int64_t len = shard_record_size(s, ri);
  if (len > w->rcap) {
    dp_err_set(err, DECODE_ERR_DATA, "record of %lld bytes exceeds the %lld-byte limit",
               (long long)len, (long long)w->rcap);
    return -1;
  }
  len = shard_read_record(s, ri, w->rbuf, w->rcap, err);
  if (len < 0) return -1;
  *bytes += len;
  img_header hdr;
  img_view v;
  aug_params p;
  uint8_t *px = NULL;   // pixels of a non-JPEG file (file shards: the shard's decode hook)
  const int other = s->files && !shard_files_is_jpeg(w->rbuf, len);
  if (s->codec == SHARD_CODEC_RAW) {
    if (decoder_raw(w->dec, w->rbuf, len, s->raw_h, s->raw_w, s->raw_c, c->out_channels, &v, err))
      return -1;
    hdr.w = v.w;
    hdr.h = v.h;
  } else if (other) {   // then as raw pixels: the same channel conversion and transform
    int pw = 0, ph = 0, pc = 0;
    if (shard_files_decode(s, w->rbuf, len, &px, &pw, &ph, &pc, err) ||
        decoder_raw(w->dec, px, (int64_t)pw * ph * pc, ph, pw, pc, c->out_channels, &v, err)) {
      free(px);
      return -1;
    }
    hdr.w = v.w;
    hdr.h = v.h;
  } else if (decoder_jpeg_header(w->dec, w->rbuf, len, &hdr, err)) {
    return -1;
  }
  if (c->train && c->policy == AUG_POLICY_DEFECTS) {
    aug_defects_params(r, hdr.w, hdr.h, c->out_size, c->eval_resize_ratio, c->crop_pad, c->hflip_p, &p);
    // Colour jitter only for the classes it cannot create or remove.
    int32_t y = s->labels[ri];
    if (c->jitter > 0 && c->jitter_by_class && y >= 0 && y < LOADER_MAX_CLASSES && c->jitter_class_ok[y]) {
      aug_params jp;
      aug_train_params(r, hdr.w, hdr.h, c->rrc_scale, c->rrc_ratio, 0.0f, c->jitter, &jp);
      p.bright = jp.bright, p.contrast = jp.contrast, p.sat = jp.sat, p.jitter = jp.jitter;
    }
  } else if (c->train) {
    aug_train_params(r, hdr.w, hdr.h, c->rrc_scale, c->rrc_ratio, c->hflip_p,
                     !c->jitter_by_class || c->jitter_class_ok[s->labels[ri]] ? c->jitter : 0.0f, &p);
  } else {
    aug_eval_params(hdr.w, hdr.h, c->out_size, c->eval_resize_ratio, &p);
  }
  if (s->codec != SHARD_CODEC_RAW && !other) {
    int num, den;
    decoder_pick_scale(p.cw, p.ch, c->out_size, &num, &den);
    if (decoder_jpeg_decode(w->dec, w->rbuf, len, &hdr, c->out_channels, num, den, &v, err))
      return -1;
  }
  aug_render(&v, hdr.w, hdr.h, &p, &l->out, w->as, dst);
  free(px);
  return 0;
}

static int64_t batch_valid(const loader *l, int64_t b) {
  int64_t n = l->smp.per_rank - b * l->cfg.batch;
  return n < l->cfg.batch ? n : l->cfg.batch;
}

static void item_process(worker *w, int64_t t) {
  loader *l = w->l;
  const int64_t B = l->cfg.batch, b = t / B, j = t % B;
  pslot *s = &l->slots[b % l->P];
  const int64_t nb = batch_valid(l, b);
  void *dst = (uint8_t *)s->img + (size_t)(j * l->per_sample) * l->elem_size;
  loader_batch *lb = &s->b;
  int64_t bytes = 0, decoded = 0;
  int ok = 0;
  dp_err err;
  dp_err_clear(&err);
  int64_t own_g = -1, own_id = INT64_MIN, own_rec = -1;
  int own_shard = -1;
  char own_reason[320] = "";
  if (j < nb) {
    uint64_t seed = l->cfg.seed;
    own_g = sampler_get(&l->smp, b * B + j);
    dp_rng r = dp_rng_stream3(seed, (uint64_t)l->epoch, (uint64_t)own_g);
    if (sample_render(w, own_g, &r, dst, &bytes, &err) == 0) {
      ok = 1;
      decoded++;
      int si;
      int64_t ri;
      locate(l, own_g, &si, &ri);
      lb->labels[j] = l->shards[si]->labels[ri];
      lb->ids[j] = l->shards[si]->ids[ri];
      lb->sample_index[j] = own_g;
    } else {
      int si;
      int64_t ri;
      locate(l, own_g, &si, &ri);
      own_id = l->shards[si]->ids[ri];
      own_shard = si;
      own_rec = ri;
      snprintf(own_reason, sizeof own_reason, "%s", err.msg);
      char msg[512];
      snprintf(msg, sizeof msg, "%.200s record %lld (id %lld): %.280s", l->shards[si]->path,
               (long long)ri, (long long)own_id, err.msg);
      memcpy(err.msg, msg, sizeof msg);
      // Fill from the next record of this batch that decodes (training only:
      // evaluation leaves the row empty so the record is not counted).
      for (int64_t k = 1; k < nb && !ok && l->cfg.fill_skipped; k++) {
        int64_t jj = (j + k) % nb;
        int64_t g = sampler_get(&l->smp, b * B + jj);
        dp_rng r2 = dp_rng_stream3(seed ^ REPLACE_SALT, (uint64_t)l->epoch, (uint64_t)own_g);
        dp_err e2;
        dp_err_clear(&e2);
        int64_t dummy = 0;
        if (sample_render(w, g, &r2, dst, &dummy, &e2) == 0) {
          ok = 1;
          int s2;
          int64_t r2i;
          locate(l, g, &s2, &r2i);
          lb->labels[j] = l->shards[s2]->labels[r2i];
          lb->ids[j] = l->shards[s2]->ids[r2i];
          lb->sample_index[j] = g;
        }
      }
    }
  }
  if (!ok) {   // padding, an unfilled corrupt record, or nothing in the batch decodes
    memset(dst, 0, (size_t)l->per_sample * l->elem_size);
    lb->labels[j] = -1;
    lb->ids[j] = own_id != INT64_MIN ? own_id : -1;
    lb->sample_index[j] = own_id != INT64_MIN ? own_g : -1;
  }
  pthread_mutex_lock(&l->mu);
  s->bytes += bytes;
  s->decoded += decoded;
  s->nvalid += ok;
  if (own_id != INT64_MIN) {
    s->skipped++;
    s->skip_id[j] = own_id;
    s->skip_shard[j] = own_shard;
    s->skip_rec[j] = own_rec;
    s->skip_msg[j] = dp_strdup(own_reason);
    if (j > s->reason_j) {
      s->reason_j = (int)j;
      snprintf(s->reason, sizeof s->reason, "%s", err.msg);
    }
  }
  int last = ++s->done == B;
  if (!last) {
    l->active--;
    // Only a restart waits for idle workers; the consumer waits for `ready`.
    if (l->stop && l->active == 0) pthread_cond_broadcast(&l->cv_done);
    pthread_mutex_unlock(&l->mu);
    return;
  }
  pthread_mutex_unlock(&l->mu);
  // Last item of the batch: finish it (deterministic, depends only on content).
  lb->index = b;
  // Without filling, rows keep their positions even when none decodes, so
  // evaluation sees (and excludes) every corrupt record.
  lb->n = s->nvalid > 0 || !l->cfg.fill_skipped ? nb : 0;
  s->mixed = 0;
  lb->soft_targets = NULL;
  if (mix_enabled(&l->mix) && lb->n > 0) {
    s->mixed = mix_batch_apply(&l->mix, &l->out, l->cfg.seed, l->epoch, b, s->img, lb->labels,
                               lb->n, s->soft, NULL);
    if (s->mixed) {
      lb->soft_targets = s->soft;
      memset(s->soft + lb->n * l->num_classes, 0,
             (size_t)(l->cfg.batch - lb->n) * l->num_classes * sizeof(float));
    }
  }
  pthread_mutex_lock(&l->mu);
  s->ready = 1;
  l->active--;
  pthread_cond_broadcast(&l->cv_done);
  pthread_mutex_unlock(&l->mu);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  loader *l = w->l;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->quit &&
           (l->stop || l->next_item >= l->end_item ||
            l->next_item / l->cfg.batch >= l->released + l->P))
      pthread_cond_wait(&l->cv_work, &l->mu);
    if (l->quit) break;
    int64_t t = l->next_item++;
    l->active++;
    pthread_mutex_unlock(&l->mu);
    item_process(w, t);   // decrements active under the lock
    pthread_mutex_lock(&l->mu);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

// Stops the workers, then restarts the pipeline at (epoch, first batch).
static int64_t batches_for(const loader *l, int64_t per_rank) {
  return l->cfg.drop_last ? per_rank / l->cfg.batch : (per_rank + l->cfg.batch - 1) / l->cfg.batch;
}

static void pipeline_restart(loader *l, int64_t epoch, int64_t start, int64_t first) {
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  while (l->active > 0) pthread_cond_wait(&l->cv_done, &l->mu);
  l->epoch = epoch;
  sampler_set_epoch_at(&l->smp, epoch, start);
  l->nbatches_now = batches_for(l, l->smp.per_rank);
  if (first < 0) first = 0;
  if (first > l->nbatches_now) first = l->nbatches_now;
  l->next_item = first * l->cfg.batch;
  l->end_item = l->nbatches_now * l->cfg.batch;
  l->released = first;
  l->consume = first;
  l->held = -1;
  for (int i = 0; i < l->P; i++) slot_reset(l, &l->slots[i]);
  l->started = 1;
  l->stop = 0;
  pthread_cond_broadcast(&l->cv_work);
  pthread_mutex_unlock(&l->mu);
}

static void free_shards(loader *l) {
  for (int i = 0; i < l->nshards; i++) shard_close(l->shards[i]);
  free(l->shards);
  l->shards = NULL;
  l->nshards = 0;
}

// threads <= 0: one decode thread per CPU this process may run on (its
// binding), leaving nothing out: the consumer mostly waits.
// ---- memory plan -----------------------------------------------------------------
static int threads_from_affinity(void);
// Worst-case decoder buffer of record r: its size from /meta/width and
// /meta/height, else from its JPEG header (read here); 0 when decoding
// needs no buffer (raw records in the output's channel count, unreadable
// records: they are skipped before any decode).
static int64_t record_decode_bytes(const shard *s, int64_t r, int channels, decoder *dec, uint8_t **buf,
                                   int64_t *cap) {
  if (s->codec == SHARD_CODEC_RAW) return s->raw_c == channels ? 0 : (int64_t)s->raw_h * s->raw_w * channels;
  const int32_t *mw = s->meta[META_WIDTH], *mh = s->meta[META_HEIGHT];
  img_header hdr = {0, 0, DECODE_CS_UNKNOWN, 0};
  if (mw && mh && mw[r] > 0 && mh[r] > 0) {
    hdr.w = mw[r];
    hdr.h = mh[r];
    return decoder_worst_bytes(&hdr, channels);
  }
  int64_t len = shard_record_size(s, r);
  if (len <= 0 || len > MAX_RECORD_BYTES) return 0;
  dp_err err;
  for (int64_t want = len < 65536 ? len : 65536;; want = len) {   // the header is nearly always in the first 64 KB
    if (*cap < want) {
      free(*buf);
      *cap = want;
      *buf = dp_malloc((size_t)want, "header scan");
    }
    dp_err_clear(&err);
    int64_t got = shard_read_record_prefix(s, r, *buf, want, &err);
    if (got > 0 && decoder_jpeg_header(dec, *buf, got, &hdr, &err) == 0) return decoder_worst_bytes(&hdr, channels);
    if (want == len) return 0;
  }
}

static void dims_add_shard(loader_dims *d, const shard *s, int channels, decoder *dec, uint8_t **buf, int64_t *cap) {
  d->total += s->n;
  int cols = 0;
  for (int c = 0; c < META_NCOLS; c++) cols += s->meta[c] != NULL;
  d->index_bytes += (s->n + 1) * (int64_t)(8 + 4 + 8 + 4 * cols);
  for (int64_t r = 0; r < s->n; r++) {
    int64_t n = shard_record_size(s, r);
    if (n > d->max_record_bytes) d->max_record_bytes = n < MAX_RECORD_BYTES ? n : MAX_RECORD_BYTES;
    int64_t dec_bytes = record_decode_bytes(s, r, channels, dec, buf, cap);
    if (dec_bytes > d->max_decode_bytes) d->max_decode_bytes = dec_bytes;
  }
}

int loader_scan(const loader_cfg *cfg, loader_dims *d, dp_err *err) {
  memset(d, 0, sizeof *d);
  d->max_record_bytes = 1;
  decoder *dec = decoder_create();
  uint8_t *buf = NULL;
  int64_t cap = 0;
  int rc = 0;
  for (int i = 0; i < cfg->nshards && rc == 0; i++) {
    shard *s = shard_open(cfg->shards[i], err);
    if (!s) {
      rc = -1;
      break;
    }
    if (i == 0) d->num_classes = s->num_classes;
    dims_add_shard(d, s, cfg->out_channels, dec, &buf, &cap);
    shard_close(s);
  }
  if (cfg->num_classes > d->num_classes) d->num_classes = cfg->num_classes;
  free(buf);
  decoder_destroy(dec);
  return rc;
}

int64_t loader_plan_bytes(const loader_cfg *c, const loader_dims *d) {
  int64_t B = c->batch, per_sample = (int64_t)c->out_size * c->out_size * c->out_channels;
  int64_t img = (B * per_sample * (c->out_uint8 ? 1 : 4) + 4095) / 4096 * 4096;
  // Per slot: images, labels, ids, sample index, skip id / shard / record / message, soft targets.
  int64_t slot = img + B * (4 + 8 + 8 + 8 + 4 + 8 + 8) + B * (int64_t)d->num_classes * 4;
  aug_out o;
  aug_out_init(&o, c->out_size, c->out_channels, c->nchw, c->out_uint8, c->mean, c->std);
  int64_t rec = d->max_record_bytes < MAX_RECORD_BYTES ? d->max_record_bytes : MAX_RECORD_BYTES;
  int64_t thread = rec + d->max_decode_bytes + aug_scratch_bytes(&o);
  int threads = c->threads > 0 ? c->threads : threads_from_affinity();
  int prefetch = c->prefetch <= 0 ? 3 : c->prefetch < 2 ? 2 : c->prefetch;   // as loader_create
  return (int64_t)prefetch * slot + (int64_t)threads * thread + d->index_bytes +
         d->num_classes * (int64_t)sizeof(int64_t);
}

int64_t loader_memory_bytes(const loader *l) { return loader_plan_bytes(&l->cfg, &l->dims); }

static int threads_from_affinity(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? n : 1;
}

loader *loader_create(const loader_cfg *cfg, dp_err *err) {
  loader_cfg fixed = *cfg;
  if (fixed.threads <= 0) fixed.threads = threads_from_affinity();
  if (fixed.prefetch <= 0) fixed.prefetch = 3;
  if (fixed.prefetch < 2) fixed.prefetch = 2;
  const loader_cfg *c = &fixed;
  if (c->nshards <= 0 || c->batch <= 0 || c->threads < 1 || c->prefetch < 2 ||
      c->out_size <= 0 || (c->out_channels != 1 && c->out_channels != 3) || c->world < 1 ||
      c->rank < 0 || c->rank >= c->world) {
    dp_err_set(err, 1, "loader_create: bad config (nshards %d, batch %lld, threads %d, "
               "prefetch %d, out %d x %d ch, rank %d/%d); need shards, batch > 0, threads >= 1, "
               "prefetch >= 2, 1 or 3 channels", c->nshards, (long long)c->batch, c->threads,
               c->prefetch, c->out_size, c->out_channels, c->rank, c->world);
    return NULL;
  }
  loader *l = dp_calloc(1, sizeof(*l), "loader");
  l->cfg = *c;
  l->shards = dp_calloc((size_t)c->nshards, sizeof(shard *), "loader shards");
  l->cum = dp_calloc((size_t)c->nshards + 1, sizeof(int64_t), "loader shards");
  int64_t maxrec = 1;
  l->dims.max_record_bytes = 1;
  decoder *scan_dec = decoder_create();
  uint8_t *scan_buf = NULL;
  int64_t scan_cap = 0;
  for (int i = 0; i < c->nshards; i++) {
    shard *s = c->files ? shard_open_files(c->files, err)
                        : shard_open_ex(c->shards[i], c->allow_unlabelled ? SHARD_OPEN_UNLABELLED : 0, err);
    if (!s) {
      free(scan_buf);
      decoder_destroy(scan_dec);
      free_shards(l);
      free(l->cum);
      free(l);
      return NULL;
    }
    l->shards[l->nshards++] = s;
    if (i == 0) {
      l->num_classes = s->num_classes;
    } else {
      // Same count is not enough: permuted names would train label k of one
      // shard as class k of another without a word.
      char msg[400];
      if (shard_class_names_diff((const char *const *)l->shards[0]->class_names, l->num_classes,
                                 l->shards[0]->path, (const char *const *)s->class_names, s->num_classes,
                                 s->path, msg, sizeof msg)) {
        dp_err_set(err, 1, "shards of one run must have the same classes: %s", msg);
        free(scan_buf);
        decoder_destroy(scan_dec);
        free_shards(l);
        free(l->cum);
        free(l);
        return NULL;
      }
    }
    l->cum[i + 1] = l->cum[i] + s->n;
    // Record sizes and the worst-case decode of this shard (docs/memory.md).
    dims_add_shard(&l->dims, s, c->out_channels, scan_dec, &scan_buf, &scan_cap);
  }
  free(scan_buf);
  decoder_destroy(scan_dec);
  maxrec = l->dims.max_record_bytes;
  if (c->num_classes > 0 && c->num_classes < l->num_classes) {
    dp_err_set(err, 1, "config num_classes %d < the shards' %d", c->num_classes, l->num_classes);
    free_shards(l);
    free(l->cum);
    free(l);
    return NULL;
  }
  if (c->num_classes > 0) l->num_classes = c->num_classes;
  l->cfg.num_classes = l->num_classes;
  l->dims.num_classes = l->num_classes;
  l->total = l->cum[l->nshards];
  l->class_counts = dp_calloc((size_t)l->num_classes, sizeof(int64_t), "class counts");
  for (int i = 0; i < l->nshards; i++)
    for (int64_t r = 0; r < l->shards[i]->n; r++) {
      int32_t y = l->shards[i]->labels[r];
      if (y >= 0 && y < l->num_classes) l->class_counts[y]++;
    }
  // The batch is checked against the data here, before anything batch-sized
  // exists: "--batch 1000000" used to allocate tens of GB first.
  int64_t per_rank = c->drop_last ? l->total / c->world : (l->total + c->world - 1) / c->world;
  if (c->clamp_batch && !c->drop_last && per_rank > 0 && l->cfg.batch > per_rank) l->cfg.batch = per_rank;
  int64_t nb = c->drop_last ? per_rank / l->cfg.batch : (per_rank + l->cfg.batch - 1) / l->cfg.batch;
  if (c->min_batches > 0 && nb < c->min_batches) {
    dp_err_set(err, LOADER_ERR_BATCH, "batch %lld x %d rank(s)%s needs %lld sample(s) per epoch, the %d shard(s) "
               "hold %lld (%s...)", (long long)c->batch, c->world,
               c->min_batches > 1 ? " x accumulation" : "", (long long)(c->batch * c->world * c->min_batches),
               c->nshards, (long long)l->total, c->shards[0]);
    free(l->class_counts);
    free_shards(l);
    free(l->cum);
    free(l);
    return NULL;
  }
  c = &l->cfg;
  size_t bytes_per_sample = (size_t)c->out_size * (size_t)c->out_size * (size_t)c->out_channels *
                            (c->out_uint8 ? 1u : sizeof(float));
  size_t buf_bytes;
  if (__builtin_mul_overflow(bytes_per_sample, (size_t)c->batch, &buf_bytes) ||
      __builtin_mul_overflow(buf_bytes, (size_t)c->prefetch, &buf_bytes) || buf_bytes > ((size_t)1 << 46)) {
    dp_err_set(err, LOADER_ERR_BATCH, "batch %lld of %d x %d x %d images needs more than 64 TiB of batch "
               "buffers", (long long)c->batch, c->out_size, c->out_size, c->out_channels);
    free(l->class_counts);
    free_shards(l);
    free(l->cum);
    free(l);
    return NULL;
  }
  sampler_init(&l->smp, l->total, c->rank, c->world, c->shuffle, c->drop_last, c->seed);
  if (c->sampler_mode != SAMPLER_UNIFORM) {   // class-aware draws need every label, in global order
    int32_t *all = dp_malloc((size_t)(l->total > 0 ? l->total : 1) * sizeof(int32_t), "sampler labels");
    for (int i = 0; i < l->nshards; i++)
      memcpy(all + l->cum[i], l->shards[i]->labels, (size_t)l->shards[i]->n * sizeof(int32_t));
    sampler_set_classes(&l->smp, c->sampler_mode, all, l->num_classes);
    free(all);
  }
  l->nbatches = c->drop_last ? l->smp.per_rank / c->batch
                             : (l->smp.per_rank + c->batch - 1) / c->batch;
  l->nbatches_now = l->nbatches;
  aug_out_init(&l->out, c->out_size, c->out_channels, c->nchw, c->out_uint8, c->mean, c->std);
  l->mix = (mix_cfg){c->mixup_alpha, c->cutmix_alpha, c->mix_prob, l->num_classes};
  l->per_sample = (int64_t)c->out_size * c->out_size * c->out_channels;
  l->elem_size = c->out_uint8 ? 1 : sizeof(float);
  l->P = c->prefetch;
  l->slots = dp_calloc((size_t)l->P, sizeof(pslot), "loader slots");
  size_t B = (size_t)c->batch;
  l->img_bytes = (B * (size_t)l->per_sample * l->elem_size + 4095) & ~(size_t)4095;
  for (int i = 0; i < l->P; i++) {
    pslot *s = &l->slots[i];
    size_t img_bytes = l->img_bytes;
    s->img = dp_aligned_alloc(4096, img_bytes, "batch images");
    memset(s->img, 0, img_bytes);
    s->b.labels = dp_calloc(B, sizeof(int32_t), "batch labels");
    s->b.ids = dp_calloc(B, sizeof(int64_t), "batch ids");
    s->b.sample_index = dp_calloc(B, sizeof(int64_t), "batch sample index");
    s->skip_id = dp_calloc(B, sizeof(int64_t), "batch skips");
    s->skip_shard = dp_calloc(B, sizeof(int), "batch skips");
    s->skip_rec = dp_calloc(B, sizeof(int64_t), "batch skips");
    s->skip_msg = dp_calloc(B, sizeof(char *), "batch skips");
    s->soft = dp_calloc(B * (size_t)l->num_classes, sizeof(float), "batch soft targets");
    memset(s->soft, 0, B * (size_t)l->num_classes * sizeof(float));   // touched now: mixed batches add nothing
    if (c->out_uint8) s->b.images_u8 = s->img; else s->b.images = s->img;
    slot_reset(l, s);
  }
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv_work, NULL);
  pthread_cond_init(&l->cv_done, NULL);
  l->stop = 1;
  l->held = -1;
  l->nw = c->threads;
  l->w = dp_calloc((size_t)l->nw, sizeof(worker), "loader workers");
  for (int i = 0; i < l->nw; i++) {
    worker *w = &l->w[i];
    w->l = l;
    w->dec = decoder_create();
    w->as = aug_scratch_create(&l->out);
    w->rcap = maxrec < MAX_RECORD_BYTES ? maxrec : MAX_RECORD_BYTES;
    w->rbuf = dp_malloc((size_t)w->rcap, "loader read buffer");
    // The worst case of the data, allocated and touched now: the largest
    // record, the largest source image decoded at full size (a small crop
    // gets no DCT down-scaling). Decoding never grows these later.
    memset(w->rbuf, 0, (size_t)w->rcap);
    decoder_prepare(w->dec, (size_t)l->dims.max_decode_bytes);
    int rc = pthread_create(&w->th, NULL, worker_main, w);
    DP_CHECK(rc == 0, "pthread_create for a loader worker", "too many threads?");
  }
  return l;
}

void loader_destroy(loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->quit = 1;
  pthread_cond_broadcast(&l->cv_work);
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < l->nw; i++) {
    pthread_join(l->w[i].th, NULL);
    decoder_destroy(l->w[i].dec);
    aug_scratch_destroy(l->w[i].as);
    free(l->w[i].rbuf);
  }
  free(l->w);
  for (int i = 0; i < l->P; i++) {
    pslot *s = &l->slots[i];
    free(s->img);
    free(s->b.labels);
    free(s->b.ids);
    free(s->b.sample_index);
    if (s->skip_msg)
      for (int64_t j = 0; j < l->cfg.batch; j++) free(s->skip_msg[j]);
    free(s->skip_id);
    free(s->skip_shard);
    free(s->skip_rec);
    free(s->skip_msg);
    free(s->soft);
  }
  free(l->slots);
  free(l->skips);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv_work);
  pthread_cond_destroy(&l->cv_done);
  sampler_free(&l->smp);
  free(l->class_counts);
  free_shards(l);
  free(l->cum);
  free(l);
}

void loader_start_epoch(loader *l, int64_t epoch) { pipeline_restart(l, epoch, 0, 0); }

void loader_start_epoch_at(loader *l, int64_t epoch, int64_t start) { pipeline_restart(l, epoch, start, 0); }

void loader_seek(loader *l, int64_t batch_index) {
  pipeline_restart(l, l->started ? l->epoch : 0, l->started ? l->smp.start : 0, batch_index);
}

int64_t loader_batches_per_epoch(const loader *l) { return l->nbatches; }
int64_t loader_batches_this_epoch(const loader *l) { return l->started ? l->nbatches_now : l->nbatches; }

const char *loader_shard_policy(const loader *l) { return l->shards[0]->augment_policy; }

int loader_cfg_set_policy(loader_cfg *c, const char *requested, const char *jitter_classes, char *source,
                          size_t source_size, dp_err *err) {
  if (c->nshards < 1) {
    dp_err_set(err, 1, "no shards to read the augmentation policy from");
    return -1;
  }
  shard *s = shard_open(c->shards[0], err);
  if (!s) return -1;
  int rc = -1;
  int pol = strcmp(requested, "auto") ? aug_policy_parse(requested) : -2;
  if (pol == -1) {
    dp_err_set(err, 1, "augment-policy '%s' is not auto, defects or imagenet", requested);
    goto done;
  }
  if (pol == -2) {   // auto: what the dataset says it expects
    if (!s->augment_policy[0]) {
      pol = AUG_POLICY_IMAGENET;
      snprintf(source, source_size, "default (%s has no augment_policy attribute)", s->path);
    } else if ((pol = aug_policy_parse(s->augment_policy)) < 0) {
      dp_err_set(err, 1, "%s: augment_policy attribute '%s' is not defects or imagenet (pass --augment-policy)",
                 s->path, s->augment_policy);
      goto done;
    } else {
      snprintf(source, source_size, "the shards' augment_policy attribute (%s)", s->path);
    }
  } else {
    snprintf(source, source_size, "--augment-policy");
  }
  c->policy = pol;
  c->jitter_by_class = 0;
  memset(c->jitter_class_ok, 0, sizeof c->jitter_class_ok);
  if (jitter_classes && jitter_classes[0]) {
    c->jitter_by_class = 1;
    const char *p = jitter_classes;
    while (*p) {
      const char *e = strchr(p, ',');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      int found = -1;
      for (int k = 0; k < s->num_classes && found < 0; k++)
        if (strlen(s->class_names[k]) == n && !strncmp(s->class_names[k], p, n)) found = k;
      if (found < 0) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p + n && n > 0 && v >= 0 && v < s->num_classes) found = (int)v;
      }
      if (found < 0) {
        dp_err_set(err, 1, "jitter-classes: '%.*s' is neither a class name nor an index of %s", (int)n, p, s->path);
        goto done;
      }
      c->jitter_class_ok[found] = 1;
      p += n;
      if (*p == ',') p++;
    }
  }
  rc = 0;
done:
  shard_close(s);
  return rc;
}
int64_t loader_sample_bytes(const loader *l) { return l->per_sample * (int64_t)l->elem_size; }
int64_t loader_total_samples(const loader *l) { return l->total; }
int loader_num_classes(const loader *l) { return l->num_classes; }

const char *loader_class_name(const loader *l, int c) {
  const shard *s = l->shards[0];
  if (c < 0 || c >= s->num_classes || !s->class_names) return "?";
  return s->class_names[c];
}

const char *const *loader_class_names(const loader *l) {
  return (const char *const *)l->shards[0]->class_names;
}

const char *loader_shard_path(const loader *l, int shard) {
  return shard >= 0 && shard < l->nshards ? l->shards[shard]->path : "?";
}

int64_t loader_batch_size(const loader *l) { return l->cfg.batch; }

void loader_locate(const loader *l, int64_t g, int *shard, int64_t *record) { locate(l, g, shard, record); }

int64_t loader_global_index(const loader *l, int shard, int64_t record) { return l->cum[shard] + record; }

int64_t loader_take_skips(loader *l, loader_skip **out) {
  pthread_mutex_lock(&l->mu);
  int64_t n = l->nskips;
  *out = l->skips;
  l->skips = NULL;
  l->nskips = l->skips_cap = 0;
  pthread_mutex_unlock(&l->mu);
  return n;
}

void loader_class_counts(const loader *l, int64_t *counts) {
  memcpy(counts, l->class_counts, (size_t)l->num_classes * sizeof(int64_t));
}

// Folds a consumed batch's counters into the stats, in batch order.
static void stats_merge(loader *l, const pslot *s) {
  loader_stats *st = &l->stats;
  st->decoded += s->decoded;
  st->bytes_read += s->bytes;
  if (s->skipped == 0) return;
  for (int64_t j = 0; j < l->cfg.batch; j++) {
    if (s->skip_id[j] == INT64_MIN) continue;
    st->skipped++;
    if (st->nskipped_ids < 64) st->skipped_ids[st->nskipped_ids++] = s->skip_id[j];
    if (l->nskips == l->skips_cap) {
      l->skips_cap = l->skips_cap ? 2 * l->skips_cap : 64;
      l->skips = dp_realloc(l->skips, (size_t)l->skips_cap * sizeof(loader_skip), "skipped records");
    }
    loader_skip *k = &l->skips[l->nskips++];
    k->shard = s->skip_shard[j];
    k->record = s->skip_rec[j];
    k->id = s->skip_id[j];
    k->epoch = l->epoch;
    snprintf(k->reason, sizeof k->reason, "%s", s->skip_msg[j] ? s->skip_msg[j] : "");
  }
  snprintf(st->last_error, sizeof st->last_error, "%s", s->reason);
  if (st->skipped <= 10)
    LOG_WARN("input: skipped corrupt record: %s%s", s->reason,
             st->skipped == 10 ? " (further skips are counted, not logged)" : "");
}

const loader_batch *loader_next_batch(loader *l) {
  if (!l->started) pipeline_restart(l, 0, 0, 0);
  pthread_mutex_lock(&l->mu);
  if (l->held >= 0) {   // hand the previous buffer back to the workers
    slot_reset(l, &l->slots[l->held % l->P]);
    l->released = l->held + 1;
    l->held = -1;
    pthread_cond_broadcast(&l->cv_work);
  }
  if (l->consume >= l->nbatches_now) {
    pthread_mutex_unlock(&l->mu);
    return NULL;
  }
  pslot *s = &l->slots[l->consume % l->P];
  if (!s->ready) {
    double t0 = dp_now();
    while (!s->ready) pthread_cond_wait(&l->cv_done, &l->mu);
    l->stats.wait_s += dp_now() - t0;
  }
  stats_merge(l, s);
  l->held = l->consume++;
  pthread_mutex_unlock(&l->mu);
  return &s->b;
}

int loader_image_buffers(const loader *l, void **ptrs, size_t *bytes, int max) {
  for (int i = 0; i < l->P && i < max; i++) {
    ptrs[i] = l->slots[i].img;
    bytes[i] = l->img_bytes;
  }
  return l->P;
}

loader_stats loader_get_stats(const loader *l) {
  loader_stats st;
  pthread_mutex_lock((pthread_mutex_t *)&l->mu);
  st = l->stats;
  pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
  return st;
}
