#!/usr/bin/env bash
# Builds a Release dptrain for sm_90 and packs it, with everything it loads
# except glibc and the CUDA libraries, into one archive for a GPU machine that
# has no package manager and no network (issue 15; see bench/gpu/README.md).
#
#   bench/gpu/bundle.sh [--build-dir DIR] [--out FILE] [--arch 90] [--no-build]
#
# Default build dir: <repo>/build-bundle; default archive:
# <build-dir>/dptrain-gpu-bundle.tar.xz. The archive must stay <= 48 MiB.
#
# What goes in (top directory dptrain-gpu/):
#   bin/      dptrain, bench_train, the GPU test binaries (every ctest with the
#             label gpu, and the unit tests of tests/gpu), mpirun/orterun, orted,
#             ompi_info
#   lib/      the shared-library closure of all of them (Open MPI, PMIx, HDF5,
#             TurboJPEG, hwloc, oneDNN, libstdc++, libgomp, ...), minus glibc and CUDA
#   lib/openmpi3, lib/pmix   Open MPI / PMIx MCA plugins (the UCX, OFI, PSM and
#             verbs ones are left out: the bundle runs on one node over shared memory/TCP)
#   share/openmpi, share/pmix   help files; etc/  MCA parameter files
#   glibc/    this machine's glibc and loader, used only when the GPU machine's
#             glibc is older than the bundle needs (dp-env.sh decides)
#   dp, dp-env.sh   the launcher (finds the CUDA libraries in PyTorch's nvidia-* wheels)
#   run_all.sh, torch_bench.py, tests.tsv, hardware.tsv, MANIFEST, README.md
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build-bundle
OUTF=""
ARCH=90
DO_BUILD=1
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) BUILD=$2; shift 2 ;;
    --out) OUTF=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    -h|--help) sed -n 2,25p "$0"; exit 0 ;;
    *) echo "bundle.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
OUTF=${OUTF:-$BUILD/dptrain-gpu-bundle.tar.xz}
LIMIT=$((48 * 1024 * 1024))
say() { echo "bundle: $*" >&2; }
die() { echo "bundle: ERROR: $*" >&2; exit 1; }

# ---- 1. build ---------------------------------------------------------------
if [ "$DO_BUILD" = 1 ]; then
  NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  [ -x "$NVCC" ] || die "no CUDA toolkit (nvcc) here: the bundle is a CUDA build"
  LAUNCH=()
  if command -v ccache >/dev/null; then
    LAUNCH=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
            -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  fi
  say "configuring $BUILD (Release, CUDA, sm_$ARCH)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_CUDA=ON -DDPTRAIN_WERROR=ON \
    -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="$ARCH" "${LAUNCH[@]}" >"$BUILD/bundle-configure.log" 2>&1 \
    || { tail -30 "$BUILD/bundle-configure.log" >&2; die "cmake configure failed (log: $BUILD/bundle-configure.log)"; }
fi
[ -f "$BUILD/CTestTestfile.cmake" ] || die "$BUILD is not a configured build directory"
grep -q '^DPTRAIN_CUDA:STRING=ON' "$BUILD/CMakeCache.txt" || die "$BUILD is not a CUDA build (DPTRAIN_CUDA=ON)"

# The tests that travel: every test labelled gpu, and every test built from
# tests/gpu (the host-side CUDA unit tests). tests.tsv: name, executable,
# timeout (s), labels, arguments.
TESTS_TSV=$BUILD/bundle-tests.tsv
# ctest names a test's executable only once it exists, so the list is taken
# before the build (names: a dp_add_test target is named like its test, and
# its WORKING_DIRECTORY says where it was added) and again after it.
list_tests() {
  ctest --test-dir "$BUILD" --show-only=json-v1 2>/dev/null | python3 -c '
import json, os, sys
d = json.load(sys.stdin)
for t in d["tests"]:
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    labels = props.get("LABELS", [])
    cmd = t.get("command") or []
    wd = props.get("WORKING_DIRECTORY", "")
    if "gpu" not in labels and not wd.endswith("/tests/gpu") and not (cmd and "/tests/gpu/" in cmd[0]):
        continue
    if cmd and os.path.basename(cmd[0]) in ("mpiexec", "mpirun", "orterun"):
        continue   # multi-rank entries: run_all.sh launches them itself (mpirun ... ./dp TEST)
    exe = cmd[0] if cmd else os.path.join(wd, t["name"])
    args = cmd[1:]
    for a in args:
        if sys.argv[1] in a:
            sys.exit("test %s takes an argument inside the build dir (%s): it would not travel" % (t["name"], a))
    print("\t".join([t["name"], exe, str(int(props.get("TIMEOUT", 300))), ",".join(labels) or "-",
                     " ".join(args)]))
' "$BUILD" >"$TESTS_TSV" || die "could not list the GPU tests (ctest --show-only=json-v1)"
  [ -s "$TESTS_TSV" ] || die "no GPU tests found in $BUILD"
}
list_tests
TEST_TARGETS=$(awk -F'\t' '{n=$2; sub(".*/", "", n); print n}' "$TESTS_TSV" | sort -u | tr '\n' ' ')

