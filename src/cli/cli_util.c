#include "cli/cli_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_agree(dist_ctx *d, int ok, const char *msg) {
  int all = ok, first_bad = ok ? d->world : d->rank;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, d->comm), "agreeing on the configuration");
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &first_bad, 1, MPI_INT, MPI_MIN, d->comm), "agreeing on the configuration");
  if (!all && d->rank == first_bad && msg && *msg) {
    if (d->rank == 0) fprintf(stderr, "%s", msg);
    else fprintf(stderr, "[rank %d host %s] %s", d->rank, d->host, msg);
    size_t n = strlen(msg);
    if (n && msg[n - 1] != '\n') fputc('\n', stderr);
    fflush(stderr);
  }
  return all ? 0 : -1;
}

int cli_parse_all_ranks(dist_ctx *d, cli_parse_fn parse, void *ctx, int argc, char **argv) {
  // Capture stderr in a temp file while parsing: only one rank should print.
  fflush(stderr);
  FILE *cap = tmpfile();
  int saved = cap ? dup(2) : -1;
  if (saved >= 0) dup2(fileno(cap), 2);
  int rc = parse(ctx, argc, argv);
  char msg[4096] = "";
  if (saved >= 0) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(cap);
    size_t n = fread(msg, 1, sizeof msg - 1, cap);
    msg[n] = 0;
  }
  if (cap) fclose(cap);
  return cli_agree(d, rc == 0, msg);
}

// Every rank parses the same argv; a check that depends on the node (a
// --config file missing there, fewer CPUs for --threads) can fail on one rank
// only, so the ranks agree and exactly one prints the reason.
static int train_parse_and_check(void *ctx, int argc, char **argv) {
  train_config *cfg = ctx;
  int rc = train_config_parse(cfg, argc, argv);
  if (rc == 0 && train_config_check(cfg) != 0) rc = -1;
  return rc;
}

int cli_train_start(dist_ctx *d, train_config *cfg, int *argc, char ***argv) {
  dist_init(d, argc, argv);
  train_config_defaults(cfg);
  if (cli_parse_all_ranks(d, train_parse_and_check, cfg, *argc, *argv) != 0) {
    dist_finalize(d);
    return 2;
  }
  dist_bind(d, cfg->threads, cfg->loader_threads);
  return 0;
}
