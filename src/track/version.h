// What built this binary: the dptrain version and the git commit, taken by
// CMake at configure time (`git rev-parse HEAD`, `git describe --always
// --dirty`); "unknown" outside a git checkout. Re-run cmake after committing
// to refresh them.
#ifndef DP_TRACK_VERSION_H
#define DP_TRACK_VERSION_H
const char *dp_version(void);          // "0.1.0"
const char *dp_git_commit(void);       // 40 hex digits or "unknown"
const char *dp_git_describe(void);     // e.g. "ef17386-dirty" or "unknown"
#endif
