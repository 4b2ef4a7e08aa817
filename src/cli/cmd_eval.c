// Placeholder until the owning issue lands; exits non-zero so no script mistakes it for work.
#include <stdio.h>

#include "cli/commands.h"

int cmd_eval(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "dptrain eval: not built yet\n");
  return 3;
}
