// dptrain data pack: an ImageFolder tree (one folder per class, sorted class
// names, files found recursively) or a CSV manifest (header with path,label
// and optional metadata columns; no quoted fields) -> stratified train/val/test
// shards. JPEGs are stored byte for byte after a header check; PNG, PPM and
// PGM are decoded and re-encoded as JPEG (quality --quality); other files are
// reported and skipped, with the reason.
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/afile.h"
#include "core/opts.h"
#include "core/rng.h"
#include "data/data_tools.h"
#include "dt_common.h"
#include "data/csv.h"
#include "img_decode.h"
#include "input/shard.h"

typedef struct {
  char *path;     // file to read
  char *rel;      // id source (relative path)
  char *label;
  int cls;
  int32_t meta[META_NCOLS];
} pack_item;

typedef struct {
  pack_item *v;
  int64_t n, cap;
} item_list;

static void items_push(item_list *l, const char *path, const char *rel, const char *label, const int32_t *meta) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 1024;
    l->v = dp_realloc(l->v, (size_t)l->cap * sizeof(pack_item), "pack items");
  }
  pack_item *it = &l->v[l->n++];
  it->path = dp_strdup(path);
  it->rel = dp_strdup(rel);
  it->label = dp_strdup(label);
  it->cls = -1;
  for (int c = 0; c < META_NCOLS; c++) it->meta[c] = meta ? meta[c] : SHARD_META_MISSING;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Sorted, non-hidden entries of a directory.
static int list_dir(const char *dir, char ***names) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0, cap = 0;
  *names = NULL;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      *names = dp_realloc(*names, (size_t)cap * sizeof(char *), "dir entries");
    }
    (*names)[n++] = dp_strdup(e->d_name);
  }
  closedir(d);
  if (n) qsort(*names, (size_t)n, sizeof(char *), cmp_name);
  return n;
}

static void walk_class(item_list *l, const char *root, const char *rel, const char *label) {
  char full[4096], sub[2048];
  snprintf(full, sizeof full, "%s/%s", root, rel);
  char **names;
  int n = list_dir(full, &names);
  for (int i = 0; i < n; i++) {
    struct stat st;
    if (snprintf(sub, sizeof sub, "%s/%s", rel, names[i]) >= (int)sizeof sub ||
        snprintf(full, sizeof full, "%s/%s", root, sub) >= (int)sizeof full) {
      fprintf(stderr, "pack: path too long, skipped: %s/%s/%s\n", root, rel, names[i]);
    } else if (stat(full, &st) == 0) {
      if (S_ISDIR(st.st_mode)) walk_class(l, root, sub, label);
      else if (S_ISREG(st.st_mode)) items_push(l, full, sub, label, NULL);
    }
    free(names[i]);
  }
  free(names);
}

static int read_imagefolder(const char *root, item_list *l) {
  char **names;
  int n = list_dir(root, &names);
  if (n < 0) {
    fprintf(stderr, "pack: cannot read %s: %s\n", root, strerror(errno));
    return -1;
  }
  for (int i = 0; i < n; i++) {
    char full[2048];
    struct stat st;
    snprintf(full, sizeof full, "%s/%s", root, names[i]);
    if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) walk_class(l, root, names[i], names[i]);
    free(names[i]);
  }
  free(names);
  return 0;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) *--e = 0;
  return s;
}

static uint8_t *read_file(const char *path, int64_t *len);

// A metadata cell: empty = missing; otherwise an integer >= -1 (-1 = missing).
static int meta_cell(const char *v, int32_t *out) {
  if (!*v) return 0;
  char *end = NULL;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end || x < SHARD_META_MISSING || x > INT32_MAX) return -1;
  *out = (int32_t)x;
  return 0;
}

