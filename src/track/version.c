#include "track/version.h"

#ifndef DP_VERSION
#define DP_VERSION "0.0.0"
#endif
#ifndef DP_GIT_COMMIT
#define DP_GIT_COMMIT "unknown"
#endif
#ifndef DP_GIT_DESCRIBE
#define DP_GIT_DESCRIBE "unknown"
#endif

const char *dp_version(void) { return DP_VERSION; }
const char *dp_git_commit(void) { return DP_GIT_COMMIT; }
const char *dp_git_describe(void) { return DP_GIT_DESCRIBE; }
