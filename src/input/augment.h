// Augmentation fused with resampling and normalisation: one pass from the
// decoded image straight into the batch buffer.
//  train: random-resized-crop (torchvision RandomResizedCrop.get_params),
//         horizontal flip, colour jitter (brightness, contrast, saturation,
//         applied in that fixed order, each clamped to [0, 1] like torchvision);
//  eval:  resize the shorter side to out/ratio, then center crop out x out.
// Resampling is bilinear with half-pixel centres (torch F.interpolate,
// align_corners=False, no antialias). A crop is expressed in full-image
// coordinates so it survives DCT down-scaling in the decoder.
#ifndef DP_INPUT_AUGMENT_H
#define DP_INPUT_AUGMENT_H
#include <stdint.h>

#include "core/rng.h"
#include "input/decode.h"

typedef struct {
  double x0, y0, cw, ch;            // crop rectangle, full-image pixels
  double lo_x, hi_x, lo_y, hi_y;    // sample coordinates are clamped to these
  int flip;                         // horizontal flip of the output
  float bright, contrast, sat;      // jitter factors (1 = identity)
  int jitter;                       // any jitter factor != 1
} aug_params;

typedef struct {
  int size;            // output H = W
  int channels;        // 1 or 3
  int nchw;            // 0: (H, W, C); 1: (C, H, W)
  int u8;              // 1: uint8 [0, 255] output (no normalisation)
  float scale[3];      // float output = pixel[0..255] * scale + bias
  float bias[3];       //   i.e. (pixel / 255 - mean) / std
} aug_out;

void aug_out_init(aug_out *o, int size, int channels, int nchw, int u8, const float mean[3],
                  const float std[3]);

// RandomResizedCrop parameters on a w x h image (torchvision semantics:
// 10 attempts with area ~ U(scale) and log-uniform ratio, then the
// center-crop fallback), then flip with probability hflip_p, then jitter
// factors ~ U(max(0, 1 - jitter), 1 + jitter).
void aug_train_params(dp_rng *r, int w, int h, const float scale[2], const float ratio[2],
                      float hflip_p, float jitter, aug_params *p);
// Eval transform: Resize(int(out / ratio)) then CenterCrop(out).
void aug_eval_params(int w, int h, int out, float resize_ratio, aug_params *p);

// Augmentation policies. imagenet: random-resized-crop + flip + jitter (the
// ImageNet recipe). defects: every transform keeps the image at the scale the
// eval transform sees it (see docs/quality.md for why, class by class):
// the same Resize(int(out / ratio)) as eval (same filter, same DCT scaling),
// then an out x out crop at a random integer offset in the resized image,
// optionally beyond it by `pad` pixels on each side (edge-replicated), then a
// horizontal flip; no crop-and-upscale, no blur, no jitter (the loader applies
// jitter only to the classes it is told are safe).
typedef enum { AUG_POLICY_IMAGENET = 0, AUG_POLICY_DEFECTS = 1 } aug_policy;
// "imagenet" / "defects" -> policy; returns -1 for anything else.
int aug_policy_parse(const char *name);
const char *aug_policy_name(int policy);
// The native-scale crop of the eval geometry with its top-left corner at
// (dx, dy) in resized pixels; aug_eval_params is the centred case.
void aug_native_params(int w, int h, int out, float resize_ratio, int dx, int dy, int flip, aug_params *p);
// defects policy: offset uniform in [-pad, slack + pad] per axis, flip with
// probability hflip_p.
void aug_defects_params(dp_rng *r, int w, int h, int out, float resize_ratio, int pad, float hflip_p,
                        aug_params *p);

// Per-thread scratch (tables and row buffers); sized for one aug_out.
typedef struct aug_scratch aug_scratch;
aug_scratch *aug_scratch_create(const aug_out *o);
// Bytes aug_scratch_create allocates (and touches) for o.
int64_t aug_scratch_bytes(const aug_out *o);
void aug_scratch_destroy(aug_scratch *s);

// Renders one sample. `src` is the decoded image, possibly DCT-scaled from
// the full full_w x full_h image. dst: float or uint8 (per o->u8) with room
// for size * size * channels values.
void aug_render(const img_view *src, int full_w, int full_h, const aug_params *p,
                const aug_out *o, aug_scratch *s, void *dst);
#endif
