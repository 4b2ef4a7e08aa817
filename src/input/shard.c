// HDF5 shard reader/writer (schema v1, data/SCHEMA.md).
//
// Thread safety: every HDF5 call in this file runs under one process-wide
// mutex (h5_lock). Debian's serial libhdf5 is built thread-safe
// (H5is_library_threadsafe says so; shard_h5_threadsafe() reports it), but a
// self-built serial HDF5 usually is not, and the mutex makes both safe. The
// hot path does not touch HDF5 at all: records of a contiguous /images/bytes
// are read with pread at H5Dget_offset, from any number of threads.
//
// HDF5's own error-stack printing is switched off (H5Eset_auto2) so that a
// truncated or foreign file gives one message from us, not a page of stack.
#include "input/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <hdf5.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/afile.h"
#include "input/shard_files.h"

const char *const shard_meta_names[META_NCOLS] = {
    "category", "seller_tier", "image_source", "upload_region", "width", "height"};

static pthread_mutex_t h5_mutex = PTHREAD_MUTEX_INITIALIZER;

static void h5_lock(void) {
  pthread_mutex_lock(&h5_mutex);
  // Per-thread in a thread-safe build, so set it every time we enter.
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void h5_unlock(void) { pthread_mutex_unlock(&h5_mutex); }

int shard_h5_threadsafe(void) {
  hbool_t ts = 0;
  h5_lock();
  herr_t rc = H5is_library_threadsafe(&ts);
  h5_unlock();
  return rc >= 0 && ts;
}

// Recoverable HDF5 check: on a negative return, fill `err` with the file and
// what we were doing, and jump to `fail` (the caller's cleanup label).
#define H5_CHECK(call, what)                                                        \
  do {                                                                              \
    if ((long long)(call) < 0) {                                                    \
      dp_err_set(err, 1, "%s: %s failed (%s:%d: %s)", path, what, __FILE__, __LINE__, \
                 #call);                                                            \
      goto fail;                                                                    \
    }                                                                               \
  } while (0)
#define BAD(...)                      \
  do {                                \
    dp_err_set(err, 1, __VA_ARGS__);  \
    goto fail;                        \
  } while (0)

static void close_id(hid_t id) {
  if (id < 0) return;
  switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: break;
  }
}

// FNV-1a 64 of a string id, top bit cleared so ids stay non-negative.
int64_t shard_hash_id(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len && s[i]; i++) {
    h ^= (uint8_t)s[i];
    h *= 1099511628211ull;
  }
  return (int64_t)(h >> 1);
}

// ---- attribute helpers (called with the lock held) -----------------------------
static int attr_read_int(hid_t obj, const char *name, int64_t *out, const char *path, dp_err *err) {
  hid_t a = -1, t = -1;
  if (H5Aexists(obj, name) <= 0) BAD("%s: root attribute '%s' is missing", path, name);
  H5_CHECK(a = H5Aopen(obj, name, H5P_DEFAULT), "open attribute");
  H5_CHECK(t = H5Aget_type(a), "attribute type");
  if (H5Tget_class(t) != H5T_INTEGER) BAD("%s: attribute '%s' is not an integer", path, name);
  long long v = 0;
  H5_CHECK(H5Aread(a, H5T_NATIVE_LLONG, &v), "read attribute");
  *out = v;
  close_id(t);
  close_id(a);
  return 0;
fail:
  close_id(t);
  close_id(a);
  return -1;
}

// Reads a string attribute (scalar or 1-D array, fixed or variable length)
// into malloc'd strings. Returns the count, or -1.
static int64_t attr_read_strings(hid_t obj, const char *name, int64_t max_count, char ***out, const char *path,
                                 dp_err *err) {
  hid_t a = -1, t = -1, sp = -1, mt = -1;
  char **res = NULL;
  int64_t n = 0;
  char *fixed = NULL;
  char **vl = NULL;
  if (H5Aexists(obj, name) <= 0) BAD("%s: root attribute '%s' is missing", path, name);
  H5_CHECK(a = H5Aopen(obj, name, H5P_DEFAULT), "open attribute");
  H5_CHECK(t = H5Aget_type(a), "attribute type");
  if (H5Tget_class(t) != H5T_STRING) BAD("%s: attribute '%s' is not a string", path, name);
  H5_CHECK(sp = H5Aget_space(a), "attribute space");
  int nd = H5Sget_simple_extent_ndims(sp);
  if (nd < 0 || nd > 1) BAD("%s: attribute '%s' must be a scalar or 1-D", path, name);
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  // Bounded before anything is allocated from it.
  if (np < 0 || np > max_count)
    BAD("%s: attribute '%s' has %lld values, at most %lld expected", path, name, (long long)np, (long long)max_count);
  n = np;
  res = dp_calloc((size_t)(n ? n : 1), sizeof(char *), "string attribute");
  htri_t isvar = H5Tis_variable_str(t);
  H5_CHECK(isvar, "string kind");
  if (isvar) {
    H5_CHECK(mt = H5Tcopy(H5T_C_S1), "copy type");
    H5_CHECK(H5Tset_size(mt, H5T_VARIABLE), "set size");
    H5_CHECK(H5Tset_cset(mt, H5Tget_cset(t)), "set cset");
    vl = dp_calloc((size_t)(n ? n : 1), sizeof(char *), "vlen strings");
    H5_CHECK(H5Aread(a, mt, vl), "read string attribute");
    for (int64_t i = 0; i < n; i++) res[i] = dp_strdup(vl[i] ? vl[i] : "");
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, vl);
  } else {
    size_t sz = H5Tget_size(t);
    if (sz == 0 || sz > 4096) BAD("%s: attribute '%s' has a bad string size", path, name);
    H5_CHECK(mt = H5Tcopy(t), "copy type");
    fixed = dp_calloc((size_t)(n ? n : 1), sz + 1, "fixed strings");
    H5_CHECK(H5Aread(a, mt, fixed), "read string attribute");
    for (int64_t i = 0; i < n; i++) {
      char *s = dp_calloc(1, sz + 1, "string");
      memcpy(s, fixed + (size_t)i * sz, sz);
      res[i] = s;
    }
  }
  free(fixed);
  free(vl);
  close_id(mt);
  close_id(sp);
  close_id(t);
  close_id(a);
  *out = res;
  return n;
