// The input pipeline used by training, evaluation and scoring:
// sampler -> pread -> decode (TurboJPEG) -> augment -> batch, on N threads with
// a bounded prefetch queue of reusable, page-aligned batch buffers.
// Same seed, world size and rank give byte-identical batches whatever the
// thread count (per-sample randomness comes from the stream (seed, epoch,
// global sample index); mixup from (seed, epoch, batch index)).
//
// Batches of an epoch: this rank's sampler stream (see sampler.h) cut into
// runs of `batch`. drop_last=1 drops the partial last run; drop_last=0 keeps
// it: rows [n, B) are zeros with label -1, id -1, sample_index -1.
//
// Corrupt records (decode error, zero length, absurd header, I/O error) are
// skipped, counted per rank and recorded one by one with the shard, record,
// id and reason (loader_take_skips; the first ten are also logged). The slot is filled deterministically with the
// next record of the SAME batch (slot j+1, j+2, ... wrapping) that decodes,
// augmented with a different stream, so batches stay full and independent of
// each other and of thread timing. A batch whose every record is corrupt
// comes back with n = 0. A shard that fails validation makes loader_create
// fail with an error naming the file (a config error, not a skip).
// With fill_skipped = 0 (evaluation) a corrupt record's row is NOT filled:
// it stays zeros with label -1 and the record's id, so metrics can exclude
// exactly the records that failed (eval.c does).
//
// Threads: `threads` workers decode items (batch, slot) in order into
// `prefetch` page-aligned batch buffers (4096-byte aligned, reused; nothing is
// allocated per batch). A batch stays valid until the next loader_next_batch.
#ifndef DP_INPUT_LOADER_H
#define DP_INPUT_LOADER_H
#include <stdint.h>

#include "core/check.h"
#include "input/sampler.h"

#define LOADER_MAX_CLASSES 1024   // = SHARD_MAX_CLASSES

typedef struct {
  // Data.
  char **shards;            // shard paths (see shard_glob)
  int nshards;
  int rank, world;
  int64_t batch;            // per-rank batch
  int drop_last;            // 1: drop the tail; 0: pad (documented duplicates)
  int shuffle;              // 1 for training, 0 for eval
  uint64_t seed;
  // Threads.
  int threads;              // decode threads; <= 0: one per CPU of the process's binding
  int prefetch;             // batches in flight (>= 2; <= 0: 3)
  // Output.
  int out_size;             // H = W of the output
  int out_channels;         // 1 or 3 (decoded to this)
  int nchw;                 // 0: (N, H, W, C) float (CPU default); 1: (N, C, H, W)
  int out_uint8;            // 1: uint8 pixels, not normalised (GPU normalises)
  float mean[3], std[3];    // on [0, 1] pixels
  // Augmentation (train) / eval transform.
  int train;                // 1: augment per `policy`; 0: resize + center crop
  float rrc_scale[2];       // default (0.08, 1)
  float rrc_ratio[2];       // default (3/4, 4/3)
  float hflip_p;            // default 0.5
  float jitter;             // brightness/contrast/saturation strength (0 = off)
  float eval_resize_ratio;  // shorter side = out_size / ratio (default 0.875)
  float mixup_alpha, cutmix_alpha;   // 0 = off
  float mix_prob;           // probability a batch is mixed (default 1 when alpha > 0)
  int num_classes;          // filled from the shards when 0
  int policy;               // AUG_POLICY_IMAGENET (0, default) | AUG_POLICY_DEFECTS (input/augment.h)
  int crop_pad;             // defects: crop offsets reach this many pixels past the resized image
  int jitter_by_class;      // 0: jitter every class (imagenet) / none (defects);
                            // 1: only the classes with jitter_class_ok[c] = 1
  uint8_t jitter_class_ok[LOADER_MAX_CLASSES];
  int sampler_mode;         // SAMPLER_UNIFORM (default) | SAMPLER_BALANCED | SAMPLER_SQRT (sampler.h)
  int fill_skipped;         // 1 (default): a corrupt record's slot takes another record of
                            // the batch; 0: the row is left empty (label -1), for evaluation
  // Checks made before any batch buffer is allocated.
  int64_t min_batches;      // loader_create fails when an epoch has fewer batches (0 = no check)
  int clamp_batch;          // 1 (with drop_last = 0): batch = min(batch, this rank's samples)
  // Scoring (`dptrain score`).
  int allow_unlabelled;     // 1: records may have label SHARD_LABEL_NONE (-1; input/shard.h)
  const struct shard_files_cfg *files;   // non-NULL: these image files are the one shard
                                         // (input/shard_files.h; nshards = 1, shards[0] is not opened)
} loader_cfg;

void loader_cfg_defaults(loader_cfg *cfg);

typedef struct {
  float *images;            // (B, H, W, C) or (B, C, H, W), unless out_uint8
  uint8_t *images_u8;       // when out_uint8
  int32_t *labels;          // (B)
  float *soft_targets;      // (B, num_classes) when the batch was mixed, else NULL;
                            // rows [n, B) are zero
  int64_t *ids;             // (B) record ids of the samples (after skips)
  int64_t *sample_index;    // (B) global sample index (0..total-1) across shards
  int64_t n;                // valid samples; [n, B) are padding (label -1)
  int64_t index;            // batch number within the epoch
} loader_batch;

