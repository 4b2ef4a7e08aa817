// safetensors files (https://github.com/huggingface/safetensors, "Format"):
// 8-byte little-endian header length N, N bytes of JSON header, then the data
// section. The header maps tensor names to {"dtype", "shape",
// "data_offsets": [BEGIN, END]} (offsets relative to the data section) and
// may hold "__metadata__", a map of strings to strings.
//
// The reader validates the whole file before handing out anything, following
// the format's own rules, and refuses with a message naming the file, the
// tensor and the rule:
//   * N <= 100 MB (the reference implementation's limit) and N <= file size
//     - 8, both checked before anything is allocated;
//   * the header is UTF-8 JSON starting with '{' (trailing spaces allowed);
//   * every dtype is known; shapes are lists of non-negative integers;
//   * data_offsets are two integers (no fraction, no exponent), 0 <= BEGIN
//     <= END <= data size, BEGIN a multiple of the dtype size;
//   * product(shape) x dtype size == END - BEGIN (no overflow);
//   * names are unique and non-empty; "__metadata__" holds strings only;
//   * sorted by offset, the tensors are contiguous, do not overlap and cover
//     the data section exactly: no hole, no trailing bytes (so a file cannot
//     hide other content, and no tensor reads the header).
// The writer produces files these rules accept, through core/afile.h (temp
// file, fsync, rename), with the header padded with spaces so the data
// section starts 8-byte aligned, and tensors back to back ordered by dtype
// size (largest first; the given order within a size), so every tensor's
// offset is a multiple of its dtype size.
//
// Data is little-endian; this code runs on little-endian hosts only.
#ifndef DP_CORE_SAFETENSORS_H
#define DP_CORE_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

#define ST_MAX_HEADER 100000000LL
#define ST_MAX_DIMS 16

typedef enum {
  ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16,
  ST_I32, ST_U32, ST_F32, ST_F64, ST_I64, ST_U64, ST_NDTYPES
} st_dtype;

typedef struct {
  const char *name;
  st_dtype dtype;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  int64_t numel;
  int64_t begin, end;       // byte range in the data section
} st_tensor;

typedef struct st_file st_file;

// Opens and validates path (the file is mapped read-only). NULL with err set.
st_file *st_open(const char *path, dp_err *err);
// The same on a buffer the caller keeps alive while the st_file is open
// (name is used in messages). For tests and the fuzz target.
st_file *st_open_mem(const void *buf, size_t size, const char *name, dp_err *err);
void st_close(st_file *f);

int st_count(const st_file *f);
// i-th tensor in data-offset order.
const st_tensor *st_at(const st_file *f, int i);
const st_tensor *st_find(const st_file *f, const char *name);   // NULL if absent
// Start of a tensor's bytes (not necessarily aligned for its dtype: copy
// with st_copy or memcpy before reading multi-byte values).
const void *st_data(const st_file *f, const st_tensor *t);
void st_copy(const st_file *f, const st_tensor *t, void *dst);   // end - begin bytes
int st_meta_count(const st_file *f);
const char *st_meta_key(const st_file *f, int i);
const char *st_meta_value(const st_file *f, int i);
const char *st_meta(const st_file *f, const char *key);   // NULL if absent
const char *st_path(const st_file *f);

int st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t);
// Returns 0 and sets *t, or -1 for an unknown name.
int st_dtype_parse(const char *name, st_dtype *t);

// ---- writer -------------------------------------------------------------------
typedef struct {
  const char *name;
  st_dtype dtype;
  int ndim;                 // 0 = scalar
  int64_t shape[ST_MAX_DIMS];
  const void *data;         // product(shape) x dtype size bytes
} st_entry;

// Writes the tensors (ordered as described above) and the metadata (nmeta key/value
// pairs: meta[2k] = key, meta[2k+1] = value) to path atomically.
// Returns 0, or -1 with err naming the path and the reason.
int st_write(const char *path, const st_entry *e, int n, const char *const *meta, int nmeta, dp_err *err);
#endif