fail:
  if (res)
    for (int64_t i = 0; i < n; i++) free(res[i]);
  free(res);
  free(fixed);
  free(vl);
  close_id(mt);
  close_id(sp);
  close_id(t);
  close_id(a);
  return -1;
}

// Opens a 1-D integer dataset and checks its length; returns the id or -1.
static hid_t open_int_1d(hid_t f, const char *name, int64_t *len, const char *path, dp_err *err) {
  hid_t d = -1, sp = -1, t = -1;
  htri_t ex = H5Lexists(f, name, H5P_DEFAULT);
  if (ex <= 0) BAD("%s: dataset '%s' is missing", path, name);
  H5_CHECK(d = H5Dopen2(f, name, H5P_DEFAULT), "open dataset");
  H5_CHECK(t = H5Dget_type(d), "dataset type");
  if (H5Tget_class(t) != H5T_INTEGER) BAD("%s: dataset '%s' is not an integer array", path, name);
  H5_CHECK(sp = H5Dget_space(d), "dataset space");
  if (H5Sget_simple_extent_ndims(sp) != 1) BAD("%s: dataset '%s' is not 1-D", path, name);
  hsize_t dim = 0;
  H5_CHECK(H5Sget_simple_extent_dims(sp, &dim, NULL), "dataset dims");
  if (dim > (hsize_t)INT64_MAX / 16) BAD("%s: dataset '%s' has an absurd length %llu", path, name, (unsigned long long)dim);
  *len = (int64_t)dim;
  close_id(t);
  close_id(sp);
  return d;
fail:
  close_id(t);
  close_id(sp);
  close_id(d);
  return -1;
}

static int read_ids(hid_t f, shard *s, const char *path, dp_err *err) {
  hid_t d = -1, t = -1, sp = -1, mt = -1;
  char *fixed = NULL;
  char **vl = NULL;
  if (H5Lexists(f, "ids", H5P_DEFAULT) <= 0) BAD("%s: dataset '/ids' is missing", path);
  H5_CHECK(d = H5Dopen2(f, "ids", H5P_DEFAULT), "open /ids");
  H5_CHECK(t = H5Dget_type(d), "/ids type");
  H5_CHECK(sp = H5Dget_space(d), "/ids space");
  if (H5Sget_simple_extent_ndims(sp) != 1) BAD("%s: dataset '/ids' is not 1-D", path);
  hsize_t dim = 0;
  H5_CHECK(H5Sget_simple_extent_dims(sp, &dim, NULL), "/ids dims");
  if ((int64_t)dim != s->n)
    BAD("%s: /ids has %lld entries, /labels has %lld", path, (long long)dim, (long long)s->n);
  s->ids = dp_calloc((size_t)(s->n + 1), sizeof(int64_t), "shard ids");
  H5T_class_t cls = H5Tget_class(t);
  if (cls == H5T_INTEGER) {
    if (s->n) H5_CHECK(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->ids), "read /ids");
  } else if (cls == H5T_STRING) {
    htri_t isvar = H5Tis_variable_str(t);
    H5_CHECK(isvar, "/ids string kind");
    if (isvar) {
      H5_CHECK(mt = H5Tcopy(H5T_C_S1), "copy type");
      H5_CHECK(H5Tset_size(mt, H5T_VARIABLE), "set size");
      vl = dp_calloc((size_t)(s->n + 1), sizeof(char *), "vlen ids");
      if (s->n) H5_CHECK(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, vl), "read /ids");
      for (int64_t i = 0; i < s->n; i++)
        s->ids[i] = vl[i] ? shard_hash_id(vl[i], strlen(vl[i])) : shard_hash_id("", 0);
      if (s->n) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, vl);
    } else {
      size_t sz = H5Tget_size(t);
      if (sz == 0 || sz > 4096) BAD("%s: /ids has a bad string size", path);
      H5_CHECK(mt = H5Tcopy(t), "copy type");
      fixed = dp_malloc((size_t)(s->n + 1) * sz, "fixed ids");
      if (s->n) H5_CHECK(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, fixed), "read /ids");
      for (int64_t i = 0; i < s->n; i++) s->ids[i] = shard_hash_id(fixed + (size_t)i * sz, sz);
    }
  } else {
    BAD("%s: /ids must be integers or strings", path);
  }
  free(fixed);
  free(vl);
  close_id(mt);
  close_id(sp);
  close_id(t);
  close_id(d);
  return 0;
fail:
  free(fixed);
  free(vl);
  close_id(mt);
  close_id(sp);
  close_id(t);
  close_id(d);
  return -1;
}

static int read_meta(hid_t f, shard *s, const char *path, dp_err *err) {
  hid_t d = -1;
  char name[64];
  if (H5Lexists(f, "meta", H5P_DEFAULT) <= 0) return 0;   // optional group
  for (int c = 0; c < META_NCOLS; c++) {
    snprintf(name, sizeof name, "meta/%s", shard_meta_names[c]);
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) continue;    // optional column
    int64_t len = 0;
    d = open_int_1d(f, name, &len, path, err);
    if (d < 0) goto fail;
    if (len != s->n)
      BAD("%s: /%s has %lld entries, expected %lld", path, name, (long long)len, (long long)s->n);
    s->meta[c] = dp_malloc((size_t)(s->n + 1) * sizeof(int32_t), "meta column");
    if (s->n) H5_CHECK(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->meta[c]), "read meta");
    for (int64_t i = 0; i < s->n; i++)
      if (s->meta[c][i] < SHARD_META_MISSING)
        BAD("%s: record %lld (id %lld): /%s = %d is below the missing sentinel -1", path,
            (long long)i, (long long)s->ids[i], name, s->meta[c][i]);
    close_id(d);
    d = -1;
  }
  return 0;
