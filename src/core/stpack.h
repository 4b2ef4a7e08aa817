// A safetensors file under construction: tensors (pointers to the caller's
// data, or copies the pack owns) and string metadata, written in one call
// through core/safetensors.h's validating, atomic writer. Weights files and
// checkpoints are both built this way.
#ifndef DP_CORE_STPACK_H
#define DP_CORE_STPACK_H
#include <stdint.h>

#include "core/check.h"
#include "core/safetensors.h"

typedef struct {
  st_entry *e;
  int n, cap;
  const char **kv;     // key, value, key, value, ...
  int nmeta, metacap;  // pairs
  char **owned;        // names, values and copies freed with the pack
  int nowned, owncap;
} st_pack;

void st_pack_init(st_pack *p);
void st_pack_free(st_pack *p);
// A tensor over data the caller keeps alive until the write (name is copied).
void st_pack_add(st_pack *p, const char *name, st_dtype dt, int ndim, const int64_t *shape, const void *data);
// The same, but the pack keeps its own copy of the bytes (for snapshots).
void st_pack_add_copy(st_pack *p, const char *name, st_dtype dt, int ndim, const int64_t *shape, const void *data);
// Metadata (key and value are copied). printf-style value.
void st_pack_meta(st_pack *p, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// A metadata value too long for printf buffers (copied).
void st_pack_meta_str(st_pack *p, const char *key, const char *value);
// Bytes of the data section (sum of the tensors' sizes).
int64_t st_pack_data_bytes(const st_pack *p);
// CRC-32 (zlib) over the tensors' bytes, in the order the writer lays them out.
uint32_t st_pack_data_crc32(const st_pack *p);
int st_pack_write(const st_pack *p, const char *path, dp_err *err);
#endif
