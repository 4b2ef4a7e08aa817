// Small image decoders used by `dptrain data pack` for non-JPEG inputs.
#ifndef DP_DATA_IMG_DECODE_H
#define DP_DATA_IMG_DECODE_H
#include <stddef.h>
#include <stdint.h>

#define IMG_MAX_SIDE 16384
typedef enum { IMG_UNKNOWN = 0, IMG_JPEG, IMG_PNG, IMG_PNM } img_format;
typedef struct {
  int w, h, c;     // c = 1 (gray) or 3 (RGB)
  uint8_t *px;     // (h, w, c), malloc'd
} img_u8;

img_format img_detect(const uint8_t *b, int64_t len);
// Decodes PNG or binary PPM/PGM. Returns 0, or -1 with a reason in why.
int img_decode(const uint8_t *b, int64_t len, img_u8 *out, char *why, size_t cap);
#endif