fail:
  close_id(d);
  return -1;
}

// Sets up the pread path when /images/bytes is contiguous and allocated.
// The first bytes are cross-checked against H5Dread, so a file layout we do
// not understand (user block, external storage) falls back to H5Dread.
static void setup_pread(shard *s, hid_t ds) {
  s->fd = -1;
  s->blob_file_offset = -1;
  if (s->blob_size <= 0) return;
  hid_t dcpl = H5Dget_create_plist(ds);
  if (dcpl < 0) return;
  H5D_layout_t lay = H5Pget_layout(dcpl);
  int nfilt = H5Pget_nfilters(dcpl);
  int next = H5Pget_external_count(dcpl);
  H5Pclose(dcpl);
  if (lay != H5D_CONTIGUOUS || nfilt != 0 || next != 0) return;
  haddr_t off = H5Dget_offset(ds);
  if (off == HADDR_UNDEF) return;
  int fd = open(s->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0 || (int64_t)off + s->blob_size > (int64_t)st.st_size) {
    close(fd);
    return;
  }
  uint8_t a[64], b[64];
  hsize_t k = s->blob_size < 64 ? (hsize_t)s->blob_size : 64, start = 0;
  hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &k, NULL);
  int ok = fs >= 0 && ms >= 0 &&
           H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &k, NULL) >= 0 &&
           H5Dread(ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, a) >= 0 &&
           pread(fd, b, k, (off_t)off) == (ssize_t)k && memcmp(a, b, k) == 0;
  if (fs >= 0) H5Sclose(fs);
  if (ms >= 0) H5Sclose(ms);
  if (!ok) {
    close(fd);
    return;
  }
  s->fd = fd;
  s->blob_file_offset = (int64_t)off;
}

static int check_hdf5_magic(const char *path, int64_t *file_size, int *len_size, dp_err *err) {
  // H5Fopen on a non-HDF5 or truncated file fails anyway; checking the
  // signature first gives a clearer message. HDF5 looks for it at 0, 512,
  // 1024, ... (user block); we accept it at any of the first few.
  static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    dp_err_set(err, 1, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    dp_err_set(err, 1, "%s: not a regular file", path);
    return -1;
  }
  int found = 0;
  *len_size = 8;
  for (off_t at = 0; at + 8 <= st.st_size && at <= 65536 && !found; at = at ? at * 2 : 512) {
    uint8_t b[16];
    if (pread(fd, b, 16, at) == 16 && memcmp(b, sig, 8) == 0) {
      found = 1;
      // "Size of Lengths" of the superblock: byte 14 in versions 0-1, 10 in 2-3.
      *len_size = b[8] <= 1 ? b[14] : b[10];
    }
  }
  close(fd);
  *file_size = (int64_t)st.st_size;
  if (!found) {
    dp_err_set(err, 1, "%s: not an HDF5 file (no HDF5 signature; %lld bytes)", path,
               (long long)st.st_size);
    return -1;
  }
  return 0;
}

// File extent [lo, hi) of a contiguous /images/bytes (the records), or -1.
static void blob_extent(hid_t f, int64_t *lo, int64_t *hi) {
  *lo = *hi = -1;
  if (H5Lexists(f, "images", H5P_DEFAULT) <= 0 || H5Lexists(f, "images/bytes", H5P_DEFAULT) <= 0) return;
  hid_t d = H5Dopen2(f, "images/bytes", H5P_DEFAULT);
  if (d < 0) return;
  hid_t dcpl = H5Dget_create_plist(d);
  int contiguous = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS && H5Pget_nfilters(dcpl) == 0;
  if (dcpl >= 0) H5Pclose(dcpl);
  haddr_t off = contiguous ? H5Dget_offset(d) : HADDR_UNDEF;
  hsize_t n = contiguous ? H5Dget_storage_size(d) : 0;
  H5Dclose(d);
  if (off == HADDR_UNDEF || n == 0 || off > (haddr_t)INT64_MAX / 2 || n > (hsize_t)INT64_MAX / 2) return;
  *lo = (int64_t)off;
  *hi = (int64_t)(off + n);
}

static uint64_t le_n(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; k--) v = (v << 8) | p[k];
  return v;
}

// One global heap collection at p (HDF5 spec, "Global Heap"): "GCOL", version
// 1, 3 reserved bytes, the collection size, then objects (index u16, refcount
// u16, reserved u32, size, data padded to 8 bytes) ending with the free-space
// object (index 0), objects numbered 1..k. Returns 0 when consistent, 1 when
// p is no collection header at all, -1 when it is damaged (why in msg).
static int gcol_check(const uint8_t *m, int64_t size, int64_t p, int L, char *msg, size_t mn) {
  if (p + 8 + L > size || m[p + 4] != 1 || m[p + 5] || m[p + 6] || m[p + 7]) return 1;
  uint64_t cs = le_n(m + p + 8, L);
  if (cs < 8u + (uint64_t)L || cs > (uint64_t)(size - p)) {
    snprintf(msg, mn, "global heap collection at byte %lld has size %llu (file has %lld bytes from there)",
             (long long)p, (unsigned long long)cs, (long long)(size - p));
    return -1;
  }
  const int64_t end = p + (int64_t)cs;
  int64_t pos = p + 8 + L;
  static const int64_t hdr = 8;   // index, refcount, reserved
  uint8_t *seen = dp_calloc(65536 / 8, 1, "global heap indices");
  int rc = 0;
  unsigned max_idx = 0, count = 0;
  while (pos + hdr + L <= end) {
    unsigned idx = (unsigned)le_n(m + pos, 2);
    uint64_t osz = le_n(m + pos + hdr, L);
    if (osz > (uint64_t)(end - pos)) {
      snprintf(msg, mn, "global heap object %u at byte %lld claims %llu bytes, past its collection's end", idx,
               (long long)pos, (unsigned long long)osz);
      rc = -1;
      break;
    }
    if (idx == 0) break;   // free space: the rest of the collection
    if (seen[idx / 8] & (1u << (idx % 8))) {
      snprintf(msg, mn, "global heap object index %u appears twice in the collection at byte %lld", idx, (long long)p);
      rc = -1;
      break;
    }
    seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
    if (idx > max_idx) max_idx = idx;
    count++;
    int64_t next = pos + hdr + L + (int64_t)((osz + 7) & ~(uint64_t)7);
    if (next > end) {
      snprintf(msg, mn, "global heap object %u at byte %lld runs past its collection's end", idx, (long long)pos);
      rc = -1;
      break;
    }
    pos = next;
  }
  // Written once, a collection numbers its objects 1..k. A gap means a
  // damaged index, and libhdf5 1.10.8 dereferences a missing object when a
  // string points at it (tests/fuzz/known_hdf5/h5hg_read_dangling_ref_segv.h5).
  if (!rc && max_idx != count) {
    snprintf(msg, mn, "global heap collection at byte %lld numbers %u objects up to %u (a gap: damaged, or "
             "edited in place: rewrite it with h5repack)", (long long)p, count, max_idx);
    rc = -1;
  }
  free(seen);
  return rc;
}

