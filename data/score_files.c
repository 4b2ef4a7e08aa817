// File lists for `dptrain score` (see score_files.h).
#include "data/score_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/csv.h"
#include "data/img_decode.h"
#include "input/decode.h"

#define SF_MAX_DEPTH 32              // folder nesting (a symlink loop ends here)
#define SF_MAX_CSV_BYTES (1LL << 31)

static void sf_push(score_files *sf, const char *path, const char *name, int32_t label) {
  if (sf->n == sf->cap) {
    sf->cap = sf->cap ? 2 * sf->cap : 1024;
    sf->paths = dp_realloc(sf->paths, (size_t)sf->cap * sizeof(char *), "score files");
    sf->names = dp_realloc(sf->names, (size_t)sf->cap * sizeof(char *), "score files");
    sf->labels = dp_realloc(sf->labels, (size_t)sf->cap * sizeof(int32_t), "score files");
  }
  sf->paths[sf->n] = dp_strdup(path);
  sf->names[sf->n] = dp_strdup(name);
  sf->labels[sf->n] = label;
  sf->labelled += label >= 0;
  sf->n++;
}

static void sf_finish(score_files *sf, const char *what) {
  shard_files_cfg *c = &sf->cfg;
  memset(c, 0, sizeof *c);
  c->name = what;
  c->n = sf->n;
  c->paths = (const char *const *)sf->paths;
  c->names = (const char *const *)sf->names;
  c->labels = sf->labels;
  c->decode_other = score_files_decode;
}

static int class_of(const char *name, const char *const *names, int n) {
  for (int c = 0; names && c < n; c++)
    if (names[c] && !strcmp(names[c], name)) return c;
  return -1;
}

// ---- ImageFolder -------------------------------------------------------------------
static int is_image_name(const char *n) {
  const char *dot = strrchr(n, '.');
  if (!dot) return 0;
  static const char *const ext[] = {".jpg", ".jpeg", ".png", ".ppm", ".pgm"};
  for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
    if (!strcasecmp(dot, ext[i])) return 1;
  return 0;
}

static int visible(const struct dirent *e) { return e->d_name[0] != '.'; }
static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

// Adds the images under root/rel (rel "" = root itself) with label y.
static int walk(score_files *sf, const char *root, const char *rel, int32_t y, int depth, char *err, size_t n) {
  char dir[4096];
  if (snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof dir) {
    snprintf(err, n, "%s/%s: path too long", root, rel);
    return -1;
  }
  struct dirent **ents = NULL;
  int ne = scandir(dir, &ents, visible, by_name);
  if (ne < 0) {
    snprintf(err, n, "%.900s: cannot read the folder: %s", dir, strerror(errno));
    return -1;
  }
  int rc = 0;
  for (int i = 0; i < ne; i++) {
    char full[4096], sub[4096];
    const char *nm = ents[i]->d_name;
    if (rc == 0 && (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", nm) >= (int)sizeof sub ||
                    snprintf(full, sizeof full, "%s/%s", root, sub) >= (int)sizeof full)) {
      snprintf(err, n, "%.900s/%.100s: path too long", dir, nm);
      rc = -1;
    }
    struct stat st;
    if (rc == 0 && stat(full, &st) == 0) {
      if (S_ISDIR(st.st_mode)) {
        if (depth >= SF_MAX_DEPTH) {
          snprintf(err, n, "%.900s: folders nested deeper than %d (a symlink loop?)", full, SF_MAX_DEPTH);
          rc = -1;
        } else {
          rc = walk(sf, root, sub, y, depth + 1, err, n);
        }
      } else if (is_image_name(nm)) {
        sf_push(sf, full, sub, y);
      } else {
        sf->ignored++;
      }
    } else if (rc == 0 && is_image_name(nm)) {
      sf_push(sf, full, sub, y);   // a dangling link: its row will say why it cannot be read
    }
    free(ents[i]);
  }
  free(ents);
  return rc;
}

