#!/usr/bin/env bash
# Runs the GPU-side suite on the GPU machine from a bundle made by
#   ../shared/tools/gpu-bundle build/bin/inferd build/bin/inferctl build/tests/<tests...> scripts/gpu-suite.sh
# Usage there: source .gpu/env.sh && bash .gpu/data/gpu-suite.sh [STEP...]
# Steps default to all; logs go to $OUT (or ./gpu-out).
set -uo pipefail
out=${OUT:-./gpu-out}
mkdir -p "$out"
bin=${GPU_BUNDLE:?source .gpu/env.sh first}/bin
export INFERD_BIN_DIR=$bin INFERD_TEST_USE_GPU=1
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(info gpu_tests integration bench)
rc=0
run() {  # name, command...
  local name=$1; shift
  echo "=== $name: $*" | tee -a "$out/summary.txt"
  if "$@" >"$out/$name.log" 2>&1; then echo "--- $name: ok" | tee -a "$out/summary.txt"
  else local r=$?; rc=1; echo "--- $name: FAILED rc=$r" | tee -a "$out/summary.txt"; tail -30 "$out/$name.log"; fi
  grep -E '^\[  (PASSED|FAILED) |tests? (passed|failed)|ratio|^\{' "$out/$name.log" | tail -8 | tee -a "$out/summary.txt"
}
for s in "${steps[@]}"; do
  case $s in
    info) run info nvidia-smi ;;
    gpu_tests) for t in "$bin"/gpu_tests "$bin"/*gpu_test; do [[ -x $t ]] && run "$(basename "$t")" "$t"; done ;;
    integration) for t in "$bin"/*integration_test "$bin"/lifecycle_test; do [[ -x $t ]] && run "$(basename "$t")" "$t"; done ;;
    bench) for t in "$bin"/*_bench; do [[ -x $t ]] && run "$(basename "$t")" "$t" --gpu; done ;;
    *) echo "unknown step $s"; rc=2 ;;
  esac
done
exit $rc
