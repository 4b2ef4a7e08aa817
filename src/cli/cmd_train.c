// dptrain train: parse the configuration on every rank, place the rank, run.
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include "train/config.h"
#include "train/trainer.h"

// Every rank parses the same argv; a check that depends on the node (a
// --config file missing there, fewer CPUs for --threads) can fail on one rank
// only, so the ranks agree and exactly one prints the reason.
static int parse_and_check(void *ctx, int argc, char **argv) {
  train_config *cfg = ctx;
  int rc = train_config_parse(cfg, argc, argv);
  if (rc == 0 && train_config_check(cfg) != 0) rc = -1;
  return rc;
}

int cmd_train(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      train_config_usage(stdout);
      return 0;
    }
  dist_ctx d;
  dist_init(&d, &argc, &argv);
  train_config cfg;
  train_config_defaults(&cfg);
  if (cli_parse_all_ranks(&d, parse_and_check, &cfg, argc, argv) != 0) {
    dist_finalize(&d);
    return 2;
  }
  dist_bind(&d, cfg.threads, cfg.loader_threads);
  int rc = trainer_run(&cfg, &d);
  dist_finalize(&d);
  return rc;
}
