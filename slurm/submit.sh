#!/usr/bin/env bash
# Submits one of the sbatch scripts with the site's settings taken from the
# environment, so no script hard-codes a time limit, partition or account
# (a limit above a partition's MaxTime keeps a job pending forever).
#
#   slurm/submit.sh slurm/weekly_retrain.sbatch [more sbatch arguments]
#
# Environment (all optional; unset means the partition's or the script's default):
#   DPTRAIN_TIME             --time (e.g. 08:00:00)
#   DPTRAIN_PARTITION        --partition
#   DPTRAIN_ACCOUNT          --account
#   DPTRAIN_QOS              --qos
#   DPTRAIN_NODES            --nodes
#   DPTRAIN_TASKS_PER_NODE   --ntasks-per-node (one rank per socket or per GPU)
#   DPTRAIN_NTASKS           --ntasks
#   DPTRAIN_GPUS_PER_NODE    --gpus-per-node (then pass --device cuda in the training options)
#   DPTRAIN_CPUS_PER_TASK    --cpus-per-task
#   DPTRAIN_SIGNAL_LEAD      seconds of warning before the limit (default 300: --signal=B:USR1@300)
#   DPTRAIN_EXCLUSIVE=1      --exclusive
# The scripts themselves read DATA, OUT, CONFIG, DPTRAIN_MODULES, ... (see each script).
set -euo pipefail
script=${1:?usage: submit.sh SCRIPT.sbatch [sbatch args]}
shift
args=(--requeue --open-mode=append "--signal=B:USR1@${DPTRAIN_SIGNAL_LEAD:-300}")
[ -n "${DPTRAIN_TIME:-}" ] && args+=("--time=$DPTRAIN_TIME")
[ -n "${DPTRAIN_PARTITION:-}" ] && args+=("--partition=$DPTRAIN_PARTITION")
[ -n "${DPTRAIN_ACCOUNT:-}" ] && args+=("--account=$DPTRAIN_ACCOUNT")
[ -n "${DPTRAIN_QOS:-}" ] && args+=("--qos=$DPTRAIN_QOS")
[ -n "${DPTRAIN_NODES:-}" ] && args+=("--nodes=$DPTRAIN_NODES")
[ -n "${DPTRAIN_TASKS_PER_NODE:-}" ] && args+=("--ntasks-per-node=$DPTRAIN_TASKS_PER_NODE")
[ -n "${DPTRAIN_NTASKS:-}" ] && args+=("--ntasks=$DPTRAIN_NTASKS")
[ -n "${DPTRAIN_GPUS_PER_NODE:-}" ] && args+=("--gpus-per-node=$DPTRAIN_GPUS_PER_NODE")
[ -n "${DPTRAIN_CPUS_PER_TASK:-}" ] && args+=("--cpus-per-task=$DPTRAIN_CPUS_PER_TASK")
[ "${DPTRAIN_EXCLUSIVE:-0}" = 1 ] && args+=(--exclusive)
exec sbatch "${args[@]}" "$@" "$script"
