# Environment of the dptrain GPU bundle. Source it (bash) or let ./dp do it:
#   . ./dp-env.sh          sets PATH, LD_LIBRARY_PATH, Open MPI / PMIx paths
#   ./dp --probe           prints what it found and exits (3 if something is missing)
#
# CUDA is not in the bundle. The libraries are looked up, in this order, in
#   $DP_CUDA_LIB_PATH (colon list), the nvidia-* wheels of python3 (nvidia.__path__:
#   nvidia/cu13/lib, nvidia/cudnn/lib, nvidia/nccl/lib, ...), torch/lib, every
#   site-packages/dist-packages directory found by globbing, /usr/local/cuda/lib64,
#   and the loader cache (ldconfig -p).
# Needed: the libraries named in MANIFEST (cuda_libs_needed). Optional:
#   libnvrtc.so.13 (cuDNN's runtime-compiled engines) and the driver's
#   libcuda.so.1 (needed for any GPU work; CPU-only commands run without it).
# glibc: when the machine's is older than MANIFEST's glibc_required, ./dp runs
#   the programs through the bundled loader (glibc/); DP_BUNDLE_GLIBC=1 forces
#   that, =0 forbids it.
# DP_ENV_QUIET=1 silences the report (child processes inherit DP_BUNDLE_READY).

dp__bundle_dir() { (cd "$(dirname "${BASH_SOURCE[0]}")" && pwd); }

dp__manifest() { sed -n "s/^$1=//p" "$DP_BUNDLE/MANIFEST" 2>/dev/null; }

dp__say() { [ "${DP_ENV_QUIET:-0}" = 1 ] || echo "dp-env: $*" >&2; }

# Version compare: 0 when $1 >= $2 (dotted numbers).
dp__ver_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$2" ]; }

# Candidate directories for the CUDA libraries, one per line, best first.
dp__cuda_dirs() {
  local IFS=: d py sp
  for d in ${DP_CUDA_LIB_PATH:-}; do [ -n "$d" ] && echo "$d"; done
  unset IFS
  for py in ${DP_PYTHON:-python3 python}; do
    command -v "$py" >/dev/null 2>&1 || continue
    # nvidia is a namespace package: importing it loads nothing heavy.
    "$py" - <<'PY' 2>/dev/null
import importlib.util, os, site, sys
out = []
try:
    import nvidia
    for p in nvidia.__path__:
        for d in sorted(os.listdir(p)):
            out.append(os.path.join(p, d, "lib"))
except Exception:
    pass
spec = importlib.util.find_spec("torch")
if spec and spec.origin:
    out.append(os.path.join(os.path.dirname(spec.origin), "lib"))
try:
    sps = site.getsitepackages() + [site.getusersitepackages()]
except Exception:
    sps = []
for sp in sps:
    out.append(os.path.join(sp, "nvidia", "*", "lib"))
print("\n".join(out))
PY
    break
  done
  for sp in /usr/local/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages \
            /usr/lib/python3*/site-packages /usr/lib/python3/dist-packages \
            "${VIRTUAL_ENV:-/nonexistent}"/lib/python3*/site-packages \
            "${CONDA_PREFIX:-/opt/conda}"/lib/python3*/site-packages \
            "$HOME"/.local/lib/python3*/site-packages /opt/*/lib/python3*/site-packages; do
    [ -d "$sp/nvidia" ] && for d in "$sp"/nvidia/*/lib; do echo "$d"; done
    [ -d "$sp/torch/lib" ] && echo "$sp/torch/lib"
  done
  echo /usr/local/cuda/lib64
  echo /usr/local/cuda/lib
}

# Directory holding $1 among the candidates (globs expanded), or the loader cache.
dp__find_lib() {
  local name=$1 d g
  while IFS= read -r d; do
    for g in $d; do   # expands the site-packages/nvidia/*/lib globs
      [ -e "$g/$name" ] && { echo "$g"; return 0; }
    done
  done <<<"$DP__CANDIDATES"
  d=$(awk -v n="$name" '$1 == n && /x86-64/ {print $NF; exit}' <<<"$DP__LDCACHE")
  [ -n "$d" ] && { dirname "$d"; return 0; }
  return 1
}

