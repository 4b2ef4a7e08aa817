// dptrain tune-batch: the largest per-rank batch that fits the memory budget,
// from the plan and one confirming training step, with a table of planned
// and measured memory and img/s for it and a few smaller batches
// (train/memfit.h). Takes the same flags as `dptrain train`.
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "dist/dist.h"
#include "input/loader.h"
#include "train/config.h"
#include "train/device.h"
#include "train/memfit.h"

int cmd_tune(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: dptrain tune-batch --model NAME --train GLOB [--val GLOB] [--memory-budget 24GiB]\n"
             "                          [--memory-margin 0.05] [--global-batch G] [--tune-steps 3] [train options]\n"
             "The largest per-rank batch whose memory plan fits the budget less the margin, confirmed by one\n"
             "training step; a table of planned / measured memory and img/s. Same options as 'dptrain train'.\n\n");
      train_config_usage(stdout);
      return 0;
    }
  dist_ctx d;
  train_config cfg;
  if (cli_train_start(&d, &cfg, &argc, &argv)) return 2;
  loader_cfg dc;
  loader_cfg_defaults(&dc);
  train_device *td = train_device_open(cfg.device, cfg.precision, &d, dc.mean, dc.std);
  int rc = memfit_tune(&cfg, &d, td);
  td->destroy(td);
  dist_finalize(&d);
  return rc;
}
