// The per-rank core share rule of dist_bind on hwloc synthetic topologies:
// one or more packages per rank when there are enough, else an even split of
// cores, else one core per rank round-robin (oversubscribed).
#include <string.h>

#include "dist/dist.h"
#include "testutil.h"

static void expect(const char *topo, int r, int L, const char *want, int want_over) {
  char got[256];
  int over = dist_share_for_topology(topo, r, L, got, sizeof got);
  TU_CHECK(!strcmp(got, want) && over == want_over, "%s rank %d/%d: got %s (over %d), want %s (over %d)", topo,
           r, L, got, over, want, want_over);
}

int main(void) {
  const char *two = "pack:2 core:4 pu:2";   // 2 sockets x 4 cores x 2 hyperthreads
  expect(two, 0, 1, "0-15", 0);              // one rank: the whole node
  expect(two, 0, 2, "0-7", 0);               // one socket per rank
  expect(two, 1, 2, "8-15", 0);
  expect(two, 0, 4, "0-3", 0);               // fewer sockets than ranks: 2 cores each
  expect(two, 3, 4, "12-15", 0);
  expect(two, 0, 3, "0-3", 0);               // uneven: cores [r*8/3, (r+1)*8/3)
  expect(two, 1, 3, "4-9", 0);
  expect(two, 2, 3, "10-15", 0);
  expect(two, 9, 10, "2-3", 1);              // more ranks than cores
  expect("pack:4 core:2 pu:1", 1, 2, "4-7", 0);   // two sockets per rank
  expect("pack:1 core:2 pu:1", 1, 2, "1", 0);     // this dev machine's shape
  return tu_finish("test_dist_share");
}
