// dptrain: data-parallel image-classifier training. Dispatches subcommands.
//
// Exit status of every command: 0 ok, 1 runtime failure (I/O, MPI, a
// machine problem), 2 bad input or configuration (an unknown or out-of-range
// option, a shard/weights/config file that fails validation, data that does
// not fit the run). See README "Exit codes".
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "data/data_tools.h"

// The project version and `git describe` come from CMake (DP_VERSION,
// DP_GIT_DESCRIBE on dp_core); a build without them says so.
#ifndef DP_VERSION
#define DP_VERSION "unversioned"
#endif
#ifndef DP_GIT_DESCRIBE
#define DP_GIT_DESCRIBE ""
#endif

typedef struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} command;

static const command commands[] = {
    {"train", cmd_train, "data-parallel training over MPI ranks, with the scaling/cost/F1 report"},
    {"eval", cmd_eval, "evaluate weights on shards: accuracy, macro-F1, per-class metrics"},
    {"tune-batch", cmd_tune, "largest batch under a memory budget: plan, one probe step, table of memory and img/s"},
    {"score", cmd_score, "batch scoring: top-k predictions per record (shards, image folder, CSV), CPU or GPU"},
    {"info", cmd_info, "layer summary, parameter count, FLOPs and planned memory of a model"},
    {"data", cmd_data, "dataset tools: synth, pack, import-idx, verify, inspect"},
    {"study", cmd_study, "aggregate results.json files into a scaling/cost report"},
    {"export", cmd_export, "export weights to ONNX (python/dptrain; metadata carries the preprocessing)"},
    {"track", cmd_track, "MLflow tracking spool of a run: sync (send what was not sent), status"},
    {"registry", cmd_registry, "MLflow model registry: register, promote (quality gate), list, show"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
  fprintf(f, "usage: dptrain <command> [options]\n       dptrain help [command] | --version\n\ncommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
  fprintf(f,
          "\n'dptrain <command> --help' (or 'dptrain help <command>') shows a command's options.\n"
          "Exit status: 0 ok, 1 runtime failure, 2 bad input or configuration.\n");
}

static const command *find(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(name, commands[i].name)) return &commands[i];
  return NULL;
}

int main(int argc, char **argv) {
  // Line-buffered even into a pipe (mpirun, srun, Slurm logs): a progress or
  // eval line shows up when it is printed, and a killed job loses none.
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *a = argv[1];
  if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(a, "--version") || !strcmp(a, "version")) {
    printf("dptrain %s%s%s%s\n", DP_VERSION, DP_GIT_DESCRIBE[0] ? " (" : "", DP_GIT_DESCRIBE,
           DP_GIT_DESCRIBE[0] ? ")" : "");
    return 0;
  }
  if (!strcmp(a, "help")) {
    if (argc < 3) {
      usage(stdout);
      return 0;
    }
    const command *c = find(argv[2]);
    if (!c) {
      fprintf(stderr, "dptrain: unknown command '%s'\n\n", argv[2]);
      usage(stderr);
      return 2;
    }
    char *hargv[3] = {argv[2], "--help", NULL};
    return c->fn(2, hargv);
  }
  const command *c = find(a);
  if (c) return c->fn(argc - 1, argv + 1);
  fprintf(stderr, "dptrain: unknown command '%s'\n\n", a);
  usage(stderr);
  return 2;
}
