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
// A metric value: a JSON number, or "NaN" / "Infinity" / "-Infinity", which
// MLflow's protobuf JSON parser accepts (dp_json writes non-finite as null).
void trk_json_metric_value(dp_json *j, double v);
#endif
