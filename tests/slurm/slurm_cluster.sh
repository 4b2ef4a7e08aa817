#!/usr/bin/env bash
# A private one-node Slurm cluster on localhost for the `slurm` tests:
# munged on its own socket and key, slurmctld and slurmd with their own
# ports, state and logs under DIR. Installs nothing (.ci/deps.sh installs
# slurm-wlm, munge and the pmix plugin); stops everything it started.
#
#   slurm_cluster.sh start DIR     prints "export SLURM_CONF=..." lines to eval
#   slurm_cluster.sh stop DIR
#
# Settings that work in a container: MpiDefault=pmix (Open MPI 4.1 from
# Debian speaks PMIx), ProctrackType=proctrack/linuxproc, TaskPlugin=task/none.
set -euo pipefail
cmd=${1:?start|stop}
D=$(mkdir -p "${2:?DIR}" && cd "$2" && pwd)

free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

stop() {
  for f in slurmd slurmctld munged; do
    if [ -f "$D/$f.pid" ]; then
      pid=$(cat "$D/$f.pid" 2>/dev/null || true)
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
      fi
      rm -f "$D/$f.pid"
    fi
  done
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

for b in munged slurmctld slurmd sbatch srun scontrol; do
  command -v "$b" >/dev/null || { echo "slurm_cluster: $b not found (run .ci/deps.sh)" >&2; exit 77; }
done
[ -f /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so ] || { echo "slurm_cluster: no mpi_pmix plugin" >&2; exit 77; }
stop
mkdir -p "$D/munge" "$D/state" "$D/slurmd" "$D/log"
chmod 700 "$D/munge"
# A private key: never touches the machine's munge setup.
dd if=/dev/urandom of="$D/munge/munge.key" bs=1 count=1024 status=none
chmod 400 "$D/munge/munge.key"
munged --force --socket="$D/munge/munge.sock" --key-file="$D/munge/munge.key" \
  --pid-file="$D/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge/seed" >/dev/null 2>&1 ||
  { echo "slurm_cluster: munged did not start (see $D/log/munged.log)" >&2; exit 1; }

HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
cat > "$D/slurm.conf" <<EOF
ClusterName=dptest
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A short credential lifetime: Slurm holds a requeued job for about this long (default 120 s).
AuthInfo=socket=$D/munge/munge.sock,cred_expire=10
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmdSpoolDir=$D/slurmd
StateSaveLocation=$D/state
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobRequeue=1
KillWait=30
MinJobAge=3600
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
export SLURM_CONF="$D/slurm.conf"
slurmctld -f "$SLURM_CONF" >/dev/null 2>&1 || { echo "slurm_cluster: slurmctld failed (see $D/log/slurmctld.log)" >&2; stop; exit 1; }
slurmd -f "$SLURM_CONF" >/dev/null 2>&1 || { echo "slurm_cluster: slurmd failed (see $D/log/slurmd.log)" >&2; stop; exit 1; }
for _ in $(seq 150); do
  if sinfo -h -o '%T' 2>/dev/null | grep -q -E '^idle'; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "slurm_cluster: the node did not become idle:" >&2
sinfo >&2 || true
tail -20 "$D/log/slurmctld.log" "$D/log/slurmd.log" >&2 || true
stop
exit 1