int score_files_imagefolder(score_files *sf, const char *dir, const char *const *class_names, int num_classes,
                            char *err, size_t err_size) {
  memset(sf, 0, sizeof *sf);
  struct dirent **ents = NULL;
  int ne = scandir(dir, &ents, visible, by_name);
  if (ne < 0) {
    snprintf(err, err_size, "setting 'imagefolder': %s: cannot read the folder: %s", dir, strerror(errno));
    return -1;
  }
  int rc = 0, others = 0;
  char other_names[256] = "";
  for (int i = 0; i < ne; i++) {
    const char *nm = ents[i]->d_name;
    char full[4096];
    struct stat st;
    int isdir = snprintf(full, sizeof full, "%s/%s", dir, nm) < (int)sizeof full && stat(full, &st) == 0 &&
                S_ISDIR(st.st_mode);
    if (rc == 0 && isdir) {
      int y = class_of(nm, class_names, num_classes);
      if (y < 0) {
        size_t used = strlen(other_names);
        if (used + strlen(nm) + 3 < sizeof other_names)
          snprintf(other_names + used, sizeof other_names - used, "%s%s", others ? ", " : "", nm);
        others++;
      }
      char e[1024] = "";
      if (walk(sf, dir, nm, y >= 0 ? y : SHARD_LABEL_NONE, 1, e, sizeof e)) {
        snprintf(err, err_size, "setting 'imagefolder': %s", e);
        rc = -1;
      }
    } else if (rc == 0 && is_image_name(nm)) {
      sf_push(sf, full, nm, SHARD_LABEL_NONE);   // flat: no class folder
    } else if (rc == 0) {
      sf->ignored++;
    }
    free(ents[i]);
  }
  free(ents);
  if (rc) return -1;
  if (sf->n == 0) {
    snprintf(err, err_size, "setting 'imagefolder': %s holds no .jpg/.jpeg/.png/.ppm/.pgm files", dir);
    return -1;
  }
  if (others)
    snprintf(sf->note, sizeof sf->note, "%d folder(s) are not classes of the model, their files are unlabelled: %s",
             others, other_names);
  sf_finish(sf, dir);
  return 0;
}

