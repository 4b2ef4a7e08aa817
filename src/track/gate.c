#include "track/gate.h"

#include <math.h>
#include <stdio.h>

void trk_gate_decide(double cand_f1, double min_f1, const char *holder_version, double holder_f1,
                     const char *alias, trk_gate *g) {
  g->pass = 0;
  if (isnan(cand_f1)) {
    snprintf(g->reason, sizeof g->reason, "the candidate has no macro-F1 (no test samples?)");
    return;
  }
  if (!(cand_f1 >= min_f1)) {
    snprintf(g->reason, sizeof g->reason, "macro-F1 %.4f is below --min-macro-f1 %.4f", cand_f1, min_f1);
    return;
  }
  if (holder_version && !isnan(holder_f1) && cand_f1 < holder_f1) {
    snprintf(g->reason, sizeof g->reason,
             "macro-F1 %.4f is below the current '%s' version %s's %.4f on the same test shards", cand_f1, alias,
             holder_version, holder_f1);
    return;
  }
  g->pass = 1;
  if (holder_version && !isnan(holder_f1))
    snprintf(g->reason, sizeof g->reason,
             "macro-F1 %.4f >= --min-macro-f1 %.4f and >= the current '%s' version %s's %.4f on the same test shards",
             cand_f1, min_f1, alias, holder_version, holder_f1);
  else
    snprintf(g->reason, sizeof g->reason, "macro-F1 %.4f >= --min-macro-f1 %.4f (no current '%s' version)", cand_f1,
             min_f1, alias);
}
