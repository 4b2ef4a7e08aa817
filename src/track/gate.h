// The promotion quality gate of `dptrain registry promote`: a candidate model
// takes the alias only when its macro-F1 on the test shards is at least
// --min-macro-f1 and at least the current holder's macro-F1 on the same
// shards (both re-scored by the caller, not read from stored figures).
#ifndef DP_TRACK_GATE_H
#define DP_TRACK_GATE_H
#include <stddef.h>

typedef struct {
  int pass;            // 1: the candidate may take the alias
  char reason[512];    // one sentence, for the log and the version's tags
} trk_gate;

// holder_version NULL (or holder_f1 NaN with no holder): no current holder.
void trk_gate_decide(double cand_f1, double min_f1, const char *holder_version, double holder_f1,
                     const char *alias, trk_gate *g);
#endif
