// Subcommands of the dptrain binary. Each returns a process exit code.
#ifndef DP_CLI_COMMANDS_H
#define DP_CLI_COMMANDS_H
int cmd_info(int argc, char **argv);    // src/cli/cmd_info.c
int cmd_train(int argc, char **argv);   // src/cli/cmd_train.c
int cmd_eval(int argc, char **argv);    // src/cli/cmd_eval.c
int cmd_study(int argc, char **argv);   // src/cli/cmd_study.c
int cmd_tune(int argc, char **argv);    // src/cli/cmd_tune.c (tune-batch)
int cmd_export(int argc, char **argv);  // src/cli/cmd_export.c (runs python -m dptrain.export)
int cmd_track(int argc, char **argv);   // src/cli/cmd_track.c
int cmd_registry(int argc, char **argv);   // src/cli/cmd_registry.c
int cmd_score(int argc, char **argv);   // src/cli/cmd_score.c
#endif