// Every global heap collection of the file, outside [skip_lo, skip_hi) (the
// contiguous record bytes, which are image data, not HDF5 structures).
static int check_global_heaps(const char *path, int64_t size, int L, int64_t skip_lo, int64_t skip_hi, dp_err *err) {
  if (L != 2 && L != 4 && L != 8) {
    dp_err_set(err, 1, "%s: HDF5 'size of lengths' is %d (2, 4 or 8 supported)", path, L);
    return -1;
  }
  if (size < 16) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    dp_err_set(err, 1, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  const uint8_t *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    dp_err_set(err, 1, "%s: cannot map: %s", path, strerror(errno));
    return -1;
  }
  int rc = 0;
  char msg[300];
  for (int part = 0; part < 2 && !rc; part++) {
    int64_t lo = part == 0 ? 0 : (skip_hi > 0 ? skip_hi : size), hi = part == 0 ? (skip_lo >= 0 ? skip_lo : size) : size;
    // The records' extent comes from the file's own (possibly damaged) layout
    // message and may lie past its end: never scan outside the mapping.
    if (lo > size) lo = size;
    if (hi > size) hi = size;
    for (int64_t at = lo; at + 4 <= hi && !rc;) {
      const uint8_t *q = memmem(m + at, (size_t)(hi - at), "GCOL", 4);
      if (!q) break;
      int64_t p = q - m;
      int v = gcol_check(m, size, p, L, msg, sizeof msg);
      if (v < 0) {
        dp_err_set(err, 1, "%s: damaged HDF5 file: %s (refused before libhdf5 reads it)", path, msg);
        rc = -1;
      }
      at = p + 4;
    }
  }
  munmap((void *)m, (size_t)size);
  return rc;
}

shard *shard_open(const char *path, dp_err *err) { return shard_open_ex(path, 0, err); }

