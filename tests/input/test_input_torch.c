// Fused augmentation against torchvision (make_aug_fixtures.py): eval
// Resize + CenterCrop, and resized_crop with and without hflip, all bilinear
// without antialias, normalised; output (H, W, C) float.
#include <stdio.h>
#include <stdlib.h>

#include "input/augment.h"
#include "testutil.h"

int main(void) {
  char file[1024];
  snprintf(file, sizeof file, "%s/aug_oracle.h5", tu_fixture_dir());
  if (!tu_file_exists(file)) tu_skip("aug_oracle.h5 missing (run make_aug_fixtures.py)");
  int64_t n;
  int32_t *nc = tu_h5_read_i32(file, "ncases", &n);
  if (!nc) return 1;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  for (int k = 0; k < nc[0]; k++) {
    char name[64];
#define RD(var, ds, fn)                                        \
    snprintf(name, sizeof name, "case%d/" ds, k);              \
    var = fn(file, name, &n);                                  \
    if (!var) return 1;
    int32_t *shape, *crop;
    float *imgf, *ev, *rrc, *rrcf;
    RD(shape, "shape", tu_h5_read_i32);
    RD(crop, "crop", tu_h5_read_i32);
    RD(imgf, "img", tu_h5_read_f32);
    RD(ev, "eval", tu_h5_read_f32);
    RD(rrc, "rrc", tu_h5_read_f32);
    RD(rrcf, "rrc_flip", tu_h5_read_f32);
    int W = shape[0], H = shape[1], out = shape[2];
    uint8_t *img = malloc((size_t)W * H * 3);
    for (int64_t i = 0; i < (int64_t)W * H * 3; i++) img[i] = (uint8_t)imgf[i];
    aug_out o;
    aug_out_init(&o, out, 3, 0, 0, mean, std);
    aug_scratch *s = aug_scratch_create(&o);
    float *got = malloc(sizeof(float) * out * out * 3);
    img_view v = {img, W, H, 3, (int64_t)W * 3};
    aug_params p;
    aug_eval_params(W, H, out, 0.875f, &p);
    aug_render(&v, W, H, &p, &o, s, got);
    snprintf(name, sizeof name, "eval %dx%d -> %d", W, H, out);
    TU_CHECK(tu_close(name, got, ev, (int64_t)out * out * 3, 5e-5), "eval vs torchvision");
    // resized_crop(i, j, h, w): the crop in our full-image form.
    p = (aug_params){0};
    p.y0 = crop[0];
    p.x0 = crop[1];
    p.ch = crop[2];
    p.cw = crop[3];
    p.lo_x = p.x0;
    p.hi_x = p.x0 + p.cw - 1;
    p.lo_y = p.y0;
    p.hi_y = p.y0 + p.ch - 1;
    p.bright = p.contrast = p.sat = 1;
    aug_render(&v, W, H, &p, &o, s, got);
    snprintf(name, sizeof name, "resized_crop %dx%d -> %d", W, H, out);
    TU_CHECK(tu_close(name, got, rrc, (int64_t)out * out * 3, 5e-5), "crop vs torchvision");
    p.flip = 1;
    aug_render(&v, W, H, &p, &o, s, got);
    snprintf(name, sizeof name, "resized_crop+hflip %dx%d", W, H);
    TU_CHECK(tu_close(name, got, rrcf, (int64_t)out * out * 3, 5e-5), "flip vs torchvision");
    aug_scratch_destroy(s);
    free(img); free(got); free(shape); free(crop); free(imgf); free(ev); free(rrc); free(rrcf);
  }
  free(nc);
  return tu_finish("test_input_torch");
}