// ---- CSV -----------------------------------------------------------------------
static char *read_all(const char *path, int64_t *len, char *err, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, n, "setting 'csv': %s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  int64_t got = 0, cap = 0;
  for (;;) {
    if (got == cap) {
      if (cap >= SF_MAX_CSV_BYTES) {
        snprintf(err, n, "setting 'csv': %s: larger than %lld bytes", path, (long long)SF_MAX_CSV_BYTES);
        free(buf);
        fclose(f);
        return NULL;
      }
      cap = cap ? 2 * cap : 1 << 16;
      buf = dp_realloc(buf, (size_t)cap + 1, "csv file");
    }
    size_t r = fread(buf + got, 1, (size_t)(cap - got), f);
    got += (int64_t)r;
    if (r == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    snprintf(err, n, "setting 'csv': %s: read error", path);
    free(buf);
    return NULL;
  }
  *len = got;
  return buf;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
  return s;
}

// A label cell: a class name, else a class index; -2 when neither.
static int label_of(const char *v, const char *const *names, int n) {
  if (!*v) return SHARD_LABEL_NONE;
  int c = class_of(v, names, n);
  if (c >= 0) return c;
  char *end = NULL;
  errno = 0;
  long x = strtol(v, &end, 10);
  return !errno && end != v && !*end && x >= 0 && x < n ? (int)x : -2;
}

int score_files_csv(score_files *sf, const char *csv, const char *const *class_names, int num_classes, char *err,
                    size_t err_size) {
  memset(sf, 0, sizeof *sf);
  int64_t len = 0;
  char *buf = read_all(csv, &len, err, err_size);
  if (!buf) return -1;
  char dir[2048];
  snprintf(dir, sizeof dir, "%s", csv);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  else snprintf(dir, sizeof dir, ".");
  csv_reader r;
  csv_init(&r, buf, (size_t)len);
  char **f;
  int rc = -1, col_path = -1, col_label = -1;
  int nf = csv_next(&r, &f), ncols = nf;
  if (nf <= 0) {
    snprintf(err, err_size, "setting 'csv': %s: %s", csv, nf < 0 ? r.err : "empty file (no header)");
    goto done;
  }
  for (int k = 0; k < nf; k++) {
    const char *t = trim(f[k]);
    int *col = !strcmp(t, "path") ? &col_path : !strcmp(t, "label") ? &col_label : NULL;
    if (col && *col >= 0) {
      snprintf(err, err_size, "setting 'csv': %s:1: column '%s' appears twice in the header", csv, t);
      goto done;
    }
    if (col) *col = k;
  }
  if (col_path < 0) {
    snprintf(err, err_size, "setting 'csv': %s: the header needs a 'path' column (and optionally 'label')", csv);
    goto done;
  }
  while ((nf = csv_next(&r, &f)) != 0) {
    if (nf < 0) {
      snprintf(err, err_size, "setting 'csv': %s: %s", csv, r.err);
      goto done;
    }
    if (nf == 1 && !*trim(f[0])) continue;   // blank line
    if (nf != ncols) {
      snprintf(err, err_size, "setting 'csv': %s:%lld: %d fields, the header has %d", csv, (long long)r.line, nf,
               ncols);
      goto done;
    }
    const char *p = f[col_path];
    if (!*p) {
      snprintf(err, err_size, "setting 'csv': %s:%lld: empty path", csv, (long long)r.line);
      goto done;
    }
    int y = col_label >= 0 ? label_of(trim(f[col_label]), class_names, num_classes) : SHARD_LABEL_NONE;
    if (y == -2) {
      snprintf(err, err_size,
               "setting 'csv': %s:%lld: label '%.100s' is neither a class name of the model nor an index in [0, %d)",
               csv, (long long)r.line, f[col_label], num_classes);
      goto done;
    }
    char full[4096];
    if (snprintf(full, sizeof full, "%s%s%s", p[0] == '/' ? "" : dir, p[0] == '/' ? "" : "/", p) >=
        (int)sizeof full) {
      snprintf(err, err_size, "setting 'csv': %s:%lld: path too long", csv, (long long)r.line);
      goto done;
    }
    sf_push(sf, full, p, y);
  }
  if (sf->n == 0) {
    snprintf(err, err_size, "setting 'csv': %s: no rows after the header", csv);
    goto done;
  }
  sf_finish(sf, csv);
  rc = 0;
done:
  csv_free(&r);
  free(buf);
  return rc;
}

void score_files_free(score_files *sf) {
  for (int64_t i = 0; i < sf->n; i++) {
    free(sf->paths[i]);
    free(sf->names[i]);
  }
  free(sf->paths);
  free(sf->names);
  free(sf->labels);
  memset(sf, 0, sizeof *sf);
}

// ---- decode hook -------------------------------------------------------------------
int score_files_decode(const uint8_t *buf, int64_t len, uint8_t **px, int *w, int *h, int *c, char *why,
                       size_t why_size) {
  *px = NULL;
  img_format fmt = img_detect(buf, len);
  if (fmt == IMG_PNG && len >= 24) {   // bound the pixel buffer from IHDR before decoding (as the JPEG path)
    int64_t pw = ((int64_t)buf[16] << 24) | (buf[17] << 16) | (buf[18] << 8) | buf[19];
    int64_t ph = ((int64_t)buf[20] << 24) | (buf[21] << 16) | (buf[22] << 8) | buf[23];
    if (pw < 1 || ph < 1 || pw > DECODE_MAX_SIDE || ph > DECODE_MAX_SIDE || pw * ph > DECODE_MAX_PIXELS) {
      snprintf(why, why_size, "PNG of %lld x %lld pixels is outside the decoder's limits", (long long)pw,
               (long long)ph);
      return -1;
    }
  }
  img_u8 im;
  if (img_decode(buf, len, &im, why, why_size) != 0) {
    free(im.px);
    return -1;
  }
  *px = im.px;
  *w = im.w;
  *h = im.h;
  *c = im.c;
  return 0;
}
