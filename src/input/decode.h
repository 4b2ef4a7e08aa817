// Image decoding for the input pipeline: JPEG through the TurboJPEG 2.1 API
// and the raw codec (uint8 (H, W, C) records). One decoder per thread: it owns
// a tjhandle and a reusable pixel buffer, so decoding allocates nothing once
// the buffer has grown to the largest image seen.
// Errors are returned (dp_err), never fatal: the loader skips and counts them.
#ifndef DP_INPUT_DECODE_H
#define DP_INPUT_DECODE_H
#include <stdint.h>

#include "core/check.h"

// Headers beyond these are rejected before anything is allocated.
#define DECODE_MAX_SIDE 16384
#define DECODE_MAX_PIXELS (64LL * 1024 * 1024)

// Error codes carried in dp_err.code.
enum {
  DECODE_ERR_EMPTY = 1,      // zero-length record
  DECODE_ERR_HEADER = 2,     // not a JPEG / unreadable header
  DECODE_ERR_DIMS = 3,       // absurd or zero dimensions
  DECODE_ERR_COLORSPACE = 4, // colour space we cannot convert
  DECODE_ERR_DATA = 5,       // corrupt entropy data / warning (STOPONWARNING)
  DECODE_ERR_RAW = 6,        // raw record size does not match the shape
};

typedef struct {
  int w, h;          // full-size image
  int colorspace;    // TJCS_* for JPEG; -1 for raw
  int subsamp;       // TJSAMP_* for JPEG
} img_header;

// A decoded image: (h, w, c) uint8, rows `stride` bytes apart. Points into the
// decoder's buffer (or into the record itself for raw), valid until the next
// decode on this decoder.
typedef struct {
  const uint8_t *pix;
  int w, h, c;
  int64_t stride;
} img_view;

typedef struct decoder decoder;
decoder *decoder_create(void);
void decoder_destroy(decoder *d);
// Allocates and touches a pixel buffer of at least n bytes now (the loader
// reserves the worst case of its data, so decoding never grows it and the
// process's memory does not depend on which images or crops come).
void decoder_prepare(decoder *d, size_t n);
// Buffer bytes decoding an image of hdr's size at full scale into `channels`
// channels can need: CMYK/YCCK sources stage 4 bytes per pixel as well;
// colorspace DECODE_CS_UNKNOWN (size known, colour space not) counts as CMYK.
#define DECODE_CS_UNKNOWN (-2)
int64_t decoder_worst_bytes(const img_header *hdr, int channels);

// Reads the JPEG header and validates the dimensions. Returns 0 or -1 (err set).
int decoder_jpeg_header(decoder *d, const uint8_t *buf, int64_t len, img_header *hdr,
                        dp_err *err);
// Picks the largest DCT scale-down num/denom (from tjGetScalingFactors, <= 1)
// such that the crop (crop_w, crop_h) of the full image, once scaled, is still
// >= need x need. Returns 1/1 unless the crop is >= 2x `need` in both dims.
void decoder_pick_scale(double crop_w, double crop_h, int need, int *num, int *denom);
// Decodes at scale num/denom into `channels` (1 or 3) channels with
// TJFLAG_STOPONWARNING. Grayscale sources are replicated to RGB; CMYK/YCCK
// sources are decoded to CMYK and converted with the Adobe (inverted) CMYK
// convention that libjpeg-turbo and Photoshop use: R = C * K / 255.
int decoder_jpeg_decode(decoder *d, const uint8_t *buf, int64_t len, const img_header *hdr,
                        int channels, int num, int denom, img_view *out, dp_err *err);
// Raw codec: the record must be exactly h*w*c bytes. Converts c -> channels
// (gray <-> RGB) in the decoder buffer when they differ; otherwise views buf.
int decoder_raw(decoder *d, const uint8_t *buf, int64_t len, int h, int w, int c,
                int channels, img_view *out, dp_err *err);
#endif