if [ "$DO_BUILD" = 1 ]; then
  say "building dptrain bench_train $TEST_TARGETS"
  # shellcheck disable=SC2086
  nice -n 10 cmake --build "$BUILD" -j"${JOBS:-2}" --target dptrain bench_train $TEST_TARGETS \
    >"$BUILD/bundle-build.log" 2>&1 || { tail -40 "$BUILD/bundle-build.log" >&2; die "build failed (log: $BUILD/bundle-build.log)"; }
fi
list_tests   # now with the built executables
while IFS=$'\t' read -r name exe _; do [ -x "$exe" ] || die "test $name: $exe was not built"; done <"$TESTS_TSV"

# ---- 2. stage ----------------------------------------------------------------
STAGE=$BUILD/bundle-stage
B=$STAGE/dptrain-gpu
rm -rf "$STAGE"
mkdir -p "$B"/{bin,lib/openmpi3,lib/pmix,lib/hwloc,share/openmpi,share/pmix,share/dptrain,etc,glibc}

# glibc and the loader stay the machine's; CUDA comes from the PyTorch wheels.
is_glibc() {
  case $1 in
    ld-linux-x86-64.so.2|libc.so.6|libm.so.6|libmvec.so.1|libdl.so.2|libpthread.so.0|librt.so.1|\
    libresolv.so.2|libutil.so.1|libanl.so.1|libnss_*|libBrokenLocale.so.1|libc_malloc_debug.so.0|\
    libthread_db.so.1|linux-vdso.so.1) return 0 ;;
  esac
  return 1
}
is_cuda() {
  case $1 in
    libcuda.so*|libcudart.so*|libcublas.so*|libcublasLt.so*|libcudnn*.so*|libnccl.so*|libnvrtc*.so*|\
    libnvJitLink.so*|libcufft*.so*|libcurand.so*|libcusolver*.so*|libcusparse.so*|libnvidia-*.so*|\
    libnvToolsExt.so*|libcupti.so*) return 0 ;;
  esac
  return 1
}

declare -A SEEN=()
# Copies the non-glibc, non-CUDA shared-library closure of ELF files into lib/.
add_closure() {
  local f line name path
  for f in "$@"; do
    while IFS= read -r line; do
      case $line in
        *"=> not found"*)
          name=${line%% *}; name=${name//[[:space:]]/}
          is_cuda "$name" || die "$f needs $name, which is not installed here" ;;
        *"=>"*)
          read -r name _ path _ <<<"$line"
          is_glibc "$name" && continue
          is_cuda "$name" && continue
          [ -n "${SEEN[$name]:-}" ] && continue
          SEEN[$name]=1
          cp -L "$path" "$B/lib/$name"
          chmod u+w "$B/lib/$name" ;;
      esac
    done < <(ldd "$f" 2>&1)
  done
}

# Our binaries (debug info stripped: symbols stay for backtraces).
cp "$BUILD/dptrain" "$B/bin/"
cp "$BUILD/bench/bench_train" "$B/bin/"
while IFS=$'\t' read -r name exe _; do cp "$exe" "$B/bin/"; done <"$TESTS_TSV"
for f in "$B"/bin/*; do strip --strip-debug "$f"; done
# tests.tsv with bundle-relative executables.
awk -F'\t' 'BEGIN{OFS="\t"} {n=$2; sub(".*/", "", n); $2=n; print}' "$TESTS_TSV" >"$B/tests.tsv"

