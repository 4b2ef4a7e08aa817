#include "track/jbuf.h"

#include <math.h>
#include <stdlib.h>

#include "core/check.h"

void trk_jbuf_begin(trk_jbuf *b) {
  b->buf = NULL;
  b->len = 0;
  b->f = open_memstream(&b->buf, &b->len);
  PTR_CHECK(b->f, "opening a memory stream for a JSON request");
  dp_json_init(&b->j, b->f, 0);
}

char *trk_jbuf_end(trk_jbuf *b) {
  if (fclose(b->f) != 0) DP_FATAL("closing a JSON memory stream", "out of memory?", "%s", dp_errno_str());
  b->f = NULL;
  return b->buf;
}

void trk_json_metric_value(dp_json *j, double v) {
  if (isnan(v)) dp_json_string(j, "NaN");
  else if (isinf(v)) dp_json_string(j, v > 0 ? "Infinity" : "-Infinity");
  else dp_json_double(j, v);
}