shard *shard_open_ex(const char *path, int flags, dp_err *err) {
  dp_err_clear(err);
  if (strlen(path) >= sizeof(((shard *)0)->path)) {
    dp_err_set(err, 1, "%s: path too long", path);
    return NULL;
  }
  int64_t file_size = 0;
  int len_size = 8;
  if (check_hdf5_magic(path, &file_size, &len_size, err) != 0) return NULL;
  shard *s = dp_calloc(1, sizeof *s, "shard");
  snprintf(s->path, sizeof s->path, "%s", path);
  s->fd = -1;
  s->blob_file_offset = -1;
  s->file_h5 = -1;
  s->blob_ds = -1;
  hid_t f = -1, d = -1, bytes = -1, root = -1;
  char **codec = NULL;
  int64_t ncodec = 0;
  h5_lock();
  f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) BAD("%s: HDF5 cannot open the file (truncated or damaged?)", path);
  H5_CHECK(root = H5Gopen2(f, "/", H5P_DEFAULT), "open root group");
  int64_t v = 0;
  if (attr_read_int(root, "schema_version", &v, path, err) != 0) goto fail;
  if (v != SHARD_SCHEMA_VERSION)
    BAD("%s: unknown schema_version %lld (this build reads %d)", path, (long long)v,
        SHARD_SCHEMA_VERSION);
  s->schema_version = (int)v;
  if (attr_read_int(root, "num_classes", &v, path, err) != 0) goto fail;
  if (v < 1 || v > SHARD_MAX_CLASSES)
    BAD("%s: num_classes %lld outside [1, %d]", path, (long long)v, SHARD_MAX_CLASSES);
  s->num_classes = (int)v;
  // Variable-length strings (codec, class_names, string ids) live in HDF5's
  // global heap, which libhdf5 1.10.8 reads without bounds checks: a damaged
  // collection crashes or hangs it (h5py too; tests/fuzz/README.md). Check
  // every collection before the first such read.
  {
    int64_t blo = -1, bhi = -1;
    blob_extent(f, &blo, &bhi);
    if (check_global_heaps(path, file_size, len_size, blo, bhi, err) != 0) goto fail;
  }
  ncodec = attr_read_strings(root, "codec", 1, &codec, path, err);
  if (ncodec < 0) goto fail;
  if (ncodec != 1) BAD("%s: attribute 'codec' must be one string", path);
  if (!strcmp(codec[0], "jpeg")) {
    s->codec = SHARD_CODEC_JPEG;
  } else if (!strcmp(codec[0], "raw")) {
    s->codec = SHARD_CODEC_RAW;
  } else {
    BAD("%s: unknown codec '%s' (jpeg or raw)", path, codec[0]);
  }
  int64_t ncn = attr_read_strings(root, "class_names", s->num_classes, &s->class_names, path, err);
  if (ncn < 0) goto fail;
  if (ncn != s->num_classes) {
    for (int64_t i = 0; i < ncn; i++) free(s->class_names[i]);
    free(s->class_names);
    s->class_names = NULL;
    BAD("%s: class_names has %lld names, num_classes is %d", path, (long long)ncn, s->num_classes);
  }
  if (H5Aexists(root, "augment_policy") > 0) {   // optional (issue 12)
    char **pol = NULL;
    int64_t np = attr_read_strings(root, "augment_policy", 1, &pol, path, err);
    if (np < 0) goto fail;
    int ok = np == 1 && strlen(pol[0]) < sizeof s->augment_policy;
    if (ok) snprintf(s->augment_policy, sizeof s->augment_policy, "%s", pol[0]);
    for (int64_t i = 0; i < np; i++) free(pol[i]);
    free(pol);
    if (!ok) BAD("%s: attribute 'augment_policy' must be one short string", path);
  }
  // Names travel in weights metadata and CSV reports one per line: a control
  // character (newline, tab, NUL-truncated junk) would shift every later name.
  for (int c = 0; c < s->num_classes; c++)
    for (const unsigned char *p = (const unsigned char *)s->class_names[c]; *p; p++)
      if (*p < 0x20 || *p == 0x7f)
        BAD("%s: class_names[%d] contains a control character (0x%02x)", path, c, *p);
  if (s->codec == SHARD_CODEC_RAW) {
    hid_t a = -1, sp = -1;
    long long shp[3] = {0, 0, 1};
    if (H5Aexists(root, "raw_shape") <= 0) BAD("%s: codec=raw needs the raw_shape attribute", path);
    a = H5Aopen(root, "raw_shape", H5P_DEFAULT);
    sp = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int ok = (np == 2 || np == 3) && H5Aread(a, H5T_NATIVE_LLONG, shp) >= 0;
    close_id(sp);
    close_id(a);
    if (!ok) BAD("%s: raw_shape must be 2 or 3 integers (H, W[, C])", path);
    if (shp[0] < 1 || shp[1] < 1 || shp[2] < 1 || shp[0] > 65535 || shp[1] > 65535 ||
        (shp[2] != 1 && shp[2] != 3))
      BAD("%s: raw_shape (%lld, %lld, %lld) is not a valid (H, W, C) with C 1 or 3", path, shp[0],
          shp[1], shp[2]);
    s->raw_h = (int)shp[0];
    s->raw_w = (int)shp[1];
    s->raw_c = (int)shp[2];
  }
  // Labels.
  int64_t n = 0;
  d = open_int_1d(f, "labels", &n, path, err);
  if (d < 0) goto fail;
  // Every record costs the file bytes (label, id, offset, data): a count
  // beyond the file size is a damaged header, refused before the per-record
  // arrays are allocated from it.
  if (n < 0 || n > file_size)
    BAD("%s: /labels claims %lld records in a %lld-byte file", path, (long long)n, (long long)file_size);
  s->n = n;
  s->labels = dp_malloc((size_t)(n + 1) * sizeof(int32_t), "shard labels");
  if (n) H5_CHECK(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->labels), "read /labels");
  close_id(d);
  d = -1;
  if (read_ids(f, s, path, err) != 0) goto fail;
  for (int64_t i = 0; i < n; i++)
    if ((s->labels[i] < 0 || s->labels[i] >= s->num_classes) &&
        !(s->labels[i] == SHARD_LABEL_NONE && (flags & SHARD_OPEN_UNLABELLED)))
      BAD("%s: record %lld (id %lld): label %d outside [0, %d)%s", path, (long long)i,
          (long long)s->ids[i], s->labels[i], s->num_classes,
          s->labels[i] == SHARD_LABEL_NONE ? " (-1 = unlabelled: only `dptrain score` reads unlabelled records)" : "");
  // Offsets and blob.
  int64_t no = 0;
  d = open_int_1d(f, "images/offsets", &no, path, err);
  if (d < 0) goto fail;
  if (no != n + 1)
    BAD("%s: /images/offsets has %lld entries, expected N+1 = %lld", path, (long long)no,
        (long long)(n + 1));
  s->offsets = dp_malloc((size_t)(n + 1) * sizeof(int64_t), "shard offsets");
  H5_CHECK(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->offsets), "read /images/offsets");
  close_id(d);
  d = -1;
  if (H5Lexists(f, "images/bytes", H5P_DEFAULT) <= 0) BAD("%s: dataset '/images/bytes' is missing", path);
  H5_CHECK(bytes = H5Dopen2(f, "images/bytes", H5P_DEFAULT), "open /images/bytes");
  {
    hid_t sp = H5Dget_space(bytes), t = H5Dget_type(bytes);
    hsize_t dim = 0;
    int ok = sp >= 0 && t >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
             H5Sget_simple_extent_dims(sp, &dim, NULL) >= 0 && H5Tget_class(t) == H5T_INTEGER &&
             H5Tget_size(t) == 1;
    close_id(sp);
    close_id(t);
    if (!ok) BAD("%s: /images/bytes must be a 1-D uint8 dataset", path);
    if (dim > (hsize_t)INT64_MAX / 2) BAD("%s: /images/bytes has an absurd length %llu", path, (unsigned long long)dim);
    s->blob_size = (int64_t)dim;
  }
  if (s->offsets[0] != 0) BAD("%s: record 0: /images/offsets[0] = %lld, must be 0", path, (long long)s->offsets[0]);
  for (int64_t i = 0; i < n; i++) {
    if (s->offsets[i + 1] < s->offsets[i])
      BAD("%s: record %lld (id %lld): offsets not monotone (%lld > %lld)", path, (long long)i,
          (long long)s->ids[i], (long long)s->offsets[i], (long long)s->offsets[i + 1]);
    if (s->offsets[i + 1] > s->blob_size)
      BAD("%s: record %lld (id %lld): ends at byte %lld, past the end of /images/bytes (%lld bytes)",
          path, (long long)i, (long long)s->ids[i], (long long)s->offsets[i + 1],
          (long long)s->blob_size);
  }
  if (read_meta(f, s, path, err) != 0) goto fail;
  setup_pread(s, bytes);
  if (s->fd >= 0) {
    // The pread path needs no HDF5 handle: close the file now so thousands
    // of shards do not hold thousands of HDF5 files open.
    H5Dclose(bytes);
    H5Gclose(root);
    H5Fclose(f);
  } else {
    H5Gclose(root);
    s->file_h5 = f;
    s->blob_ds = bytes;
  }
  h5_unlock();
  for (int64_t i = 0; i < ncodec; i++) free(codec[i]);
  free(codec);
  return s;