# Open MPI: launcher, daemon, info tool, plugins, help and parameter files.
ompi_path() { ompi_info --path "$1" --parsable | awk -F: '{print $3}'; }
OMPI_PKGLIB=$(ompi_path pkglibdir)
OMPI_PKGDATA=$(ompi_path pkgdatadir)
OMPI_BIN=$(ompi_path bindir)
[ -d "$OMPI_PKGLIB" ] || die "Open MPI plugin dir not found (ompi_info --path pkglibdir)"
cp -L "$OMPI_BIN/orterun" "$OMPI_BIN/orted" "$(command -v ompi_info)" "$B/bin/"
ln -s orterun "$B/bin/mpirun"
ln -s orterun "$B/bin/mpiexec"
skipped=""
for so in "$OMPI_PKGLIB"/*.so; do
  n=$(basename "$so")
  case $n in
    # Interconnect plugins (UCX, libfabric, PSM, verbs): multi-node fabrics this
    # one-node bundle does not use; their libraries would double its size.
    *ucx*|*ofi*|*psm*|*openib*|*verbs*|*portals*) skipped="$skipped $n"; continue ;;
  esac
  cp -L "$so" "$B/lib/openmpi3/"
done
say "Open MPI plugins left out:$skipped"
cp -rL "$OMPI_PKGDATA"/. "$B/share/openmpi/"
# PMIx (the server inside mpirun): plugins and help files next to libpmix.
PMIX_LIB=$(readlink -f "$(ldd "$OMPI_PKGLIB/mca_pmix_ext3x.so" | awk '/libpmix/{print $3}')")
PMIX_ROOT=$(dirname "$(dirname "$PMIX_LIB")")
[ -d "$PMIX_ROOT/lib/pmix" ] && cp -L "$PMIX_ROOT"/lib/pmix/*.so "$B/lib/pmix/"
[ -d "$PMIX_ROOT/share/pmix" ] && cp -rL "$PMIX_ROOT"/share/pmix/. "$B/share/pmix/"

# Parameter files: no absolute paths (the relocated paths are set in dp-env.sh).
cat >"$B/etc/openmpi-mca-params.conf" <<'EOF'
# dptrain GPU bundle: one node, shared memory (vader) and TCP; no fabric plugins packed.
btl = self,vader,tcp
pml = ob1
btl_base_warn_component_unused = 0
# dptrain binds its own ranks and loader threads with hwloc (near the GPU);
# mpirun's default bind-to-core for np <= 2 would shrink that to one core.
hwloc_base_binding_policy = none
rmaps_base_oversubscribe = 1
# Launch on this node only: the machine may have no ssh (plm rsh would need it).
plm = isolated
# A singleton (dptrain started without mpirun) needs no orted daemon.
ess_singleton_isolated = 1
EOF
: >"$B/etc/openmpi-default-hostfile"
echo "# dptrain GPU bundle: paths come from dp-env.sh" >"$B/etc/pmix-mca-params.conf"

add_closure "$B"/bin/* "$B"/lib/openmpi3/*.so "$B"/lib/pmix/*.so
# Libraries pulled in by the libraries themselves are in ldd's output already
# (ldd lists the whole closure), but copy the closure of lib/ once more to be sure.
add_closure "$B"/lib/*.so*

# glibc fallback (only used on machines whose glibc is older than needed).
LDCACHE=$(ldconfig -p)
for n in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libmvec.so.1 libdl.so.2 libpthread.so.0 librt.so.1 \
         libresolv.so.2 libutil.so.1 libanl.so.1 libnss_files.so.2 libnss_dns.so.2; do
  p=$(awk -v n="$n" '$1 == n && /x86-64/ {print $NF; exit}' <<<"$LDCACHE")
  [ -n "$p" ] && cp -L "$p" "$B/glibc/$n"
done
[ -f "$B/glibc/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$B/glibc/"

# Scripts and data.
cp "$ROOT/bench/gpu/dp" "$ROOT/bench/gpu/dp-env.sh" "$ROOT/bench/gpu/run_all.sh" "$ROOT/bench/gpu/torch_bench.py" "$B/"
cp "$ROOT/bench/gpu/README.md" "$B/README.md"
cp "$ROOT/bench/hardware.tsv" "$B/share/dptrain/hardware.tsv"
chmod +x "$B/dp" "$B/run_all.sh"

# ---- 3. manifest: what the bundle needs from the machine ----------------------
GLIBC_NEED=$(for f in "$B"/bin/* "$B"/lib/*.so* "$B"/lib/openmpi3/*.so "$B"/lib/pmix/*.so; do
  [ -L "$f" ] && continue
  objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' || true; done | sed 's/GLIBC_//' | sort -uV | tail -1)
CUDA_NEED=$(for f in "$B"/bin/*; do [ -L "$f" ] && continue; readelf -d "$f" 2>/dev/null | \
  sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'; done | while read -r n; do if is_cuda "$n"; then echo "$n"; fi; done | sort -u | tr '\n' ' ')
{
  echo "bundle_format=1"
  echo "git_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo -dirty)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "cuda_arch=sm_$ARCH"
  echo "cuda_toolkit=$("${NVCC:-/usr/local/cuda/bin/nvcc}" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  echo "glibc_required=$GLIBC_NEED"
  echo "glibc_bundled=$(getconf GNU_LIBC_VERSION | awk '{print $2}')"
  echo "cuda_libs_needed=$CUDA_NEED"
  echo "open_mpi=$(ompi_info --version 2>/dev/null | sed -n '1s/^Open MPI v//p')"
} >"$B/MANIFEST"

# ---- 4. pack -----------------------------------------------------------------
say "packing $(du -sh "$B" | cut -f1) into $OUTF"
# BUNDLE_XZ_LEVEL (default 9): the closure test packs at a faster level; a
# bigger archive that fits the limit means the -9 one does too.
tar -C "$STAGE" --owner=0 --group=0 --numeric-owner -cf - dptrain-gpu | xz -T0 "-${BUNDLE_XZ_LEVEL:-9}" -c >"$OUTF.tmp"
mv "$OUTF.tmp" "$OUTF"
SIZE=$(stat -c %s "$OUTF")
say "archive $(basename "$OUTF"): $((SIZE / 1024)) KiB (limit $((LIMIT / 1024)) KiB); glibc >= $GLIBC_NEED or the bundled one"
[ "$SIZE" -le "$LIMIT" ] || die "archive is $SIZE bytes, over the 48 MiB limit"
echo "$OUTF"
