// dptrain data import-idx: MNIST / Fashion-MNIST IDX files (gzip-compressed as
// Debian's dataset-fashion-mnist ships them, or plain) to raw-codec grayscale
// shards PREFIX-00000.h5, ... Decompression uses zlib's gz* API, which reads
// plain files transparently. zlib reaches the link through HDF5's libraries.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/afile.h"
#include "core/opts.h"
#include "data/data_tools.h"
#include "dt_common.h"
#include "input/shard.h"

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

// Reads a whole IDX file; returns the payload (after the header) or NULL.
static uint8_t *idx_read(const char *path, int want_ndim, int64_t dims[3], int64_t *count) {
  gzFile g = gzopen(path, "rb");
  if (!g) {
    fprintf(stderr, "import-idx: cannot open %s: %s\n", path, dp_errno_str());
    return NULL;
  }
  uint8_t hdr[16];
  int hl = 4 + 4 * want_ndim;
  if (gzread(g, hdr, (unsigned)hl) != hl) {
    fprintf(stderr, "import-idx: %s: file too short for an IDX header\n", path);
    gzclose(g);
    return NULL;
  }
  if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] != want_ndim) {
    fprintf(stderr, "import-idx: %s: not a uint8 IDX file with %d dimensions (magic %02x%02x%02x%02x)\n",
            path, want_ndim, hdr[0], hdr[1], hdr[2], hdr[3]);
    gzclose(g);
    return NULL;
  }
  int64_t total = 1;
  for (int d = 0; d < want_ndim; d++) {
    const uint8_t *p = hdr + 4 + 4 * d;
    dims[d] = ((int64_t)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    if (dims[d] < 1 || dims[d] > (1 << 28)) {
      fprintf(stderr, "import-idx: %s: bad dimension %lld\n", path, (long long)dims[d]);
      gzclose(g);
      return NULL;
    }
    total *= dims[d];
  }
  if (total > (INT64_C(1) << 34)) {
    fprintf(stderr, "import-idx: %s: %lld bytes is too large\n", path, (long long)total);
    gzclose(g);
    return NULL;
  }
  uint8_t *buf = dp_malloc((size_t)total, "IDX payload");
  int64_t got = 0;
  while (got < total) {
    unsigned chunk = (unsigned)(total - got > (1 << 30) ? (1 << 30) : total - got);
    int r = gzread(g, buf + got, chunk);
    if (r <= 0) break;
    got += r;
  }
  gzclose(g);
  if (got != total) {
    fprintf(stderr, "import-idx: %s: truncated (%lld of %lld payload bytes)\n", path, (long long)got,
            (long long)total);
    free(buf);
    return NULL;
  }
  *count = dims[0];
  return buf;
}

typedef struct {
  char images[1024], labels[1024], out[1000], class_names[16];
  int64_t shard_size;
} idx_args;
static const dp_opt idx_opt_list[] = {
    DP_OPT_S(idx_args, "images", images, DP_OPT_REQUIRED, "IDX image file (.gz or plain)"),
    DP_OPT_S(idx_args, "labels", labels, DP_OPT_REQUIRED, "IDX label file (.gz or plain)"),
    DP_OPT_S(idx_args, "out", out, DP_OPT_REQUIRED, "output prefix: PREFIX-00000.h5, ..."),
    DP_OPT_I(idx_args, "shard-size", DP_OPT_I64, shard_size, 1, INT64_C(1) << 31, 0, "records per shard"),
    DP_OPT_S(idx_args, "class-names", class_names, 0, "auto | fashion | digits | none"),
};
static const dp_opts idx_table = {
    "dptrain data import-idx", idx_opt_list, 5,
    "usage: dptrain data import-idx --images FILE --labels FILE --out PREFIX\n"
    "         [--shard-size 10000] [--class-names auto|fashion|digits]\n"
    "auto: Fashion-MNIST names when there are 10 classes, else class_<k>.\n",
    0};

