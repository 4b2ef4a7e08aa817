// Entry points of the dataset tools (dptrain data <tool>); each gets argv
// starting at the tool name and returns a process exit code.
#ifndef DP_DATA_TOOLS_H
#define DP_DATA_TOOLS_H
int data_synth_main(int argc, char **argv);       // data/synth.c
int data_pack_main(int argc, char **argv);        // data/pack.c
int data_import_idx_main(int argc, char **argv);  // data/import_idx.c
int data_verify_main(int argc, char **argv);      // data/verify.c
int data_inspect_main(int argc, char **argv);     // data/inspect.c
// `dptrain data <tool> ...` (data/data_cli.c): dispatches to the tools above.
int cmd_data(int argc, char **argv);
#endif
