# shellcheck shell=bash
# Shared by the sbatch scripts (sourced). Preemption-aware job steps:
#
# Slurm sends the batch shell SIGUSR1 300 s before the time limit or on
# preemption (#SBATCH --signal=B:USR1@300); scancel --signal=USR1 --batch does
# the same by hand. The shell forwards it to the running job step; dptrain
# checkpoints at its next step boundary and exits 75 (results.json "status":
# "preempted"); the shell then requeues the job (scontrol requeue) and the
# same command line, with --resume auto, continues from the checkpoint.
#
# Settings (environment, all optional):
#   DPTRAIN_MODULES   space-separated `module load` arguments (e.g. "openmpi/4.1 hdf5")
#   DPTRAIN           the binary (default: $SLURM_SUBMIT_DIR/build/dptrain)
#   DPTRAIN_SRUN_ARGS extra srun arguments (default: --mpi=pmix --cpu-bind=none --kill-on-bad-exit=1)

if [ -n "${DPTRAIN_MODULES:-}" ]; then
  if command -v module >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    module load $DPTRAIN_MODULES
  else
    echo "dptrain: DPTRAIN_MODULES is set but this node has no 'module' command" >&2
    exit 2
  fi
fi
DPTRAIN=${DPTRAIN:-${SLURM_SUBMIT_DIR:-$PWD}/build/dptrain}
DPTRAIN_SRUN_ARGS=${DPTRAIN_SRUN_ARGS:---mpi=pmix --cpu-bind=none --kill-on-bad-exit=1}
DPTRAIN_EXIT_PREEMPTED=75
_dp_step_pid=""
_dp_signalled=0

_dp_forward() {
  _dp_signalled=1
  echo "dptrain-slurm: $(date -u +%FT%TZ) $1 received; forwarding to the job step (checkpoint, then requeue)"
  if [ -n "$_dp_step_pid" ]; then kill -"$1" "$_dp_step_pid" 2>/dev/null || true; fi
}
trap '_dp_forward USR1' USR1
trap '_dp_forward TERM' TERM

# dp_srun ARGS...: one job step that a preemption signal reaches; returns its exit code.
dp_srun() {
  # shellcheck disable=SC2086
  srun $DPTRAIN_SRUN_ARGS "$@" &
  _dp_step_pid=$!
  local rc=0
  while :; do
    wait "$_dp_step_pid" && rc=0 || rc=$?
    # `wait` returns > 128 when a trapped signal interrupted it: keep waiting.
    if kill -0 "$_dp_step_pid" 2>/dev/null; then continue; fi
    break
  done
  _dp_step_pid=""
  return "$rc"
}

# dp_train_or_requeue OUT ARGS...: a training step with --resume auto. When it
# was preempted, requeues this job and exits the batch script; when it failed,
# exits with its code; returns 0 when the run completed.
dp_train_or_requeue() {
  local out=$1
  shift
  local rc=0
  dp_srun "$DPTRAIN" train --out "$out" --resume auto "$@" || rc=$?
  local status
  status=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status",""))' "$out/results.json" 2>/dev/null || echo "")
  if [ "$rc" = "$DPTRAIN_EXIT_PREEMPTED" ] || [ "$status" = preempted ]; then
    echo "dptrain-slurm: preempted (exit $rc, status '$status'); requeueing job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0})"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
  fi
  if [ "$rc" != 0 ]; then
    echo "dptrain-slurm: training failed with exit code $rc (results.json status '$status')" >&2
    exit "$rc"
  fi
  if [ "$_dp_signalled" = 1 ]; then
    echo "dptrain-slurm: the run finished before the signal took effect"
  fi
  return 0
}