fail:
  close_id(d);
  close_id(bytes);
  close_id(root);
  close_id(f);
  h5_unlock();
  for (int64_t i = 0; i < ncodec; i++) free(codec[i]);
  free(codec);
  s->file_h5 = -1;
  s->blob_ds = -1;
  shard_close(s);
  if (err && !err->code) dp_err_set(err, 1, "%s: invalid shard", path);
  return NULL;
}

void shard_close(shard *s) {
  if (!s) return;
  shard_files_free(s->files);
  if (s->fd >= 0) close(s->fd);
  if (s->blob_ds >= 0 || s->file_h5 >= 0) {
    h5_lock();
    if (s->blob_ds >= 0) H5Dclose((hid_t)s->blob_ds);
    if (s->file_h5 >= 0) H5Fclose((hid_t)s->file_h5);
    h5_unlock();
  }
  if (s->class_names)
    for (int i = 0; i < s->num_classes; i++) free(s->class_names[i]);
  free(s->class_names);
  for (int c = 0; c < META_NCOLS; c++) free(s->meta[c]);
  free(s->offsets);
  free(s->labels);
  free(s->ids);
  free(s);
}

int shard_force_h5dread(shard *s, dp_err *err) {
  if (s->blob_ds >= 0) return 0;
  const char *path = s->path;
  hid_t f = -1, d = -1;
  h5_lock();
  H5_CHECK(f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), "reopen file");
  H5_CHECK(d = H5Dopen2(f, "images/bytes", H5P_DEFAULT), "open /images/bytes");
  h5_unlock();
  s->file_h5 = f;
  s->blob_ds = d;
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->blob_file_offset = -1;
  return 0;
fail:
  close_id(d);
  close_id(f);
  h5_unlock();
  return -1;
}

// Reads bytes [off, off + len) of the blob into buf (pread or H5Dread).
static int64_t read_blob(const shard *s, int64_t i, int64_t off, int64_t len, uint8_t *buf, dp_err *err) {
  if (s->files) return shard_files_read(s, i, len, buf, err);   // record i is a whole file
  if (len == 0) return 0;
  if (s->fd >= 0) {
    int64_t got = 0;
    while (got < len) {
      ssize_t r = pread(s->fd, buf + got, (size_t)(len - got), (off_t)(s->blob_file_offset + off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        dp_err_set(err, 1, "%s: record %lld (id %lld): pread failed: %s", s->path, (long long)i,
                   (long long)s->ids[i], r < 0 ? strerror(errno) : "unexpected end of file");
        return -1;
      }
      got += r;
    }
    return len;
  }
  const char *path = s->path;
  hid_t fs = -1, ms = -1;
  hsize_t start = (hsize_t)off, count = (hsize_t)len;
  h5_lock();
  H5_CHECK(fs = H5Dget_space((hid_t)s->blob_ds), "blob space");
  H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL), "select record");
  H5_CHECK(ms = H5Screate_simple(1, &count, NULL), "memory space");
  H5_CHECK(H5Dread((hid_t)s->blob_ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, buf), "read record");
  H5Sclose(ms);
  H5Sclose(fs);
  h5_unlock();
  return len;
fail:
  close_id(ms);
  close_id(fs);
  h5_unlock();
  return -1;
}

int64_t shard_read_record(const shard *s, int64_t i, uint8_t *buf, int64_t cap, dp_err *err) {
  if (i < 0 || i >= s->n) {
    dp_err_set(err, 1, "%s: record %lld out of range [0, %lld)", s->path, (long long)i, (long long)s->n);
    return -1;
  }
  int64_t off = s->offsets[i], len = s->offsets[i + 1] - off;
  if (len > cap) {
    dp_err_set(err, 1, "%s: record %lld (id %lld) is %lld bytes, buffer holds %lld", s->path,
               (long long)i, (long long)s->ids[i], (long long)len, (long long)cap);
    return -1;
  }
  return read_blob(s, i, off, len, buf, err);
}

int64_t shard_read_record_prefix(const shard *s, int64_t i, uint8_t *buf, int64_t cap, dp_err *err) {
  if (i < 0 || i >= s->n || cap < 0) {
    dp_err_set(err, 1, "%s: record %lld out of range [0, %lld)", s->path, (long long)i, (long long)s->n);
    return -1;
  }
  int64_t off = s->offsets[i], len = s->offsets[i + 1] - off;
  return read_blob(s, i, off, len < cap ? len : cap, buf, err);
}

int shard_class_names_diff(const char *const *a, int na, const char *what_a, const char *const *b, int nb,
                           const char *what_b, char *msg, size_t n) {
  if (na != nb) {
    snprintf(msg, n, "%s has %d classes, %s has %d", what_a, na, what_b, nb);
    return -1;
  }
  for (int c = 0; c < na; c++) {
    const char *x = a && a[c] ? a[c] : "", *y = b && b[c] ? b[c] : "";
    if (strcmp(x, y)) {
      snprintf(msg, n, "class %d is '%.100s' in %s but '%.100s' in %s (same count, different names or order)",
               c, x, what_a, y, what_b);
      return -1;
    }
  }
  return 0;
}

