// Fuzz target: image decoding + augmentation, as the loader runs it for one
// sample (header check, crop parameters, DCT scale, decode, fused
// resize/crop/flip/jitter/normalise), plus pack's PNG/PPM/PGM decoders.
// Input: an 8-byte parameter block, then the record.
//   [0] bit 0 train (random-resized-crop) / eval, bit 1: 1 or 3 channels,
//       bit 2 uint8 output, bit 3 NCHW, bits 4-5 codec: 0 JPEG, 1 raw,
//       2 PNG/PPM/PGM (data/img_decode.c, then the same augmentation), 3 as 0
//   [1] output size 8..135   [2], [3] raw height, width 1..64
//   [4..7] seed of the augmentation draw
#include <stdlib.h>
#include <string.h>

#include "data/img_decode.h"
#include "fuzz.h"
#include "input/augment.h"
#include "input/decode.h"

static decoder *g_dec;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_quiet_stdio();
  g_dec = decoder_create();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 8) return 0;
  const int train = data[0] & 1, channels = data[0] & 2 ? 3 : 1, u8 = (data[0] >> 2) & 1, nchw = (data[0] >> 3) & 1;
  const int codec = ((data[0] >> 4) & 3) % 3, out = 8 + data[1] % 128;   // 3 reads as 0 (JPEG)
  const int raw_h = 1 + data[2] % 64, raw_w = 1 + data[3] % 64;
  const uint64_t seed = (uint64_t)data[4] | (uint64_t)data[5] << 8 | (uint64_t)data[6] << 16 | (uint64_t)data[7] << 24;
  const uint8_t *rec = data + 8;
  const int64_t len = (int64_t)size - 8;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
  aug_out o;
  aug_out_init(&o, out, channels, nchw, u8, mean, sd);
  dp_err err;
  dp_err_clear(&err);
  img_view v;
  img_header h = {0, 0, -1, -1};
  img_u8 png = {0, 0, 0, NULL};
  int ok = 0;
  if (codec == 1) {
    ok = decoder_raw(g_dec, rec, len, raw_h, raw_w, channels == 3 && (data[0] & 64) ? 3 : 1, channels, &v, &err) == 0;
    h.w = raw_w, h.h = raw_h;
  } else if (codec == 2) {
    char why[200];
    if (img_decode(rec, len, &png, why, sizeof why) == 0 && (png.c == channels || png.c == 1 || png.c == 3)) {
      // Same shape contract as a raw record: convert through decoder_raw.
      ok = decoder_raw(g_dec, png.px, (int64_t)png.w * png.h * png.c, png.h, png.w, png.c, channels, &v, &err) == 0;
      h.w = png.w, h.h = png.h;
    }
  } else {
    ok = decoder_jpeg_header(g_dec, rec, len, &h, &err) == 0;
  }
  if (codec != 0 && !ok) {
    free(png.px);
    return 0;
  }
  if (codec == 0 && !ok) return 0;
  aug_params p;
  dp_rng r = dp_rng_stream(seed, 1);
  const float scale[2] = {0.08f, 1.0f}, ratio[2] = {3.0f / 4.0f, 4.0f / 3.0f};
  if (train) aug_train_params(&r, h.w, h.h, scale, ratio, 0.5f, (data[0] & 128) ? 0.4f : 0.0f, &p);
  else aug_eval_params(h.w, h.h, out, 0.875f, &p);
  if (codec == 0) {
    int num, den;
    decoder_pick_scale(p.cw, p.ch, out, &num, &den);
    if (decoder_jpeg_decode(g_dec, rec, len, &h, channels, num, den, &v, &err) != 0) return 0;
  }
  aug_scratch *s = aug_scratch_create(&o);
  size_t bytes = (size_t)out * out * channels * (u8 ? 1 : sizeof(float));
  void *dst = malloc(bytes);
  aug_render(&v, h.w, h.h, &p, &o, s, dst);
  fprintf(stderr, "rendered %dx%d -> %d\n", h.w, h.h, out);
  // Every output value is finite (no NaN from a degenerate crop).
  if (!u8)
    for (size_t i = 0; i < bytes / sizeof(float); i++)
      if (!(((float *)dst)[i] == ((float *)dst)[i])) __builtin_trap();
  free(dst);
  aug_scratch_destroy(s);
  free(png.px);
  return 0;
}
