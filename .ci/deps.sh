#!/usr/bin/env bash
# Installs the Debian packages dptrain needs to build, test and run its demo.
# Idempotent: only installs what is missing. The OpenCL packages are there because
# Debian's dnnl-config.cmake (oneDNN built with an OpenCL GPU runtime) requires them.
# debootstrap makes the Debian 13 chroot of the GPU bundle's closure test (tests/bundle).
set -euo pipefail
PKGS="cmake build-essential pkg-config libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools
libturbojpeg0-dev libjpeg-dev libhwloc-dev hwloc libopenblas-dev libdnnl-dev libcmocka-dev
ocl-icd-opencl-dev opencl-c-headers zlib1g-dev libcurl4-openssl-dev
python3 python3-venv python3-torch python3-torchvision python3-numpy python3-h5py python3-pil
dataset-fashion-mnist debootstrap
slurm-wlm slurm-wlm-basic-plugins munge"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "deps: installing:$missing"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
else
  echo "deps: all packages present"
fi
