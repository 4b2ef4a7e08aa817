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

char *trk_json_strings(const char *const *kv, int npairs) {
  trk_jbuf b;
  trk_jbuf_begin(&b);
  dp_json_begin_object(&b.j);
  for (int i = 0; i < npairs; i++) dp_json_kv_string(&b.j, kv[2 * i], kv[2 * i + 1]);
  dp_json_end_object(&b.j);
  return trk_jbuf_end(&b);
}

void trk_json_metric_value(dp_json *j, double v) {
  if (isnan(v)) dp_json_string(j, "NaN");
  else if (isinf(v)) dp_json_string(j, v > 0 ? "Infinity" : "-Infinity");
  else dp_json_double(j, v);
}
