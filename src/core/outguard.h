// Output that a stalled reader cannot wedge.
//
// A rank's stdout and stderr are pipes or pseudo-terminals read by the
// launcher. When the launcher stops reading (mpirun after SIGTERM sends the
// ranks SIGCONT, stops forwarding their output, and only signals them
// odls_base_sigkill_timeout seconds later), the next printf blocks, the rank
// never reaches its step boundary, and the preemption checkpoint is lost.
//
// dp_outguard_stdio() replaces stdout and stderr with streams that wait for a
// slow reader as long as no stop is requested (no output is lost in normal
// running), and drop what cannot be written once *stop is set.
#ifndef DP_CORE_OUTGUARD_H
#define DP_CORE_OUTGUARD_H

#include <stdint.h>

// Wraps fd 1 and fd 2; returns 0, or -1 (the plain streams stay) when the
// C library cannot make the streams. Regular files are written as before.
int dp_outguard_stdio(volatile const int *stop);

// Bytes dropped so far because a stop was pending and the reader was stalled.
uint64_t dp_outguard_dropped(void);

#endif