// RFC 4180 manifest (data/csv.h): a header naming `path`, `label` and any of
// the metadata columns; paths relative to the CSV's folder unless absolute.
static int read_csv(const char *csv, item_list *l) {
  int64_t len = 0;
  uint8_t *buf = read_file(csv, &len);
  if (!buf) {
    fprintf(stderr, "pack: cannot read %s: %s\n", csv, strerror(errno));
    return -1;
  }
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", csv);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  else snprintf(dir, sizeof dir, ".");
  csv_reader r;
  csv_init(&r, (const char *)buf, (size_t)len);
  char **f;
  int nf = csv_next(&r, &f), rc = -1;
  int col_path = -1, col_label = -1, *col_meta = NULL, ncols = nf;
  if (nf <= 0) {
    fprintf(stderr, "pack: %s: %s\n", csv, nf < 0 ? r.err : "empty file (no header)");
    goto done;
  }
  col_meta = dp_calloc((size_t)nf, sizeof(int), "csv columns");
  for (int k = 0; k < nf; k++) {
    const char *t = trim(f[k]);
    col_meta[k] = -1;
    int dup = (!strcmp(t, "path") && col_path >= 0) || (!strcmp(t, "label") && col_label >= 0);
    if (!strcmp(t, "path")) col_path = k;
    else if (!strcmp(t, "label")) col_label = k;
    else
      for (int c = 0; c < META_NCOLS; c++)
        if (!strcmp(t, shard_meta_names[c])) {
          for (int q = 0; q < k; q++) dup |= col_meta[q] == c;
          col_meta[k] = c;
        }
    if (dup) {
      fprintf(stderr, "pack: %s:1: column '%s' appears twice in the header\n", csv, t);
      goto done;
    }
  }
  if (col_path < 0 || col_label < 0) {
    fprintf(stderr, "pack: %s: the header needs 'path' and 'label' columns\n", csv);
    goto done;
  }
  while ((nf = csv_next(&r, &f)) != 0) {
    if (nf < 0) {
      fprintf(stderr, "pack: %s: %s\n", csv, r.err);
      goto done;
    }
    if (nf == 1 && !*trim(f[0])) continue;   // blank line
    if (nf != ncols) {
      fprintf(stderr, "pack: %s:%lld: %d fields, the header has %d\n", csv, (long long)r.line, nf, ncols);
      goto done;
    }
    int32_t meta[META_NCOLS];
    for (int c = 0; c < META_NCOLS; c++) meta[c] = SHARD_META_MISSING;
    for (int k = 0; k < nf; k++)
      if (col_meta[k] >= 0 && meta_cell(trim(f[k]), &meta[col_meta[k]])) {
        fprintf(stderr, "pack: %s:%lld: column '%s': '%s' is not an integer >= -1\n", csv, (long long)r.line,
                shard_meta_names[col_meta[k]], f[k]);
        goto done;
      }
    char *rel = trim(f[col_path]), *label = trim(f[col_label]), full[2048];
    if (!*rel || !*label) {
      fprintf(stderr, "pack: %s:%lld: empty %s\n", csv, (long long)r.line, *rel ? "label" : "path");
      goto done;
    }
    for (const unsigned char *p = (const unsigned char *)label; *p; p++)
      if (*p < 0x20 || *p == 0x7f) {   // class names are one line each (shard schema)
        fprintf(stderr, "pack: %s:%lld: label contains a control character (0x%02x)\n", csv, (long long)r.line, *p);
        goto done;
      }
    if (rel[0] == '/') snprintf(full, sizeof full, "%s", rel);
    else snprintf(full, sizeof full, "%s/%s", dir, rel);
    items_push(l, full, rel, label, meta);
  }
  rc = 0;
done:
  free(col_meta);
  csv_free(&r);
  free(buf);
  return rc;
}

