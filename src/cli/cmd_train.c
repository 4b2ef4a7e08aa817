// dptrain train: parse the configuration on every rank, place the rank, run.
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include "train/config.h"
#include "train/trainer.h"

int cmd_train(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      train_config_usage(stdout);
      return 0;
    }
  dist_ctx d;
  train_config cfg;
  if (cli_train_start(&d, &cfg, &argc, &argv)) return 2;
  int rc = trainer_run(&cfg, &d);
  dist_finalize(&d);
  return rc;
}
