#!/bin/bash
# The bundle's CPU path in a clean environment (called by bundle_check.sh on
# this machine under env -i, and inside a Debian chroot). Needs only bash,
# coreutils, grep, sed, awk and ldd.
#   bundle_smoke.sh BUNDLE_DIR WORK_DIR CUDA_PREFIX
# CUDA_PREFIX: where the CUDA libraries are laid out like PyTorch's wheels;
# every CUDA library must resolve under it, everything else in the bundle
# (or glibc). Exit 0 when all checks pass.
set -uo pipefail
B=$1
W=$2
CUDA_PREFIX=$3
fails=0
mkdir -p "$W"
cd "$W" || exit 1
step() {   # name command...: runs, logs to $W/name.log, reports seconds
  local name=$1 t0 rc
  shift
  t0=$EPOCHREALTIME
  "$@" >"$W/$name.log" 2>&1
  rc=$?
  printf 'smoke: %-20s rc=%-3d %6s s\n' "$name" "$rc" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')"
  if [ "$rc" != 0 ]; then
    echo "---- $name.log (tail) ----"
    tail -25 "$W/$name.log"
    fails=$((fails + 1))
  fi
  return $rc
}
expect() {   # file pattern what
  if ! grep -q -- "$2" "$1" 2>/dev/null; then
    echo "smoke: FAIL: $3 ($1 has no '$2')"
    fails=$((fails + 1))
  fi
}

# 1. The launcher finds the CUDA libraries in the wheel layout.
step probe "$B/dp" --probe
for n in libcudart.so.13 libcublasLt.so.13 libcudnn.so.9 libnccl.so.2; do
  expect "$W/probe.log" "found $n -> $CUDA_PREFIX" "$n found under the wheel directory"
done

# 2. Every ELF file of the bundle resolves inside the bundle, glibc or CUDA.
LDP=$("$B/dp" --env | sed -n "s/^export LD_LIBRARY_PATH=//p")
ldd_check() {
  local f line name path bad=0
  for f in "$B"/bin/* "$B"/lib/*.so* "$B"/lib/openmpi3/*.so "$B"/lib/pmix/*.so; do
    [ -L "$f" ] && continue
    head -c 4 "$f" | grep -q ELF || continue
    while IFS= read -r line; do
      case $line in
        *"not found"*) echo "UNRESOLVED $f: $line"; bad=1 ;;
        *"=>"*)
          read -r name _ path _ <<<"$line"
          case $name in
            ld-linux-x86-64.so.2|libc.so.6|libm.so.6|libmvec.so.1|libdl.so.2|libpthread.so.0|librt.so.1|\
            libresolv.so.2|libutil.so.1|libanl.so.1|libnss_*) continue ;;
            libcudart.so*|libcublas*.so*|libcudnn*.so*|libnccl.so*|libnvrtc*.so*|libnvJitLink.so*)
              case $path in "$CUDA_PREFIX"/*) continue ;; esac
              echo "CUDA OUTSIDE THE WHEELS $f: $line"; bad=1 ;;
            *)
              case $path in "$B"/*) continue ;; esac
              echo "OUTSIDE THE BUNDLE $f: $line"; bad=1 ;;
          esac ;;
      esac
    done < <(env -i LD_LIBRARY_PATH="$LDP" ldd "$f" 2>&1)
  done
  return $bad
}
step ldd ldd_check

# 3. The CPU path: info, a tiny synthetic set, 5 training steps (a singleton,
#    then under mpirun with 1 and 2 ranks).
DP="$B/dp"
step info "$DP" dptrain info --model resnet50 --classes 5 --image-size 64
expect "$W/info.log" "parameters" "info prints the parameter count"
step synth "$DP" dptrain data synth --preset shopsight5 --count 96 --out "$W/data" --size-min 40 --size-max 64 \
  --corrupt-frac 0 --threads 2
TRAIN=(dptrain train --model cnn --image-size 32 --steps 5 --batch 8 --train "$W/data/train-*.h5"
       --val "$W/data/val-*.h5" --device cpu --threads 1 --loader-threads 1 --log-every 1)
step train_singleton "$DP" "${TRAIN[@]}" --out "$W/r_single"
expect "$W/r_single/results.json" '"world_size": 1' "singleton results.json"
step train_mpirun1 "$DP" mpirun -np 1 "$DP" "${TRAIN[@]}" --out "$W/r_mpi1"
expect "$W/r_mpi1/results.json" '"world_size": 1' "mpirun -np 1 results.json"
step train_mpirun2 "$DP" mpirun -np 2 "$DP" "${TRAIN[@]}" --out "$W/r_mpi2"
expect "$W/r_mpi2/results.json" '"world_size": 2' "mpirun -np 2 results.json"
# The host-side CUDA unit tests run without a GPU.
step test_scaler "$DP" test_scaler
step test_gemm_args "$DP" test_gemm_args
# test_cuda_device checks the probe message and that every op table is linked.
step test_cuda_device "$DP" test_cuda_device

# 4. The glibc fallback (what a machine with an older glibc gets).
step glibc_info env DP_BUNDLE_GLIBC=1 "$DP" dptrain info --model cnn --image-size 32
step glibc_train env DP_BUNDLE_GLIBC=1 "$DP" "${TRAIN[@]}" --steps 2 --out "$W/r_glibc"
expect "$W/glibc_info.log" "using the bundled glibc" "DP_BUNDLE_GLIBC=1 uses the bundled loader"

echo "smoke: $fails failure(s)"
[ "$fails" = 0 ]