static int is_uint(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

// Class table: sorted unique names, or 0..max when every label is an integer.
static int assign_classes(item_list *l, char ***names_out) {
  int all_int = l->n > 0;
  for (int64_t i = 0; i < l->n && all_int; i++) all_int = is_uint(l->v[i].label) && strlen(l->v[i].label) < 6;
  char **names = NULL;
  int nc = 0;
  if (all_int) {
    for (int64_t i = 0; i < l->n; i++) {
      l->v[i].cls = atoi(l->v[i].label);
      if (l->v[i].cls + 1 > nc) nc = l->v[i].cls + 1;
    }
    names = dp_calloc((size_t)nc, sizeof(char *), "class names");
    for (int c = 0; c < nc; c++) {
      char tmp[16];
      snprintf(tmp, sizeof tmp, "%d", c);
      names[c] = dp_strdup(tmp);
    }
  } else {
    char **all = dp_malloc((size_t)l->n * sizeof(char *), "labels");
    for (int64_t i = 0; i < l->n; i++) all[i] = l->v[i].label;
    qsort(all, (size_t)l->n, sizeof(char *), cmp_name);
    names = dp_calloc((size_t)l->n, sizeof(char *), "class names");
    for (int64_t i = 0; i < l->n; i++)
      if (i == 0 || strcmp(all[i], all[i - 1])) names[nc++] = dp_strdup(all[i]);
    free(all);
    for (int64_t i = 0; i < l->n; i++) {
      int lo = 0, hi = nc - 1;
      while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strcmp(names[mid], l->v[i].label) < 0) lo = mid + 1;
        else hi = mid;
      }
      l->v[i].cls = lo;
    }
  }
  *names_out = names;
  return nc;
}

