// Helpers for the input-pipeline tests: synthetic images, JPEG encoding with
// TurboJPEG, and shard writing through the shard API.
#ifndef DP_INPUT_TESTUTIL_H
#define DP_INPUT_TESTUTIL_H
#include <stdint.h>

#include "input/shard.h"

// Smooth synthetic (h, w, c) image that depends on `seed`; malloc'd.
uint8_t *it_make_image(int w, int h, int c, uint32_t seed);
// Encodes pixels (pf = TJPF_RGB, TJPF_GRAY or TJPF_CMYK) with tjCompress2.
// Returns malloc'd bytes and *len, or dies.
uint8_t *it_jpeg_encode(const uint8_t *pix, int w, int h, int pf, int subsamp, int quality,
                        int flags, int64_t *len);
// A JPEG of a synthetic w x h RGB image.
uint8_t *it_jpeg_make(int w, int h, uint32_t seed, int flags, int64_t *len);
// Writes a shard; records[i] of lens[i] bytes (len 0 allowed). Dies on error.
void it_shard_write(const char *path, shard_codec codec, int num_classes, int raw_h, int raw_w,
                    int raw_c, int64_t n, uint8_t *const *records, const int64_t *lens,
                    const int32_t *labels, const int64_t *ids);
// Path inside the fixture dir: <dir>/<name>.
const char *it_path(const char *name);
#endif
