#include "core/sysinfo.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

// First "<key>:" line of a /proc-style file, as a number (its unit is the caller's).
static int64_t keyed_number(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  int64_t v = -1;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl) && line[kl] == ':') {
      v = strtoll(line + kl + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

int64_t dp_proc_status_bytes(const char *key) {
  int64_t kb = keyed_number("/proc/self/status", key);
  return kb < 0 ? -1 : kb * 1024;
}

int64_t dp_peak_rss_bytes(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return (int64_t)ru.ru_maxrss * 1024;   // Linux: kilobytes
}

int dp_cores_available(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? n : 1;
}

// One number from a one-line file; -2 for "max", -1 if unreadable.
static int64_t file_number(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char buf[64] = "";
  int64_t v = -1;
  if (fgets(buf, sizeof buf, f)) v = !strncmp(buf, "max", 3) ? -2 : strtoll(buf, NULL, 10);
  fclose(f);
  return v;
}

int64_t dp_memory_available_bytes(void) {
  int64_t avail_kb = keyed_number("/proc/meminfo", "MemAvailable");
  int64_t avail = avail_kb >= 0 ? avail_kb * 1024 : -1;
  int64_t lim = file_number("/sys/fs/cgroup/memory.max"), cur = file_number("/sys/fs/cgroup/memory.current");
  if (lim > 0 && cur >= 0) {
    int64_t room = lim > cur ? lim - cur : 0;
    if (avail < 0 || room < avail) avail = room;
  }
  return avail;
}