dp_env_setup() {
  DP_BUNDLE=$(dp__bundle_dir)
  export DP_BUNDLE
  local status=0
  if [ "${DP_BUNDLE_READY:-}" = "$DP_BUNDLE" ]; then return 0; fi

  # -- CUDA libraries -----------------------------------------------------------
  DP__CANDIDATES=$(dp__cuda_dirs)
  DP__LDCACHE=$(ldconfig -p 2>/dev/null)
  local need opt cuda_ld="" n d missing="" drv=""
  need=$(dp__manifest cuda_libs_needed)
  opt="libnvrtc.so.13"
  DP_CUDA_FOUND=""
  for n in $need; do
    if d=$(dp__find_lib "$n"); then
      DP_CUDA_FOUND="$DP_CUDA_FOUND $n=$d/$n"
      case ":$cuda_ld:" in *":$d:"*) ;; *) cuda_ld="$cuda_ld${cuda_ld:+:}$d" ;; esac
    else
      missing="$missing $n"
    fi
  done
  for n in $opt; do
    if d=$(dp__find_lib "$n"); then
      DP_CUDA_FOUND="$DP_CUDA_FOUND $n=$d/$n"
      case ":$cuda_ld:" in *":$d:"*) ;; *) cuda_ld="$cuda_ld${cuda_ld:+:}$d" ;; esac
    else
      dp__say "optional $n not found (cuDNN runtime-compiled engines unavailable)"
    fi
  done
  # The driver library: from the loader cache, else a usual place (added to the path).
  drv=$(awk '$1 == "libcuda.so.1" && /x86-64/ {print $NF; exit}' <<<"$DP__LDCACHE")
  if [ -z "$drv" ]; then
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/lib/wsl/lib /usr/local/cuda/compat; do
      [ -e "$d/libcuda.so.1" ] && { drv=$d/libcuda.so.1; cuda_ld="$cuda_ld${cuda_ld:+:}$d"; break; }
    done
  fi
  export DP_CUDA_FOUND DP_CUDA_DRIVER="${drv:-}"

  # -- glibc ----------------------------------------------------------------------
  local host_glibc need_glibc
  host_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  need_glibc=$(dp__manifest glibc_required)
  DP_USE_GLIBC=0
  case ${DP_BUNDLE_GLIBC:-auto} in
    1) DP_USE_GLIBC=1 ;;
    0) ;;
    *) if [ -n "$host_glibc" ] && [ -n "$need_glibc" ] && ! dp__ver_ge "$host_glibc" "$need_glibc"; then
         DP_USE_GLIBC=1; fi ;;
  esac
  if [ "$DP_USE_GLIBC" = 0 ] && [ -n "$host_glibc" ] && [ -n "$need_glibc" ] && ! dp__ver_ge "$host_glibc" "$need_glibc"; then
    echo "dp-env: ERROR: glibc $host_glibc here, the bundle needs $need_glibc (DP_BUNDLE_GLIBC=0 forbids the bundled one)" >&2
    status=3
  fi
  export DP_USE_GLIBC DP_HOST_GLIBC="$host_glibc"

  # -- paths ----------------------------------------------------------------------
  export PATH="$DP_BUNDLE/bin:$PATH"
  export LD_LIBRARY_PATH="$DP_BUNDLE/lib${cuda_ld:+:$cuda_ld}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # Open MPI was built for /usr: every install path is redirected into the bundle.
  export OPAL_PREFIX="$DP_BUNDLE" OPAL_EXEC_PREFIX="$DP_BUNDLE" OPAL_BINDIR="$DP_BUNDLE/bin" \
    OPAL_SBINDIR="$DP_BUNDLE/bin" OPAL_LIBEXECDIR="$DP_BUNDLE/bin" OPAL_LIBDIR="$DP_BUNDLE/lib" \
    OPAL_PKGLIBDIR="$DP_BUNDLE/lib/openmpi3" OPAL_DATAROOTDIR="$DP_BUNDLE/share" OPAL_DATADIR="$DP_BUNDLE/share" \
    OPAL_PKGDATADIR="$DP_BUNDLE/share/openmpi" OPAL_SYSCONFDIR="$DP_BUNDLE/etc" \
    OPAL_INCLUDEDIR="$DP_BUNDLE/include" OPAL_PKGINCLUDEDIR="$DP_BUNDLE/include"
  export PMIX_PREFIX="$DP_BUNDLE" PMIX_EXEC_PREFIX="$DP_BUNDLE" PMIX_BINDIR="$DP_BUNDLE/bin" \
    PMIX_LIBDIR="$DP_BUNDLE/lib" PMIX_PKGLIBDIR="$DP_BUNDLE/lib/pmix" PMIX_DATAROOTDIR="$DP_BUNDLE/share" \
    PMIX_DATADIR="$DP_BUNDLE/share" PMIX_PKGDATADIR="$DP_BUNDLE/share/pmix" PMIX_SYSCONFDIR="$DP_BUNDLE/etc" \
    PMIX_MCA_mca_base_component_path="$DP_BUNDLE/lib/pmix"
  export OMPI_MCA_mca_base_component_path="$DP_BUNDLE/lib/openmpi3"
  export HWLOC_PLUGINS_PATH="$DP_BUNDLE/lib/hwloc"
  export DPTRAIN_HARDWARE_TABLE="${DPTRAIN_HARDWARE_TABLE:-$DP_BUNDLE/share/dptrain/hardware.tsv}"
  if [ "$(id -u)" = 0 ]; then
    # The lent GPU machines run as root; Open MPI refuses that unless told.
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi

  # -- report -----------------------------------------------------------------------
  dp__say "bundle $DP_BUNDLE ($(dp__manifest git_rev), $(dp__manifest cuda_arch), built $(dp__manifest built))"
  dp__say "glibc here ${host_glibc:-?}, needed ${need_glibc:-?}: $([ "$DP_USE_GLIBC" = 1 ] && echo "using the bundled glibc $(dp__manifest glibc_bundled)" || echo "using the machine's")"
  for n in $DP_CUDA_FOUND; do dp__say "found ${n%%=*} -> ${n#*=} ($(basename "$(readlink -f "${n#*=}")"))"; done
  if [ -n "$drv" ]; then dp__say "driver library $drv"
  else dp__say "WARNING: no libcuda.so.1 (NVIDIA driver) found: only CPU commands will work"; fi
  if [ -n "$missing" ]; then
    echo "dp-env: ERROR: CUDA libraries not found:$missing" >&2
    echo "dp-env:   searched DP_CUDA_LIB_PATH, python3's nvidia-* wheels (nvidia/*/lib), torch/lib," >&2
    echo "dp-env:   site-packages globs, /usr/local/cuda/lib64 and ldconfig -p." >&2
    echo "dp-env:   Set DP_CUDA_LIB_PATH=dir1:dir2 to the directories holding them." >&2
    status=3
  fi
  [ "$status" = 0 ] && export DP_BUNDLE_READY="$DP_BUNDLE"
  return $status
}