int data_import_idx_main(int argc, char **argv) {
  idx_args a = {"", "", "", "auto", 10000};
  int prc = dp_opts_parse(&idx_table, &a, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  const char *images = a.images, *labels = a.labels, *prefix = a.out, *names_opt = a.class_names;
  int64_t shard_size = a.shard_size;
  if (strcmp(names_opt, "auto") && strcmp(names_opt, "fashion") && strcmp(names_opt, "digits") &&
      strcmp(names_opt, "none")) {
    fprintf(stderr, "dptrain data import-idx: setting 'class-names': '%s' is not auto, fashion, digits or none\n",
            names_opt);
    return 2;
  }
  {   // create PREFIX's folder
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", prefix);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
      *slash = 0;
      dp_err mkerr;
      if (dp_mkdir_p(dir, &mkerr) != 0) {
        fprintf(stderr, "import-idx: %s\n", mkerr.msg);
        return 1;
      }
    }
  }
  int64_t idim[3] = {0}, ldim[3] = {0}, ni = 0, nl = 0;
  // Unreadable or malformed input files are bad input (exit 2).
  uint8_t *img = idx_read(images, 3, idim, &ni);
  if (!img) return 2;
  uint8_t *lab = idx_read(labels, 1, ldim, &nl);
  if (!lab) {
    free(img);
    return 2;
  }
  if (ni != nl) {
    fprintf(stderr, "import-idx: %lld images but %lld labels\n", (long long)ni, (long long)nl);
    free(img);
    free(lab);
    return 2;
  }
  int maxl = 0;
  for (int64_t i = 0; i < nl; i++) maxl = lab[i] > maxl ? lab[i] : maxl;
  int nc = maxl + 1;
  if (nc < 10 && (!strcmp(names_opt, "fashion") || !strcmp(names_opt, "digits") || !strcmp(names_opt, "auto")))
    nc = 10;   // MNIST-style sets always have 10 classes, even if a small file misses one
  char **names = dp_calloc((size_t)nc, sizeof(char *), "class names");
  for (int c = 0; c < nc; c++) {
    char tmp[32];
    if (!strcmp(names_opt, "digits")) snprintf(tmp, sizeof tmp, "%d", c);
    else if (nc == 10 && strcmp(names_opt, "none") != 0) snprintf(tmp, sizeof tmp, "%s", fashion_names[c]);
    else snprintf(tmp, sizeof tmp, "class_%d", c);
    names[c] = dp_strdup(tmp);
  }
  shard_writer_cfg cfg = {SHARD_CODEC_RAW, nc, (const char *const *)names, (int)idim[1], (int)idim[2], 1, NULL};
  int64_t rec = idim[1] * idim[2];
  int nshards = 0;
  dp_err err;
  char path[1200];
  for (int64_t i0 = 0; i0 < ni; i0 += shard_size) {
    snprintf(path, sizeof path, "%s-%05d.h5", prefix, nshards++);
    shard_writer *w = shard_writer_create(path, &cfg, &err);
    if (!w) {
      fprintf(stderr, "import-idx: %s\n", err.msg);
      return 1;
    }
    for (int64_t i = i0; i < ni && i < i0 + shard_size; i++)
      if (shard_writer_add(w, img + i * rec, rec, lab[i], i, NULL, &err) != 0) {
        fprintf(stderr, "import-idx: %s\n", err.msg);
        return 1;
      }
    if (shard_writer_close(w, &err) != 0) {
      fprintf(stderr, "import-idx: %s\n", err.msg);
      return 1;
    }
  }
  printf("import-idx: %lld images %lldx%lld, %d classes -> %d shard(s) %s-00000.h5 ...\n", (long long)ni,
         (long long)idim[1], (long long)idim[2], nc, nshards, prefix);
  for (int c = 0; c < nc; c++) free(names[c]);
  free(names);
  free(img);
  free(lab);
  return 0;
}