// ---- glob -------------------------------------------------------------------
static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int shard_glob(const char *pattern, char ***paths) {
  *paths = NULL;
  if (!pattern) return 0;
  char *copy = dp_strdup(pattern), *save = NULL;
  char **out = NULL;
  int n = 0, cap = 0;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    if (!*tok) continue;
    glob_t g;
    memset(&g, 0, sizeof g);
    if (glob(tok, 0, NULL, &g) == 0) {
      for (size_t k = 0; k < g.gl_pathc; k++) {
        if (n == cap) {
          cap = cap ? cap * 2 : 16;
          out = dp_realloc(out, (size_t)cap * sizeof(char *), "glob paths");
        }
        out[n++] = dp_strdup(g.gl_pathv[k]);
      }
    }
    globfree(&g);
  }
  free(copy);
  if (n == 0) {
    free(out);
    return 0;
  }
  qsort(out, (size_t)n, sizeof(char *), cmp_str);
  int m = 0;   // drop duplicates (overlapping patterns)
  for (int i = 0; i < n; i++) {
    if (m > 0 && !strcmp(out[m - 1], out[i])) {
      free(out[i]);
      continue;
    }
    out[m++] = out[i];
  }
  *paths = out;
  return m;
}

void shard_paths_free(char **paths, int n) {
  if (!paths) return;
  for (int i = 0; i < n; i++) free(paths[i]);
  free(paths);
}

// ---- writer -------------------------------------------------------------------
struct shard_writer {
  char path[1024];
  char tmp[1100];     // written here, renamed to path by shard_writer_close
  shard_writer_cfg cfg;
  char **names;
  uint8_t *blob;
  int64_t blob_len, blob_cap;
  int64_t *offsets;   // (n + 1)
  int32_t *labels;
  int64_t *ids;
  int32_t *meta[META_NCOLS];
  int any_meta;
  int64_t n, cap;
  char policy[16];    // augment_policy attribute, "" = none
};

shard_writer *shard_writer_create(const char *path, const shard_writer_cfg *cfg, dp_err *err) {
  dp_err_clear(err);
  if (strlen(path) >= sizeof(((shard_writer *)0)->path)) {
    dp_err_set(err, 1, "%s: path too long", path);
    return NULL;
  }
  if (cfg->num_classes < 1 || cfg->num_classes > SHARD_MAX_CLASSES) {
    dp_err_set(err, 1, "%s: num_classes %d outside [1, %d]", path, cfg->num_classes, SHARD_MAX_CLASSES);
    return NULL;
  }
  if (cfg->codec == SHARD_CODEC_RAW &&
      (cfg->raw_h < 1 || cfg->raw_w < 1 || (cfg->raw_c != 1 && cfg->raw_c != 3))) {
    dp_err_set(err, 1, "%s: codec=raw needs raw_h, raw_w >= 1 and raw_c 1 or 3", path);
    return NULL;
  }
  // The shard is written to a temp file in the same directory and renamed
  // over `path` only when complete (core/afile.h), so a reader or a restarted
  // job never sees half a shard. Creating the temp file now fails early, not
  // after buffering a whole shard.
  shard_writer *w = dp_calloc(1, sizeof *w, "shard writer");
  snprintf(w->path, sizeof w->path, "%s", path);
  dp_tmp_path_for(path, w->tmp, sizeof w->tmp);
  int pfd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (pfd < 0) {
    dp_err_set(err, 1, "%s: cannot create (temp file %s): %s", path, w->tmp, strerror(errno));
    free(w);
    return NULL;
  }
  close(pfd);
  w->cfg = *cfg;
  w->names = dp_calloc((size_t)cfg->num_classes, sizeof(char *), "class names");
  for (int i = 0; i < cfg->num_classes; i++) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "class_%d", i);
    w->names[i] = dp_strdup(cfg->class_names && cfg->class_names[i] ? cfg->class_names[i] : tmp);
  }
  w->cfg.class_names = NULL;
  if (cfg->augment_policy) snprintf(w->policy, sizeof w->policy, "%s", cfg->augment_policy);
  w->cfg.augment_policy = NULL;
  w->offsets = dp_calloc(1, sizeof(int64_t), "offsets");
  return w;
}

int64_t shard_writer_count(const shard_writer *w) { return w->n; }
int64_t shard_writer_bytes(const shard_writer *w) { return w->blob_len; }

int shard_writer_add(shard_writer *w, const uint8_t *bytes, int64_t len, int32_t label,
                     int64_t id, const int32_t *meta, dp_err *err) {
  if (label < 0 || label >= w->cfg.num_classes) {
    dp_err_set(err, 1, "%s: record %lld: label %d outside [0, %d)", w->path, (long long)w->n, label,
               w->cfg.num_classes);
    return -1;
  }
  if (len < 0) {
    dp_err_set(err, 1, "%s: record %lld: negative length", w->path, (long long)w->n);
    return -1;
  }
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 256;
    w->offsets = dp_realloc(w->offsets, (size_t)(w->cap + 1) * sizeof(int64_t), "offsets");
    w->labels = dp_realloc(w->labels, (size_t)w->cap * sizeof(int32_t), "labels");
    w->ids = dp_realloc(w->ids, (size_t)w->cap * sizeof(int64_t), "ids");
    for (int c = 0; c < META_NCOLS; c++)
      w->meta[c] = dp_realloc(w->meta[c], (size_t)w->cap * sizeof(int32_t), "meta");
  }
  if (w->blob_len + len > w->blob_cap) {
    int64_t nc = w->blob_cap ? w->blob_cap : (1 << 20);
    while (nc < w->blob_len + len) nc *= 2;
    w->blob = dp_realloc(w->blob, (size_t)nc, "shard blob");
    w->blob_cap = nc;
  }
  if (len) memcpy(w->blob + w->blob_len, bytes, (size_t)len);
  w->blob_len += len;
  w->labels[w->n] = label;
  w->ids[w->n] = id;
  for (int c = 0; c < META_NCOLS; c++) w->meta[c][w->n] = meta ? meta[c] : SHARD_META_MISSING;
  if (meta) w->any_meta = 1;
  w->n++;
  w->offsets[w->n] = w->blob_len;
  return 0;
}

