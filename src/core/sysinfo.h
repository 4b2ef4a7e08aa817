// What the process and the machine have: memory use from /proc, peak RSS,
// the cores this process may run on, and the memory it may use (cgroup
// limit or MemAvailable). Used by the trainer's reports, the batch-size
// finder's budget, option range checks and the benchmarks.
#ifndef DP_CORE_SYSINFO_H
#define DP_CORE_SYSINFO_H
#include <stdint.h>

// A "<key>: <n> kB" line of /proc/self/status in bytes (VmRSS, VmHWM, ...); -1 if unreadable.
int64_t dp_proc_status_bytes(const char *key);
// Peak resident set of this process (getrusage), bytes; -1 if unavailable.
int64_t dp_peak_rss_bytes(void);
// CPUs in this process's affinity mask (at least 1).
int dp_cores_available(void);
// Memory this process may still use: the cgroup v2 memory.max minus
// memory.current when a limit is set, else MemAvailable; -1 if unknown.
int64_t dp_memory_available_bytes(void);
#endif
