// Placeholder until the data tools land.
#include <stdio.h>

#include "cli/commands.h"

int cmd_data(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "dptrain data: not built yet\n");
  return 3;
}