// Writes a 1-D dataset, contiguous, without object timestamps (so the same
// content gives the same file bytes).
static int write_1d(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int64_t n,
                    const void *data, const char *path, dp_err *err) {
  hid_t sp = -1, dcpl = -1, d = -1;
  hsize_t dim = (hsize_t)n;
  H5_CHECK(sp = H5Screate_simple(1, &dim, NULL), "create space");
  H5_CHECK(dcpl = H5Pcreate(H5P_DATASET_CREATE), "create dcpl");
  H5_CHECK(H5Pset_layout(dcpl, H5D_CONTIGUOUS), "set contiguous layout");
  H5_CHECK(H5Pset_obj_track_times(dcpl, 0), "disable timestamps");
  H5_CHECK(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), "set alloc time");
  H5_CHECK(d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT), "create dataset");
  if (n) H5_CHECK(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write dataset");
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(sp);
  return 0;
fail:
  close_id(d);
  close_id(dcpl);
  close_id(sp);
  return -1;
}

static int write_str_attr(hid_t loc, const char *name, const char *const *vals, int n, int scalar,
                          const char *path, dp_err *err) {
  hid_t t = -1, sp = -1, a = -1;
  hsize_t dim = (hsize_t)n;
  H5_CHECK(t = H5Tcopy(H5T_C_S1), "copy string type");
  H5_CHECK(H5Tset_size(t, H5T_VARIABLE), "vlen string");
  H5_CHECK(H5Tset_cset(t, H5T_CSET_UTF8), "utf8");
  H5_CHECK(sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL), "attr space");
  H5_CHECK(a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT), "create attribute");
  H5_CHECK(H5Awrite(a, t, vals), "write attribute");
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
  return 0;
fail:
  close_id(a);
  close_id(sp);
  close_id(t);
  return -1;
}

static int write_int_attr(hid_t loc, const char *name, const int32_t *vals, int n, int scalar,
                          const char *path, dp_err *err) {
  hid_t sp = -1, a = -1;
  hsize_t dim = (hsize_t)n;
  H5_CHECK(sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL), "attr space");
  H5_CHECK(a = H5Acreate2(loc, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT), "create attribute");
  H5_CHECK(H5Awrite(a, H5T_NATIVE_INT32, vals), "write attribute");
  H5Aclose(a);
  H5Sclose(sp);
  return 0;
fail:
  close_id(a);
  close_id(sp);
  return -1;
}

static void writer_free(shard_writer *w) {
  unlink(w->tmp);   // still there only when the shard was not committed
  for (int i = 0; i < w->cfg.num_classes; i++) free(w->names[i]);
  free(w->names);
  free(w->blob);
  free(w->offsets);
  free(w->labels);
  free(w->ids);
  for (int c = 0; c < META_NCOLS; c++) free(w->meta[c]);
  free(w);
}

int shard_writer_close(shard_writer *w, dp_err *err) {
  const char *path = w->path;
  hid_t f = -1, fcpl = -1, gcpl = -1, g = -1;
  int rc = -1;
  h5_lock();
  H5_CHECK(fcpl = H5Pcreate(H5P_FILE_CREATE), "create fcpl");
  H5_CHECK(gcpl = H5Pcreate(H5P_GROUP_CREATE), "create gcpl");
  H5_CHECK(H5Pset_obj_track_times(gcpl, 0), "disable timestamps");
  H5_CHECK(f = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT), "create file");
  {
    int32_t v = SHARD_SCHEMA_VERSION;
    if (write_int_attr(f, "schema_version", &v, 1, 1, path, err)) goto fail;
    const char *codec = w->cfg.codec == SHARD_CODEC_RAW ? "raw" : "jpeg";
    if (write_str_attr(f, "codec", &codec, 1, 1, path, err)) goto fail;
    v = w->cfg.num_classes;
    if (write_int_attr(f, "num_classes", &v, 1, 1, path, err)) goto fail;
    if (write_str_attr(f, "class_names", (const char *const *)w->names, w->cfg.num_classes, 0, path, err))
      goto fail;
    if (w->policy[0]) {
      const char *pol = w->policy;
      if (write_str_attr(f, "augment_policy", &pol, 1, 1, path, err)) goto fail;
    }
    if (w->cfg.codec == SHARD_CODEC_RAW) {
      int32_t shp[3] = {w->cfg.raw_h, w->cfg.raw_w, w->cfg.raw_c};
      if (write_int_attr(f, "raw_shape", shp, 3, 0, path, err)) goto fail;
    }
  }
  H5_CHECK(g = H5Gcreate2(f, "images", H5P_DEFAULT, gcpl, H5P_DEFAULT), "create /images");
  if (write_1d(g, "bytes", H5T_STD_U8LE, H5T_NATIVE_UINT8, w->blob_len, w->blob, path, err)) goto fail;
  if (write_1d(g, "offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, w->n + 1, w->offsets, path, err)) goto fail;
  H5Gclose(g);
  g = -1;
  if (write_1d(f, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, w->n, w->labels, path, err)) goto fail;
  if (write_1d(f, "ids", H5T_STD_I64LE, H5T_NATIVE_INT64, w->n, w->ids, path, err)) goto fail;
  if (w->any_meta) {
    H5_CHECK(g = H5Gcreate2(f, "meta", H5P_DEFAULT, gcpl, H5P_DEFAULT), "create /meta");
    for (int c = 0; c < META_NCOLS; c++)
      if (write_1d(g, shard_meta_names[c], H5T_STD_I32LE, H5T_NATIVE_INT32, w->n, w->meta[c], path, err))
        goto fail;
    H5Gclose(g);
    g = -1;
  }
  H5_CHECK(H5Fclose(f), "close file");
  f = -1;
  rc = dp_commit_file(w->tmp, w->path, err);   // fsync, rename over path, fsync the directory
fail:
  close_id(g);
  close_id(f);
  close_id(gcpl);
  close_id(fcpl);
  h5_unlock();
  writer_free(w);
  return rc;
}
