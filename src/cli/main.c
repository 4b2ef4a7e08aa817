// dptrain: data-parallel image-classifier training. Dispatches subcommands.
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "data/data_tools.h"

typedef struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} command;

static const command commands[] = {
    {"train", cmd_train, "data-parallel training over MPI ranks, with the scaling/cost/F1 report"},
    {"eval", cmd_eval, "evaluate weights on shards: accuracy, macro-F1, per-class metrics"},
    {"score", cmd_score, "batch scoring: top-k predictions per record (shards, image folder, CSV), CPU or GPU"},
    {"info", cmd_info, "layer summary, parameter count, FLOPs and planned memory of a model"},
    {"data", cmd_data, "dataset tools: synth, pack, import-idx, verify, inspect"},
    {"study", cmd_study, "aggregate results.json files into a scaling/cost report"},
    {"export", cmd_export, "export weights to ONNX (python/dptrain; metadata carries the preprocessing)"},
    {"track", cmd_track, "MLflow tracking spool of a run: sync (send what was not sent), status"},
    {"registry", cmd_registry, "MLflow model registry: register, promote (quality gate), list, show"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: dptrain <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
  fprintf(f, "\n'dptrain <command> --help' shows a command's options.\n");
}

int main(int argc, char **argv) {
  // Line-buffered even into a pipe (mpirun, srun, Slurm logs): a progress or
  // eval line shows up when it is printed, and a killed job loses none.
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "dptrain: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
