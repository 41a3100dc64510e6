#!/usr/bin/env bash
# Makes a relocatable package of inferd binaries: build on a host that has the
# build dependencies (scripts/setup.sh), copy the folder to a machine that has
# only a GPU driver and CUDA, and run there.
#
#   scripts/package.sh [-o DIR] FILE...
#
# FILE is an executable, a shared object (a backend or plugin), another file,
# or a folder:
#   executables         -> DIR/bin   (scripts too, so DIR/bin holds the suite)
#   *.so, *.so.N        -> DIR/lib
#   folders, other files -> DIR/data (a model repository, a config)
# For every ELF file, the shared libraries it loads (ldd) are copied to
# DIR/lib, except those the target machine brings itself: glibc, libstdc++,
# libgcc_s, and the CUDA, NCCL and driver libraries (libcuda, libcudart,
# libcublas*, libnccl, libnvidia-ml, libnvrtc, ...). Copied ELF files lose
# their debug information (strip --strip-debug) to keep the package small.
#
# DIR defaults to .gpu in the repository root (ignored by git). A previous
# package there is replaced; a folder that is not a package is left alone.
# DIR/env.sh, sourced on the target machine, puts DIR/bin first on PATH and
# DIR/lib, then /usr/local/cuda/lib64, first on LD_LIBRARY_PATH, and exports
# GPU_BUNDLE=DIR, which scripts/gpu-suite.sh and scripts/gpu/*.sh read.
#
# Example:
#   scripts/package.sh build/bin/inferd build/bin/inferctl build/tests/gpu_tests \
#       scripts/gpu-suite.sh
#   rsync -a .gpu/ gpuhost:inferd-gpu/
#   ssh gpuhost 'source inferd-gpu/env.sh && bash inferd-gpu/bin/gpu-suite.sh'
set -euo pipefail

usage() {
  echo "usage: scripts/package.sh [-o DIR] FILE..." >&2
  exit 2
}

out=""
while getopts "o:h" opt; do
  case $opt in
    o) out=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -gt 0 ]] || usage

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${out:-$root/.gpu}
for f in "$@"; do
  [[ -e $f ]] || { echo "package.sh: $f: no such file or folder" >&2; exit 1; }
done

# Libraries the target machine provides: the C runtime (glibc and the dynamic
# loader), the C++ runtime, and everything that comes with the GPU driver,
# CUDA or NCCL (they must match the machine's driver, so never travel).
system_libs='^(linux-vdso|linux-gate|ld-linux[-a-z0-9_.]*|libc|libm|libmvec|libdl|libpthread|librt|libresolv|libutil|libanl|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*|libcufft|libcurand|libcusolver|libcusparse|libnvJitLink|libnvrtc[-a-z_]*|libnvToolsExt|libnccl|libnvidia-[a-z]*)\.so'

is_elf() { [[ -f $1 && "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" == "7f454c46" ]]; }

# Prints the resolved paths of the non-system libraries that $1 loads.
deps() {
  LD_LIBRARY_PATH="$(dirname "$1")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$1" 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// {print $3}' |
    while read -r lib; do
      basename "$lib" | grep -Eq "$system_libs" || echo "$lib"
    done
}

# Empty DIR only when it is a previous package (or empty): never a folder
# of other files given by mistake.
if [[ -d $out && -n "$(find "$out" -mindepth 1 -maxdepth 1 -print -quit)" && ! -f $out/env.sh ]]; then
  echo "package.sh: $out exists and is not a package (no env.sh); not emptying it" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/data"

elves=()
for f in "$@"; do
  if [[ -d $f ]]; then
    cp -r "$f" "$out/data/"
    continue
  fi
  name=$(basename "$f")
  case $name in
    *.so | *.so.*) dest=$out/lib/$name ;;
    *) if [[ -x $f ]]; then dest=$out/bin/$name; else dest=$out/data/$name; fi ;;
  esac
  cp -L "$f" "$dest"
  if is_elf "$f"; then
    elves+=("$dest")
    while read -r lib; do
      target=$out/lib/$(basename "$lib")
      if [[ ! -e $target ]]; then
        cp -L "$lib" "$target"
        elves+=("$target")
      fi
    done < <(deps "$f")
  fi
done

for e in ${elves[@]+"${elves[@]}"}; do
  chmod u+w "$e"
  strip --strip-debug "$e" 2>/dev/null || echo "package.sh: could not strip $e (kept as is)" >&2
done

cat >"$out/env.sh" <<'ENV'
# Source this on the target machine: the package's binaries and libraries
# come first, then the machine's CUDA.
_inferd_pkg=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="$_inferd_pkg/bin:$PATH"
export LD_LIBRARY_PATH="$_inferd_pkg/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GPU_BUNDLE="$_inferd_pkg"
# NVLink SHARP (multicast) stays off unless the caller chose otherwise: hosts
# whose GPUs are shared between users often do not allow it.
export NCCL_NVLS_ENABLE="${NCCL_NVLS_ENABLE:-0}"
unset _inferd_pkg
ENV

count() { find "$1" -mindepth 1 -maxdepth 1 | wc -l; }
echo "package.sh: $out ($(du -sh "$out" | cut -f1)): $(count "$out/bin") in bin," \
  "$(count "$out/lib") in lib, $(count "$out/data") in data"
echo "on the target machine: source $out/env.sh"
