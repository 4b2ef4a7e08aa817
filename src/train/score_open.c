// score_open / score_close (train/score.h): the weights' metadata decides the
// model, the classes and the whole input transform; nothing is guessed.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "input/shard.h"
#include "nn/ops.h"
#include "train/score.h"

// The eval transform keys (docs/weights.md). This build implements one
// transform; a file that asks for another is refused rather than scored
// with the wrong preprocessing. Absent keys mean the loader's defaults.
static const struct {
  const char *key, *want;
} transform_keys[] = {
    {"dptrain.eval_resize_filter", "bilinear"},
    {"dptrain.eval_resize_antialias", "0"},
    {"dptrain.eval_crop", "center"},
};

// The file's eval transform keys against the one this build implements.
// Returns 0 or -1 with err.
static int check_transform(const char *path, char *err, int err_sz) {
  dp_err de;
  st_file *f = st_open(path, &de);
  if (!f) {
    snprintf(err, (size_t)err_sz, "%s", de.msg);
    return -1;
  }
  int rc = -1;
  for (size_t i = 0; i < sizeof transform_keys / sizeof transform_keys[0]; i++) {
    const char *v = st_meta(f, transform_keys[i].key);
    if (v && strcmp(v, transform_keys[i].want)) {
      snprintf(err, (size_t)err_sz,
               "'%s': metadata %s = '%.40s': this build scores with %s = '%s' only (the transform of "
               "`dptrain eval`, docs/weights.md)",
               path, transform_keys[i].key, v, transform_keys[i].key, transform_keys[i].want);
      goto done;
    }
  }
  rc = 0;
done:
  st_close(f);
  return rc;
}

#define SC_FAIL(setting, ...)                                             \
  do {                                                                    \
    int n_ = snprintf(err, (size_t)err_sz, "setting '%s': ", setting);    \
    snprintf(err + n_, (size_t)(err_sz - n_), __VA_ARGS__);               \
    return -1;                                                            \
  } while (0)

int score_open(score_ctx *sc, const score_spec *sp, train_device *td, const dist_ctx *d, char *err, int err_sz) {
  memset(sc, 0, sizeof *sc);
  char e[1024];
  if (weights_read_meta(sp->weights, &sc->meta, e, sizeof e) != 0) SC_FAIL("weights", "%s", e);
  sc->have_meta = 1;
  const weights_meta *wm = &sc->meta;
  if (check_transform(sp->weights, e, sizeof e)) SC_FAIL("weights", "%s", e);
  // Post-hoc logit offsets ("dptrain.logit_bias", parsed and checked by weights_read_meta).
  if (wm->logit_bias) {
    sc->logit_bias = dp_malloc((size_t)wm->num_classes * sizeof(float), "logit bias");
    memcpy(sc->logit_bias, wm->logit_bias, (size_t)wm->num_classes * sizeof(float));
  }
  snprintf(sc->transform, sizeof sc->transform,
           "%s: resize shorter side to int(%lld / %.4g) bilinear, center crop %lld, mean/std from the weights",
           wm->model.channels == 1 ? "gray" : "RGB", (long long)wm->model.image_size, (double)wm->eval_resize_ratio,
           (long long)wm->model.image_size);
  loader_cfg lc;
  loader_cfg_defaults(&lc);
  if (sp->files) {
    sc->file_mode = 1;
    sc->files = *sp->files;
    sc->files.num_classes = wm->num_classes;
    sc->files.class_names = (const char *const *)wm->class_names;
    sc->files_name[0] = sc->files.name ? sc->files.name : "files";
    lc.shards = (char **)sc->files_name;
    lc.nshards = 1;
    lc.files = &sc->files;
  } else {
    sc->npaths = shard_glob(sp->data, &sc->paths);
    if (sc->npaths <= 0) SC_FAIL("data", "no shards match '%.900s'", sp->data ? sp->data : "");
    lc.shards = sc->paths;
    lc.nshards = sc->npaths;
    lc.allow_unlabelled = 1;
  }
  lc.rank = d->rank;
  lc.world = d->world;
  lc.batch = sp->batch;
  lc.drop_last = 0;
  lc.shuffle = 0;
  lc.train = 0;
  lc.fill_skipped = 0;   // an undecodable record becomes an error row, not another record's
  lc.threads = sp->loader_threads > 0 ? sp->loader_threads : (d->loader_threads > 0 ? d->loader_threads : 1);
  lc.out_size = (int)wm->model.image_size;
  lc.out_channels = wm->model.channels;
  memcpy(lc.mean, wm->mean, sizeof lc.mean);
  memcpy(lc.std, wm->std, sizeof lc.std);
  lc.eval_resize_ratio = wm->eval_resize_ratio;
  lc.num_classes = 0;
  lc.clamp_batch = 1;
  lc.out_uint8 = td->loader_uint8;   // a GPU normalises on the device
  dp_err lerr;
  dp_err_clear(&lerr);
  sc->l = loader_create(&lc, &lerr);
  if (!sc->l) SC_FAIL("data", "%s", lerr.msg);
  sc->records = loader_total_samples(sc->l);
  int lc_classes = loader_num_classes(sc->l);
  int64_t *counts = dp_calloc((size_t)lc_classes, sizeof(int64_t), "class counts");
  loader_class_counts(sc->l, counts);
  for (int c = 0; c < lc_classes; c++) sc->labelled += counts[c];
  free(counts);
  // Labels are only comparable under the weights' classes; unlabelled shards
  // may carry any class attributes.
  if (!sc->file_mode && sc->labelled > 0 &&
      shard_class_names_diff((const char *const *)wm->class_names, wm->num_classes, sp->weights,
                             loader_class_names(sc->l), lc_classes, "the shards", e, sizeof e) &&
      (wm->class_names || lc_classes != wm->num_classes))
    SC_FAIL("data", "the shards' labels are not the classes the weights were trained on: %s (shards without "
            "labels, -1, may have any classes)", e);
  sc->batch = loader_batch_size(sc->l);
  sc->g = nn_graph_create(td->be, sc->batch, 1);
  model_build(sc->g, &wm->model);   // no loss op: the logits are all scoring reads
  nn_graph_finalize(sc->g);
  if (weights_load(sp->weights, sc->g, sp->weights_flags, e, sizeof e)) SC_FAIL("weights", "%s", e);
  nn_graph_set_training(sc->g, 0);
  sc->params = nn_param_count(sc->g);   // without the flat buffer's alignment padding
  sc->flops_per_image_fwd = nn_flops_per_image(sc->g);
  return 0;
}

void score_close(score_ctx *sc) {
  if (sc->g) nn_graph_destroy(sc->g);
  if (sc->l) loader_destroy(sc->l);
  if (sc->paths) shard_paths_free(sc->paths, sc->npaths);
  if (sc->have_meta) weights_meta_free(&sc->meta);
  free(sc->logit_bias);
  memset(sc, 0, sizeof *sc);
}