static uint8_t *read_file(const char *path, int64_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *buf = NULL;
  int64_t n = 0, cap = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 1 << 16;
      buf = dp_realloc(buf, (size_t)cap, "file buffer");
    }
    size_t r = fread(buf + n, 1, (size_t)(cap - n), f);
    n += (int64_t)r;
    if (r == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

typedef struct {
  char imagefolder[1024], csv[1024], out[1000];
  double val_frac, test_frac;
  int64_t shard_size, shard_bytes, min_class_count;
  uint64_t seed;
  int quality;
  char policy[16];
} pack_args;
#define PA pack_args
static const dp_opt pack_opt_list[] = {
    DP_OPT_S(PA, "imagefolder", imagefolder, 0, "ImageFolder root: one folder per class"),
    DP_OPT_S(PA, "csv", csv, 0, "CSV manifest (RFC 4180): header with path, label and metadata columns"),
    DP_OPT_S(PA, "out", out, DP_OPT_REQUIRED, "output directory"),
    DP_OPT_F(PA, "val-frac", DP_OPT_DOUBLE, val_frac, 0, 1, DP_OPT_HI_OPEN, "validation share per class"),
    DP_OPT_F(PA, "test-frac", DP_OPT_DOUBLE, test_frac, 0, 1, DP_OPT_HI_OPEN, "test share per class"),
    DP_OPT_I(PA, "shard-size", DP_OPT_I64, shard_size, 1, INT64_C(1) << 31, 0, "records per shard"),
    DP_OPT_I(PA, "shard-bytes", DP_OPT_I64, shard_bytes, 0, INT64_C(1) << 50, 0, "bytes per shard (0: by count)"),
    {"seed", DP_OPT_U64, offsetof(PA, seed), 0, 0, 0, 0, 0, 0, "seed of the stratified split"},
    DP_OPT_I(PA, "quality", DP_OPT_INT, quality, 1, 100, 0, "JPEG quality of re-encoded PNG/PPM/PGM"),
    DP_OPT_I(PA, "min-class-count", DP_OPT_I64, min_class_count, 0, INT64_C(1) << 40, 0,
             "warn about a label with fewer images than this (its val/test share rounds to few or none)"),
    DP_OPT_S(PA, "augment-policy", policy, 0,
             "defects | imagenet | none: the augmentation the dataset expects, recorded in the shards"),
};
static const dp_opts pack_table = {
    "dptrain data pack", pack_opt_list, (int)(sizeof pack_opt_list / sizeof pack_opt_list[0]),
    "usage: dptrain data pack (--imagefolder DIR | --csv FILE) --out DIR\n"
    "         [--val-frac 0.1] [--test-frac 0.1] [--shard-size 1000 | --shard-bytes B]\n"
    "         [--seed 1] [--quality 95 (re-encoded PNG/PPM/PGM)] [--min-class-count 10]\n"
    "         [--augment-policy defects|imagenet|none (default defects)]\n",
    0};

// OUT/skipped.txt (file<TAB>reason), written atomically at the end.
static void skip_note(dp_afile **log, const char *out, const char *file, const char *why) {
  if (!*log) {
    char path[1200];
    dp_err err;
    dp_mkdir_p(out, &err);
    snprintf(path, sizeof path, "%s/skipped.txt", out);
    *log = dp_afile_open(path, &err);
    if (!*log) DP_FATAL("creating skipped.txt", "check --out", "%s", err.msg);
  }
  fprintf(dp_afile_stream(*log), "%s\t%s\n", file, why);
}

int data_pack_main(int argc, char **argv) {
  // The policy the packed dataset expects (issue 12): image-quality labels are
  // destroyed by crop-and-upscale and jitter, so "defects" unless told otherwise.
  pack_args a = {"", "", "", 0.1, 0.1, 1000, 0, 10, 1, 95, "defects"};
  int prc = dp_opts_parse(&pack_table, &a, argc, argv);
  if (prc) return prc > 0 ? 0 : 2;
  const char *folder = a.imagefolder[0] ? a.imagefolder : NULL, *csv = a.csv[0] ? a.csv : NULL, *out = a.out;
  double val_frac = a.val_frac, test_frac = a.test_frac;
  int64_t shard_size = a.shard_size, shard_bytes = a.shard_bytes;
  uint64_t seed = a.seed;
  int quality = a.quality;
  const char *policy = a.policy;
  if (strcmp(policy, "defects") && strcmp(policy, "imagenet") && strcmp(policy, "none")) {
    fprintf(stderr, "dptrain data pack: bad configuration: setting 'augment-policy': defects, imagenet or none, not '%s'\n",
            policy);
    return 2;
  }
  if (!folder == !csv || val_frac + test_frac >= 1) {
    fprintf(stderr, "dptrain data pack: bad configuration: %s\n",
            !folder == !csv ? "give exactly one of --imagefolder DIR and --csv FILE" : "--val-frac + --test-frac must be < 1");
    return 2;
  }
  item_list l = {0};
  if ((folder ? read_imagefolder(folder, &l) : read_csv(csv, &l)) != 0) return 2;   // bad input
  if (l.n == 0) {
    fprintf(stderr, "pack: no input files found\n");
    return 2;
  }
  // Files whose first bytes are no image format we handle are reported now,
  // before the stratified split, so they do not skew the class shares.
  int64_t skipped = 0, kept = 0;
  dp_afile *skiplog = NULL;
  char path[1200];
  for (int64_t i = 0; i < l.n; i++) {
    uint8_t head[16];
    int64_t hn = 0;
    FILE *f = fopen(l.v[i].path, "rb");
    if (f) {
      hn = (int64_t)fread(head, 1, sizeof head, f);
      fclose(f);
    }
    if (f && img_detect(head, hn) != IMG_UNKNOWN) {
      l.v[kept++] = l.v[i];
      continue;
    }
    const char *why = f ? "unknown image format (not JPEG, PNG, PPM or PGM)" : "cannot open";
    skip_note(&skiplog, out, l.v[i].path, why);
    fprintf(stderr, "pack: skipped %s: %s\n", l.v[i].path, why);
    skipped++;
    free(l.v[i].path);
    free(l.v[i].rel);
    free(l.v[i].label);
  }
  l.n = kept;
  if (l.n == 0) {
    fprintf(stderr, "pack: no image files found\n");
    if (skiplog) {
      dp_err e;
      if (dp_afile_commit(skiplog, &e)) fprintf(stderr, "pack: %s\n", e.msg);
    }
    return 2;
  }
  char **names;
  int nc = assign_classes(&l, &names);
  if (nc > SHARD_MAX_CLASSES) {
    fprintf(stderr, "pack: %d classes, at most %d\n", nc, SHARD_MAX_CLASSES);
    return 2;
  }
  {   // A rare label gets few or no val/test images from the stratified split.
    int64_t *per = dp_calloc((size_t)nc, sizeof(int64_t), "class counts");
    for (int64_t i = 0; i < l.n; i++) per[l.v[i].cls]++;
    for (int c = 0; c < nc; c++)
      if (per[c] < a.min_class_count)
        fprintf(stderr, "pack: warning: label '%s' has %lld image(s), fewer than --min-class-count %lld "
                "(val %lld, test %lld after the split)\n", names[c], (long long)per[c],
                (long long)a.min_class_count, (long long)llround((double)per[c] * val_frac),
                (long long)llround((double)per[c] * test_frac));
    free(per);
  }
  dp_err mkerr;
  if (dp_mkdir_p(out, &mkerr) != 0) {
    fprintf(stderr, "pack: %s\n", mkerr.msg);
    return 1;
  }
  // Stratified split: per class, a seeded shuffle; the first share goes to
  // test, the next to val. Within a split, records are in a seeded order.
  int8_t *split = dp_malloc((size_t)l.n, "splits");
  int64_t *members = dp_malloc((size_t)l.n * sizeof(int64_t), "class members");
  int64_t *perm = dp_malloc((size_t)l.n * sizeof(int64_t), "perm");
  for (int c = 0; c < nc; c++) {
    int64_t m = 0;
    for (int64_t i = 0; i < l.n; i++)
      if (l.v[i].cls == c) members[m++] = i;
    dp_rng r = dp_rng_stream3((uint64_t)seed, 10, (uint64_t)c);
    dp_rng_permutation(&r, perm, m);
    int64_t nt = llround((double)m * test_frac), nv = llround((double)m * val_frac);
    for (int64_t k = 0; k < m; k++) split[members[perm[k]]] = k < nt ? DT_TEST : k < nt + nv ? DT_VAL : DT_TRAIN;
  }
  tjhandle enc = tjInitCompress(), dec = tjInitDecompress();
  PTR_CHECK(enc, "tjInitCompress");
  PTR_CHECK(dec, "tjInitDecompress");
  unsigned char *jpg = NULL;
  unsigned long jcap = 0;
  shard_writer_cfg cfg = {SHARD_CODEC_JPEG, nc, (const char *const *)names, 0, 0, 0,
                          strcmp(policy, "none") ? policy : NULL};
  int64_t done = 0, bytes = 0, stored = 0, reencoded = 0;
  int64_t count[DT_NSPLITS] = {0};
  dt_progress prog;
  dt_progress_start(&prog, "pack", l.n);
  for (int s = 0; s < DT_NSPLITS; s++) {
    int64_t m = 0;
    for (int64_t i = 0; i < l.n; i++)
      if (split[i] == s) members[m++] = i;
    dp_rng r = dp_rng_stream3((uint64_t)seed, 11, (uint64_t)s);
    dp_rng_permutation(&r, perm, m);
    shard_writer *w = NULL;
    int shard_no = 0;
    dp_err err;
    for (int64_t k = 0; k < m; k++, done++) {
      pack_item *it = &l.v[members[perm[k]]];
      int64_t len = 0;
      uint8_t *buf = read_file(it->path, &len);
      char why[300] = "";
      const uint8_t *rec = NULL;
      int64_t rlen = 0;
      int iw = 0, ih = 0, ss, cs;
      if (!buf) {
        snprintf(why, sizeof why, "cannot read: %s", strerror(errno));
      } else if (img_detect(buf, len) == IMG_JPEG) {
        if (tjDecompressHeader3(dec, buf, (unsigned long)len, &iw, &ih, &ss, &cs) != 0) {
          snprintf(why, sizeof why, "bad JPEG header: %s", tjGetErrorStr2(dec));
          tjDestroy(dec);   // a handle that failed a header read can misreport the next one
          dec = tjInitDecompress();
          PTR_CHECK(dec, "tjInitDecompress");
        }
        else if (iw < 1 || ih < 1 || iw > IMG_MAX_SIDE || ih > IMG_MAX_SIDE)
          snprintf(why, sizeof why, "JPEG dimensions %d x %d out of range", iw, ih);
        else rec = buf, rlen = len, stored++;
      } else {
        img_u8 im;
        if (img_decode(buf, len, &im, why, sizeof why) == 0) {
          rlen = (int64_t)dt_jpeg_encode(enc, im.px, im.w, im.h, im.c, (int)quality, &jpg, &jcap);
          rec = jpg, iw = im.w, ih = im.h, reencoded++;
          free(im.px);
        }
      }
      if (!rec) {
        skip_note(&skiplog, out, it->path, why);
        fprintf(stderr, "\npack: skipped %s: %s\n", it->path, why);
        skipped++;
        free(buf);
        continue;
      }
      if (it->meta[META_WIDTH] == SHARD_META_MISSING) it->meta[META_WIDTH] = iw;
      if (it->meta[META_HEIGHT] == SHARD_META_MISSING) it->meta[META_HEIGHT] = ih;
      if (w && (shard_writer_count(w) >= (shard_bytes ? INT64_MAX : shard_size) ||
                (shard_bytes && shard_writer_bytes(w) + rlen > shard_bytes && shard_writer_count(w) > 0))) {
        if (shard_writer_close(w, &err) != 0) DP_FATAL("writing a shard", "disk full?", "%s", err.msg);
        w = NULL;
      }
      if (!w) {
        snprintf(path, sizeof path, "%s/%s-%05d.h5", out, dt_split_names[s], shard_no++);
        w = shard_writer_create(path, &cfg, &err);
        if (!w) DP_FATAL("creating a shard", "check --out", "%s", err.msg);
      }
      if (shard_writer_add(w, rec, rlen, it->cls, shard_hash_id(it->rel, strlen(it->rel)), it->meta, &err) != 0)
        DP_FATAL("adding a record", "bug", "%s", err.msg);
      bytes += rlen;
      count[s]++;
      free(buf);
      dt_progress_update(&prog, done + 1, bytes);
    }
    if (w && shard_writer_close(w, &err) != 0) DP_FATAL("writing a shard", "disk full?", "%s", err.msg);
  }
  dt_progress_done(&prog, done, bytes);
  if (skiplog) {
    dp_err e;
    if (dp_afile_commit(skiplog, &e)) DP_FATAL("writing skipped.txt", "disk full?", "%s", e.msg);
  }
  printf("pack: %lld files, %d classes: %lld JPEG stored as is, %lld re-encoded, %lld skipped%s\n",
         (long long)(l.n + skipped), nc, (long long)stored, (long long)reencoded, (long long)skipped,
         skipped ? " (listed in OUT/skipped.txt)" : "");
  printf("pack: train %lld, val %lld, test %lld records, %.1f MB\n", (long long)count[0], (long long)count[1],
         (long long)count[2], (double)bytes / 1e6);
  tjDestroy(enc);
  tjDestroy(dec);
  tjFree(jpg);
  for (int64_t i = 0; i < l.n; i++) {
    free(l.v[i].path);
    free(l.v[i].rel);
    free(l.v[i].label);
  }
  free(l.v);
  for (int c = 0; c < nc; c++) free(names[c]);
  free(names);
  free(split);
  free(members);
  free(perm);
  return 0;
}
