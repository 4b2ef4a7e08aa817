#!/usr/bin/env bash
# Closure check of the GPU bundle (ctest label `bundle`): builds the bundle
# (bundle.sh, incremental), unpacks it, and runs bundle_smoke.sh (launcher
# probe, ldd of every ELF file, info / data synth / 5 training steps on the CPU
# as a singleton and under mpirun -np 1 and 2, the glibc fallback)
#   1. here under `env -i`, CUDA libraries laid out like PyTorch's wheels;
#   2. in a Debian 13 (trixie) minbase chroot that has none of the project's
#      packages (made once with debootstrap, cached in the build dir), inside a
#      private mount namespace so nothing stays mounted.
#
#   bundle_check.sh [--build-dir DIR] [--archive FILE] [--no-build] [--no-chroot]
# Exit 0: all checks passed; 1: a check failed; 77: skipped (no CUDA toolkit to
# build the bundle with). The chroot stage needs root, unshare and debootstrap
# (or a cached chroot); without them it is reported as not run, and only the
# env -i stage counts.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$ROOT/build-bundle
ARCHIVE=""
DO_BUILD=1
CHROOT=auto
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD=$2; shift 2 ;;
    --archive) ARCHIVE=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --no-chroot) CHROOT=no; shift ;;
    *) echo "bundle_check: unknown option $1" >&2; exit 2 ;;
  esac
done
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 )) s"; }
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)

CUDA_LIB=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do
  [ -e "$d/libcudnn.so.9" ] && { CUDA_LIB=$(readlink -f "$d"); break; }
done
if [ "$DO_BUILD" = 1 ]; then
  if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "bundle_check: SKIP: no CUDA toolkit (nvcc) to build the bundle with"; exit 77
  fi
  "$HERE/bundle.sh" --build-dir "$BUILD" >"$BUILD/bundle-check-build.log" 2>&1 \
    || { tail -30 "$BUILD/bundle-check-build.log"; echo "bundle_check: FAIL: bundle.sh"; exit 1; }
  tail -2 "$BUILD/bundle-check-build.log" | head -1
  echo "bundle_check: bundle built ($(elapsed))"
fi
ARCHIVE=${ARCHIVE:-$BUILD/dptrain-gpu-bundle.tar.xz}
[ -f "$ARCHIVE" ] || { echo "bundle_check: FAIL: no archive $ARCHIVE"; exit 1; }
[ -n "$CUDA_LIB" ] || { echo "bundle_check: SKIP: no CUDA libraries (/usr/local/cuda/lib64) to stand in for the wheels"; exit 77; }

W=$BUILD/bundle-check
rm -rf "$W"
mkdir -p "$W/unpack"
tar -C "$W/unpack" -xJf "$ARCHIVE"
B=$W/unpack/dptrain-gpu
echo "bundle_check: unpacked $(du -sh "$B" | cut -f1) ($(elapsed))"

# ---- 1. this machine, empty environment -------------------------------------
# The CUDA libraries sit where PyTorch's cu13 wheels put them.
SITE=$W/venv/lib/python3.12/site-packages
for w in cu13 cudnn nccl; do mkdir -p "$SITE/nvidia/$w"; ln -s "$CUDA_LIB" "$SITE/nvidia/$w/lib"; done
rc_host=0
env -i HOME="$W" PATH=/usr/bin:/bin VIRTUAL_ENV="$W/venv" DP_PYTHON=none \
  bash "$HERE/bundle_smoke.sh" "$B" "$W/host" "$SITE/nvidia" || rc_host=1
echo "bundle_check: env -i stage: $([ $rc_host = 0 ] && echo pass || echo FAIL) ($(elapsed))"

# ---- 2. Debian 13 chroot -------------------------------------------------------
rc_chroot=0
chroot_state="not run"
CH=$BUILD/chroot-trixie
if [ "$CHROOT" != no ]; then
  why=""
  [ "$(id -u)" = 0 ] || why="needs root"
  command -v unshare >/dev/null || why="${why:+$why, }no unshare"
  if [ -z "$why" ] && [ ! -f "$CH/.dptrain-ready" ]; then
    if command -v debootstrap >/dev/null; then
      echo "bundle_check: making the trixie chroot in $CH (once; debootstrap --variant=minbase)"
      rm -rf "$CH.tmp"
      if debootstrap --variant=minbase trixie "$CH.tmp" http://deb.debian.org/debian >"$BUILD/debootstrap.log" 2>&1; then
        rm -rf "$CH"
        mv "$CH.tmp" "$CH"
        touch "$CH/.dptrain-ready"
      else
        why="debootstrap failed (log: $BUILD/debootstrap.log)"
      fi
    else
      why="debootstrap is not installed (.ci/deps.sh installs it)"
    fi
  fi
  if [ -z "$why" ]; then
    IN=$W/chroot-io
    mkdir -p "$IN"
    cp "$HERE/bundle_smoke.sh" "$IN/"
    # Everything is mounted in a private mount namespace: it all goes away with it.
    unshare --mount --propagation private bash -euc '
      CH=$1; B=$2; IN=$3; CUDA_LIB=$4
      mount -t proc proc "$CH/proc"
      mount --rbind /sys "$CH/sys"
      mount --rbind /dev "$CH/dev"
      mount -t tmpfs tmpfs "$CH/dev/shm"
      mount -t tmpfs tmpfs "$CH/tmp"
      mkdir -p "$CH/opt/dptrain-gpu" "$CH/work"
      mount --bind "$B" "$CH/opt/dptrain-gpu"
      mount -o remount,ro,bind "$CH/opt/dptrain-gpu"
      mount --bind "$IN" "$CH/work"
      mount -t tmpfs tmpfs "$CH/usr/local/lib"
      for w in cu13 cudnn nccl; do
        d=$CH/usr/local/lib/python3.12/dist-packages/nvidia/$w/lib
        mkdir -p "$d"
        mount --bind "$CUDA_LIB" "$d"
      done
      exec chroot "$CH" /usr/bin/env -i HOME=/root PATH=/usr/bin:/bin \
        /bin/bash /work/bundle_smoke.sh /opt/dptrain-gpu /work/run /usr/local/lib/python3.12/dist-packages/nvidia
    ' _ "$CH" "$B" "$IN" "$CUDA_LIB" || rc_chroot=1
    chroot_state=$([ $rc_chroot = 0 ] && echo pass || echo FAIL)
    chroot_state="$chroot_state (Debian $(cat "$CH/etc/debian_version"), glibc $(ls "$CH"/usr/lib/x86_64-linux-gnu/libc.so.6 >/dev/null && chroot "$CH" /usr/bin/getconf GNU_LIBC_VERSION | awk '{print $2}'))"
  else
    chroot_state="not run: $why"
  fi
fi
echo "bundle_check: chroot stage: $chroot_state ($(elapsed))"
echo "bundle_check: archive $(basename "$ARCHIVE") $(( $(stat -c %s "$ARCHIVE") / 1024 )) KiB"
[ $rc_host = 0 ] && [ $rc_chroot = 0 ]
