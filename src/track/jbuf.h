// JSON request bodies in memory: the core/json.h writer on an open_memstream.
#ifndef DP_TRACK_JBUF_H
#define DP_TRACK_JBUF_H
#include <stdio.h>

#include "core/json.h"

typedef struct {
  FILE *f;
  char *buf;
  size_t len;
  dp_json j;   // write with the dp_json_* calls on &b.j
} trk_jbuf;

void trk_jbuf_begin(trk_jbuf *b);
// Closes the stream and returns the text (caller frees).
char *trk_jbuf_end(trk_jbuf *b);
// A flat object of string fields, {"k0": "v0", ...}, from npairs pairs
// kv[2i] (key) and kv[2i + 1] (value). Returns the text (caller frees).
char *trk_json_strings(const char *const *kv, int npairs);
// A metric value: a JSON number, or "NaN" / "Infinity" / "-Infinity", which
// MLflow's protobuf JSON parser accepts (dp_json writes non-finite as null).
void trk_json_metric_value(dp_json *j, double v);
#endif
