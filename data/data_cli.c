// dptrain data <tool>: dispatch to the dataset tools.
#include <stdio.h>
#include <string.h>

#include "data/data_tools.h"

typedef struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} data_tool;

static const data_tool tools[] = {
    {"synth", data_synth_main, "procedural product photos with quality defects (presets shopsight5, shoplens12)"},
    {"pack", data_pack_main, "ImageFolder tree or CSV manifest -> shards (stratified splits)"},
    {"import-idx", data_import_idx_main, "MNIST/Fashion-MNIST IDX files (gzip or plain) -> raw grayscale shards"},
    {"verify", data_verify_main, "decode every record, check schema/offsets/labels, list corrupt records"},
    {"inspect", data_inspect_main, "counts per class, bytes, image sizes, missing metadata"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: dptrain data <tool> [options]   (schema: data/SCHEMA.md)\n\ntools:\n");
  for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
    fprintf(f, "  %-11s %s\n", tools[i].name, tools[i].help);
}

int cmd_data(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
    if (!strcmp(argv[1], tools[i].name)) return tools[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "dptrain data: unknown tool '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
