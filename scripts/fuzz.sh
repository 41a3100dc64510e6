#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz) of the asan build for SECONDS each,
# one after another, starting from the committed corpus.
#   scripts/fuzz.sh SECONDS [TARGET...]     e.g. scripts/fuzz.sh 3600 fuzz_config_yaml
# New inputs go to build-asan/fuzz-corpus/<target>/, crashes to
# build-asan/fuzz-artifacts/. FUZZ_BUILD=0 skips the build step.
# Exit status: 0 when every target ran clean.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
all=(fuzz_model_infer fuzz_tensor_codec fuzz_task_spec fuzz_bytes_framing fuzz_config_yaml
     fuzz_model_config fuzz_safetensors fuzz_strict_json fuzz_batch_size)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
build=build-asan
if [[ "${FUZZ_BUILD:-1}" != 0 ]]; then
  cmake --preset asan >/dev/null
  cmake --build "$build" -j"${JOBS:-2}" --target "${targets[@]}"
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$build/fuzz-artifacts"
failed=()
for t in "${targets[@]}"; do
  work="$build/fuzz-corpus/$t"
  mkdir -p "$work"
  echo "== $t: ${seconds}s"
  # -rss_limit_mb: one input may not make the decoder hold 2 GiB;
  # -timeout: nor take 10 s; -max_len: requests up to 64 KiB.
  if ! "$build/fuzz/$t" "$work" "tests/fuzz/corpus/$t" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-artifacts/$t-" 2>"$build/fuzz-artifacts/$t.log"; then
    failed+=("$t")
    tail -40 "$build/fuzz-artifacts/$t.log"
  fi
  grep -E "^stat::number_of_executed_units|^Done [0-9]+ runs" "$build/fuzz-artifacts/$t.log" || true
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets clean for ${seconds}s each"
