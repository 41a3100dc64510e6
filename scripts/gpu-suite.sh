#!/usr/bin/env bash
# Runs the GPU-side suite on a GPU machine from a package made on a build
# host by (docs/DEVELOPMENT.md, "On a GPU machine")
#   scripts/package.sh build/bin/inferd build/bin/inferctl build/tests/TEST... scripts/gpu-suite.sh
# Usage there: source .gpu/env.sh && bash .gpu/bin/gpu-suite.sh [STEP...]
# Steps default to all; logs go to $OUT (or ./gpu-out).
set -uo pipefail
out=${OUT:-./gpu-out}
mkdir -p "$out"
bin=${GPU_BUNDLE:?source .gpu/env.sh first}/bin
export INFERD_BIN_DIR=$bin INFERD_TEST_USE_GPU=1
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(info gpu_tests integration bench torch mlp)
work=${TMPDIR:-/tmp}/inferd-gpu-work; mkdir -p "$work"
rc=0
run() {  # name, command...
  local name=$1; shift
  echo "=== $name: $*" | tee -a "$out/summary.txt"
  if "$@" >"$out/$name.log" 2>&1; then echo "--- $name: ok" | tee -a "$out/summary.txt"
  else local r=$?; rc=1; echo "--- $name: FAILED rc=$r" | tee -a "$out/summary.txt"; tail -30 "$out/$name.log"; fi
  grep -E '^\[  (PASSED|FAILED) |tests? (passed|failed)|ratio|^\{' "$out/$name.log" | tail -12 | tee -a "$out/summary.txt"
}
for s in "${steps[@]}"; do
  case $s in
    info) run info nvidia-smi ;;
    gpu_tests)
      if [[ -f $bin/torch_reference.py ]] && python3 "$bin/torch_reference.py" "$work/torchref" >"$out/torch_reference.log" 2>&1; then
        export INFERD_TORCH_REFERENCE_DIR=$work/torchref
      fi
      for t in "$bin"/gpu_tests "$bin"/*gpu_test; do [[ -x $t ]] && run "$(basename "$t")" "$t"; done ;;
    # The protocol, lifecycle and report suites, pointed at the GPUs. The engine suites
    # (memory, comm, scheduler, scaling) assume host devices of a set
    # capacity and count, and run in CI.
    integration) for t in kserve_integration_test lifecycle_test report_integration_test; do
        [[ -x $bin/$t ]] && run "$t" "$bin/$t"; done ;;
    bench)
      [[ -x $bin/modelinfer_bench ]] && run modelinfer_bench "$bin/modelinfer_bench" --gpu
      if [[ -x $bin/protocol_bench ]]; then
        run protocol_bench "$bin/protocol_bench" --gpu
        run protocol_bench_cudashm "$bin/protocol_bench" --only=cudashm
      fi
      if [[ -x $bin/memory_bench ]]; then
        run memory_bench "$bin/memory_bench"
        # As the daemon's pools start (memory_pool_size_mb: 512), latency-first
        # and with memory.release_segments_on_grow.
        run memory_bench_reserved "$bin/memory_bench" --initial_mb=512
        run memory_bench_tight "$bin/memory_bench" --initial_mb=512 --release_on_grow=1
      fi
      [[ -x $bin/comm_bench ]] && run comm_bench "$bin/comm_bench"
      [[ -x $bin/mlp_gpu_bench ]] && run mlp_gpu_bench "$bin/mlp_gpu_bench"
      [[ -x $bin/cuda_call_bench ]] && run cuda_call_bench "$bin/cuda_call_bench"
      [[ -x $bin/sched_bench ]] && run sched_bench "$bin/sched_bench" ;;
    torch) run torch_modelinfer_check python3 "$bin/torch_modelinfer_check.py" "$work" ;;
    mlp) run mlp_bench bash "$bin/mlp_bench.sh" "$work" fp16 64 6 ;;
    *) echo "unknown step $s"; rc=2 ;;
  esac
done
exit $rc
