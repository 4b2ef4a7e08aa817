// Subcommands of the dptrain binary. Each returns a process exit code.
#ifndef DP_CLI_COMMANDS_H
#define DP_CLI_COMMANDS_H
int cmd_info(int argc, char **argv);    // src/cli/cmd_info.c
int cmd_train(int argc, char **argv);   // src/cli/cmd_train.c
int cmd_eval(int argc, char **argv);    // src/cli/cmd_eval.c
int cmd_study(int argc, char **argv);   // src/cli/cmd_study.c
int cmd_tune(int argc, char **argv);    // src/cli/cmd_tune.c (tune-batch)
#endif
