// Procedural product photos for `dptrain data synth` (see data/SCHEMA.md,
// "synth"). A scene is drawn from a per-record RNG stream, so a record's
// pixels depend only on (seed, record index), never on thread scheduling.
#ifndef DP_DATA_SYNTH_H
#define DP_DATA_SYNTH_H
#include <stdint.h>

#include "core/rng.h"

// Defect kinds (a class is "clean" or exactly one defect).
typedef enum {
  DEF_NONE = 0, DEF_BLURRY, DEF_BACKGROUND, DEF_WATERMARK, DEF_DUPLICATE, DEF_LOW_LIGHT,
  DEF_OVEREXPOSED, DEF_CROPPED, DEF_NOISY, DEF_COLOR_CAST, DEF_PIXELATED, DEF_SMALL,
  DEF_COUNT
} synth_defect;

#define SYNTH_MAX_CLASSES 12
typedef struct {
  const char *name;
  int nclasses;
  const char *class_names[SYNTH_MAX_CLASSES];
  synth_defect defect[SYNTH_MAX_CLASSES];
  double pct[SYNTH_MAX_CLASSES];   // class shares in percent (sum 100)
  double missing_rate;             // per metadata value
} synth_preset;
const synth_preset *synth_preset_find(const char *name);

typedef struct {
  int w, h;
  // Background: 0 studio sweep, 1 tabletop (wall + wooden table), 2 clutter.
  int bg_kind;
  int bg_top[3], bg_bot[3], table[3];
  int horizon, wood_period;
  int side_light;                  // Q8 horizontal falloff, -80..80
  int clutter_n, clutter_alpha;    // alpha Q8
  uint64_t clutter_seed;
  // Product.
  int shape, texture, tex_period;
  int c1[3], c2[3];
  double cx, cy, a, b, angle;
  int light_x, light_y;            // Q8 shading gradient
  int shadow;                      // Q8 shadow strength
  // Camera and post-processing.
  int blur_radius;                 // box radius per pass (0 none)
  int blur_passes;
  int gain[3];                     // Q8 per channel
  int noise;                       // noise amplitude (~ sigma) in levels
  uint32_t noise_seed;
  int pixel_block;                 // >1: averaged blocks (low resolution)
  int wm_kind;                     // 0 none, 1 tiled text, 2 one big text, 3 logo ring + text
  int wm_word, wm_scale, wm_alpha, wm_white, wm_x, wm_y;
  int quality;                     // JPEG quality
} synth_scene;

// Draws a scene with defect `def` (DEF_DUPLICATE draws a clean scene: the
// duplicate is made from another record's scene, see synth.c).
void synth_draw_scene(dp_rng *r, synth_defect def, int size_min, int size_max, synth_scene *sc);
// Renders into px (sc->h, sc->w, 3); tmp needs w * 3 * sizeof(int32_t) bytes
// (blur column sums). Category code of the product = sc->shape.
void synth_render(const synth_scene *sc, uint8_t *px, int32_t *tmp);
#define SYNTH_MAX_SIDE 2048
#define SYNTH_NSHAPES 6
#endif
