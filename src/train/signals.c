// Preemption signals and fault injection.
//
// SIGUSR1 (Slurm's --signal=B:USR1@300, forwarded by the batch script) and
// SIGTERM (scancel, a node going down, mpirun forwarding) only set a flag;
// the loop checks it at the next step boundary, where all ranks agree on it
// with one small all-reduce, write a checkpoint and stop with
// TRAIN_EXIT_PREEMPTED. A second SIGTERM/SIGINT means "now": the default
// action runs.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "train/run.h"

static volatile sig_atomic_t g_pending;

static void on_signal(int sig) {
  if (g_pending && (sig == SIGTERM || sig == SIGINT)) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  g_pending = sig;
}

void signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  int sigs[] = {SIGUSR1, SIGTERM, SIGINT};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigaction(sigs[i], &sa, NULL) != 0) LOG_WARN("cannot install the handler for signal %d", sigs[i]);
}

int signals_pending(void) { return (int)g_pending; }

// Test hooks:
//   DPTRAIN_INJECT_FAULT=R:S     rank R fails (DP_FATAL) at step S
//   DPTRAIN_INJECT_KILL=R:S      rank R kills itself with SIGKILL at step S
//   DPTRAIN_INJECT_KILL=R:S:ckpt the same, while its checkpoint of step S is
//                                being written (rank 0 only writes)
//   DPTRAIN_INJECT_SIGNAL=R:S    rank R sends itself SIGUSR1 at step S
static int parse3(const char *e, int *r, long long *s, char *mode, size_t n) {
  mode[0] = 0;
  if (!e || !*e) return 0;
  char m[16] = "";
  int k = sscanf(e, "%d:%lld:%15s", r, s, m);
  if (k < 2) return 0;
  snprintf(mode, n, "%s", m);
  return 1;
}

typedef struct {
  int rank;
  long long step;
  char mode[16];
  int armed;
} inject;

static inject g_fault, g_kill, g_sig;

void fault_parse(trainer *t) {
  t->inject_rank = -1;
  g_fault.armed = parse3(getenv("DPTRAIN_INJECT_FAULT"), &g_fault.rank, &g_fault.step, g_fault.mode,
                         sizeof g_fault.mode);
  g_kill.armed = parse3(getenv("DPTRAIN_INJECT_KILL"), &g_kill.rank, &g_kill.step, g_kill.mode, sizeof g_kill.mode);
  g_sig.armed = parse3(getenv("DPTRAIN_INJECT_SIGNAL"), &g_sig.rank, &g_sig.step, g_sig.mode, sizeof g_sig.mode);
  if (g_fault.armed) t->inject_rank = g_fault.rank, t->inject_step = g_fault.step;
}

static int due(const inject *i, const trainer *t) {
  return i->armed && i->rank == t->d->rank && i->step == t->st.step;
}

void fault_maybe(trainer *t, int during_checkpoint) {
  if (!during_checkpoint && due(&g_fault, t))
    DP_FATAL("injected fault", "test-only: unset DPTRAIN_INJECT_FAULT", "DPTRAIN_INJECT_FAULT=%d:%lld",
             g_fault.rank, g_fault.step);
  int want_ckpt = !strcmp(g_kill.mode, "ckpt");
  if (due(&g_kill, t) && want_ckpt == during_checkpoint) {
    if (during_checkpoint && t->ck.w) {
      ckpt_writer_kill_at(t->ck.w, t->st.step);   // the writer thread dies mid-file
      return;
    }
    fprintf(stderr, "dptrain: [rank %d] DPTRAIN_INJECT_KILL: SIGKILL at step %lld\n", t->d->rank,
            (long long)t->st.step);
    fflush(stderr);
    kill(getpid(), SIGKILL);
  }
  if (!during_checkpoint && due(&g_sig, t)) {
    g_sig.armed = 0;
    raise(SIGUSR1);
  }
}
