// `dptrain study sweep`: the same training command at 1, 2, 4, ... ranks,
// launched one after the other (mpirun locally, srun in a Slurm job), each
// into OUT/np<N>/, with the 1-rank run as every other run's --baseline so the
// efficiency compares the same workload. A run flagged noisy (efficiency
// > 105 %, step-time CV > 20 %) is measured again once when asked.
#ifndef DP_STUDY_SWEEP_H
#define DP_STUDY_SWEEP_H

typedef struct {
  int ranks[16];
  int nranks;
  const char *out_dir;
  const char *launcher;      // tokens; "{n}" becomes the rank count, "{nodes}" ceil(n / per_node)
  int per_node;              // ranks per node for {nodes} (<= 0: 1 node)
  const char *self;          // the dptrain binary
  char **train_args;         // passed to `dptrain train` (without --out)
  int ntrain_args;
  int remeasure;             // runs again once when noisy
  int keep_binding;          // the launcher's binding (1 core per rank under mpirun): SLURM_CPU_BIND_TYPE=cores
} sweep_opts;

// Runs the sweep; fills paths[k] (malloc'd, nranks of them) with each run's
// results.json. Returns 0, or the first failing run's exit status.
int study_sweep(const sweep_opts *s, char ***paths);
#endif
