// Helpers shared by the MPI subcommands (train, eval).
#ifndef DP_CLI_UTIL_H
#define DP_CLI_UTIL_H
#include "dist/dist.h"
#include "train/config.h"

// Runs parse(ctx, argc, argv) on every rank and makes the ranks agree: each
// rank's stderr is captured while it parses; if any rank failed, rank 0
// prints its own message, or (when rank 0 was fine, e.g. a --config file
// missing on one node) the lowest failing rank prints its message with its
// rank and host. Returns 0 when every rank succeeded, else -1 on all ranks.
typedef int (*cli_parse_fn)(void *ctx, int argc, char **argv);
int cli_parse_all_ranks(dist_ctx *d, cli_parse_fn parse, void *ctx, int argc, char **argv);
// Same agreement for a check already made on each rank: ok = 1 / 0, msg the
// reason on a failing rank (printed once, by rank 0 or the lowest failing rank).
int cli_agree(dist_ctx *d, int ok, const char *msg);
// train and tune-batch: MPI start-up, the train configuration parsed and
// checked on every rank (cli_parse_all_ranks), the rank placed. Returns 0, or
// 2 after dist_finalize when the configuration is bad.
int cli_train_start(dist_ctx *d, train_config *cfg, int *argc, char ***argv);
#endif
