#!/usr/bin/env bash
# The sanitizer step of CI (.ci/run, after the tests): builds the daemon, a
# subset of the unit and integration tests and the fuzz targets with clang's
# AddressSanitizer + UndefinedBehaviorSanitizer (the asan preset, build-asan/),
# runs the tests and gives every fuzz target a few seconds on its corpus.
# docs/DEVELOPMENT.md says which tests and why (CI's time budget).
#   scripts/sanitize.sh                 # CI: core tests, core fuzz targets 3 s each
#   scripts/sanitize.sh --full          # also the daemon, the hardening integration
#                                       # test and the server-side fuzz targets
#   FUZZ_SECONDS=0 scripts/sanitize.sh  # tests only
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
fuzz_seconds="${FUZZ_SECONDS:-3}"
jobs="${JOBS:-$(nproc)}"
full=0
[[ "${1:-}" == --full ]] && full=1

unit_tests=(
  # memory engine, pools, tensor store, staging (items 1, 5, 6 live here)
  caching_pool_test tensor_id_test tensor_store_test memory_engine_test staging_pool_test
  # BYTES and dtype codecs, request binding and execution
  dtype_test device_execution_test
  # scheduler: queues, batching, task graphs, retries (items 2, 3, 11)
  task_table_test scheduler_test scheduler_batching_test scheduler_tasks_test dynamic_batcher_test
  priority_queue_test
  placement_test timer_queue_test scheduler_options_test scheduler_preemption_test
  scheduler_group_test
  memory_tensor_access_test memory_batch_size_test batching_stage_test
  # threads handing work to each other: batch gathers, torch instance threads
  util_parallel_copy_test util_worker_thread_test util_in_flight_test
)
fuzz_targets=(fuzz_bytes_framing fuzz_config_yaml fuzz_model_config fuzz_safetensors
              fuzz_strict_json fuzz_batch_size)
integration_tests=()
daemon=()
if [[ $full == 1 ]]; then
  # These need the gRPC layer and generated protos: half of the build again.
  integration_tests=(hardening_integration_test)
  daemon=(inferd)
  fuzz_targets+=(fuzz_model_infer fuzz_tensor_codec fuzz_task_spec)
fi

cmake --preset asan >/dev/null
cmake --build build-asan -j"$jobs" --target "${daemon[@]}" "${unit_tests[@]}" \
  "${integration_tests[@]}" "${fuzz_targets[@]}"
echo "sanitize: built in $((SECONDS - start)) s"

# Any report fails the step: UBSan halts, ASan and LeakSanitizer exit non-zero.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=()
for t in "${unit_tests[@]}" "${integration_tests[@]}"; do
  t0=$SECONDS
  if ! build-asan/tests/"$t" --gtest_brief=1 >"build-asan/$t.log" 2>&1; then
    failed+=("$t")
    tail -60 "build-asan/$t.log"
  fi
  echo "sanitize: $t $(grep -Eo '[0-9]+ tests? from [0-9]+ test suites? ran' "build-asan/$t.log" | head -1) ($((SECONDS - t0)) s)"
done
if [[ "$fuzz_seconds" != 0 ]]; then
  FUZZ_BUILD=0 scripts/fuzz.sh "$fuzz_seconds" "${fuzz_targets[@]}" || failed+=(fuzz)
fi
echo "sanitize: $((SECONDS - start)) s in all"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "sanitize: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "sanitize: clean"