typedef struct {
  int64_t decoded, skipped;           // records this rank
  int64_t bytes_read;
  double wait_s;                      // time the consumer waited in next_batch
  int64_t skipped_ids[64];            // first skipped record ids (in batch order)
  int64_t nskipped_ids;
  char last_error[512];               // reason of the last skip
} loader_stats;

// One skipped record.
typedef struct {
  int shard;                // index into the loader's shards (loader_shard_path)
  int64_t record;           // record index in that shard
  int64_t id;               // record id
  int64_t epoch;            // epoch it was skipped in
  char reason[320];
} loader_skip;

// What the loader's memory depends on in the data (loader_scan).
typedef struct {
  int64_t total;              // samples across the shards
  int num_classes;
  int64_t max_record_bytes;   // largest record (as read; capped at the loader's limit)
  int64_t max_decode_bytes;   // one thread's worst-case decoder buffer: the largest source
                              // image decoded at full size, with CMYK staging when its
                              // colour space is not known from the header
  int64_t index_bytes;        // labels, offsets, ids and metadata columns held in memory
} loader_dims;
// Opens the shards of cfg (headers, labels, offsets, metadata; no batch
// buffers) and fills d. Source image sizes come from /meta/width and
// /meta/height; a record without them has its JPEG header read. Returns 0,
// or -1 with err set.
int loader_scan(const loader_cfg *cfg, loader_dims *d, dp_err *err);
// Bytes a loader with cfg over data d allocates: the prefetch slots' batch
// buffers (images, labels, ids, soft targets), each decode thread's read,
// decoder and augmentation buffers, and the shard index. loader_create
// allocates and touches all of it up front for the worst case the data and
// the augmentation can produce (the largest source image decoded at full
// size whatever the crop, mixup/cutmix soft targets), so the loader's
// resident memory does not change with the images or the crops drawn.
int64_t loader_plan_bytes(const loader_cfg *cfg, const loader_dims *d);

typedef struct loader loader;
// dp_err.code of a loader_create failure caused by the batch size (the
// caller names its batch setting); other failures name the shard file.
#define LOADER_ERR_BATCH 2
// Opens and validates every shard (schema, offsets, labels; the shards of one
// loader must have the same num_classes and the same class_names, in order),
// then checks the batch against the data (min_batches) before allocating the
// batch buffers. Returns NULL with err naming the file (or the setting).
loader *loader_create(const loader_cfg *cfg, dp_err *err);
void loader_destroy(loader *l);
// loader_plan_bytes of this loader's configuration (after clamp_batch) and data.
int64_t loader_memory_bytes(const loader *l);
// Starts an epoch (sets the sampler epoch, restarts the workers).
void loader_start_epoch(loader *l, int64_t epoch);
// Starts the rest of an epoch whose first `start` global positions were
// consumed already (resume on any world size; see sampler_set_epoch_at).
void loader_start_epoch_at(loader *l, int64_t epoch, int64_t start);
// Batches of a whole epoch on this rank.
int64_t loader_batches_per_epoch(const loader *l);
// Batches of the current epoch (fewer after loader_start_epoch_at).
int64_t loader_batches_this_epoch(const loader *l);
int64_t loader_total_samples(const loader *l);        // across all shards
int loader_num_classes(const loader *l);
const char *loader_class_name(const loader *l, int c);
// The augment_policy attribute of the first shard ("" when absent).
const char *loader_shard_policy(const loader *l);
// Sets c->policy from `requested` ("defects", "imagenet", or "auto": the
// first shard's augment_policy attribute, imagenet when it has none) and the
// class-aware jitter mask from `jitter_classes` (comma list of class names or
// indices of c->shards[0]; "" = none). `source` says where the policy came
// from. Returns 0, or -1 with err naming the setting's problem.
int loader_cfg_set_policy(loader_cfg *c, const char *requested, const char *jitter_classes, char *source,
                          size_t source_size, dp_err *err);
// Bytes of one sample in the batch buffers (uint8 or float, per out_uint8).
int64_t loader_sample_bytes(const loader *l);
// The class names of the shards ((num_classes) strings).
const char *const *loader_class_names(const loader *l);
const char *loader_shard_path(const loader *l, int shard);
int64_t loader_batch_size(const loader *l);            // after clamp_batch
// Global sample index (0..total-1, shards in order) <-> (shard, record).
void loader_locate(const loader *l, int64_t g, int *shard, int64_t *record);
int64_t loader_global_index(const loader *l, int shard, int64_t record);
// Skipped records not taken yet, in the order their batches were consumed:
// every skip, not only the first ones. *out is malloc'd (free it), NULL when
// there are none. Returns the count.
int64_t loader_take_skips(loader *l, loader_skip **out);
// Class counts over all shards' labels (for class weights = auto).
void loader_class_counts(const loader *l, int64_t *counts);
// Next batch of this epoch, or NULL at its end. The batch stays valid until
// the next call of loader_next_batch (or loader_release).
const loader_batch *loader_next_batch(loader *l);
loader_stats loader_get_stats(const loader *l);
// Resume support: skip to batch index k of the current epoch.
void loader_seek(loader *l, int64_t batch_index);
// The reusable image buffers (page-aligned), e.g. for cudaHostRegister so
// host-to-device copies of batches run from pinned memory. Fills up to max
// pointers and their sizes in bytes; returns the buffer count (= prefetch).
int loader_image_buffers(const loader *l, void **ptrs, size_t *bytes, int max);
#endif
