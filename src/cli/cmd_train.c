// dptrain train: parse the configuration on every rank, place the rank, run.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "dist/dist.h"
#include "train/config.h"
#include "train/trainer.h"

// Every rank parses the same argv, so only rank 0 needs to print problems:
// other ranks' stderr is muted while parsing (fd 2 saved and restored).
static int parse_quietly(train_config *cfg, int argc, char **argv, int rank) {
  int saved = -1;
  if (rank != 0) {
    fflush(stderr);
    saved = dup(2);
    int nul = open("/dev/null", O_WRONLY);
    if (saved >= 0 && nul >= 0) dup2(nul, 2);
    if (nul >= 0) close(nul);
  }
  int rc = train_config_parse(cfg, argc, argv);
  if (rc == 0 && train_config_check(cfg) != 0) rc = -1;
  if (saved >= 0) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
  }
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
  if (parse_quietly(&cfg, argc, argv, d.rank) != 0) {
    dist_finalize(&d);
    return 2;
  }
  dist_bind(&d, cfg.threads, cfg.loader_threads);
  int rc = trainer_run(&cfg, &d);
  dist_finalize(&d);
  return rc;
}
