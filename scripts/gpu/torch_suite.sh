#!/usr/bin/env bash
# The torch backend on a GPU machine with PyTorch: builds libinferd_torch.so
# against that PyTorch, checks that AOTInductor packages load, runs the
# backend's tests on the GPU, exports the acceptance models (.pt and .pt2),
# checks them served through ModelInfer against Python, and benchmarks.
#
#   bash scripts/gpu/torch_suite.sh STEP...
#
# Steps: info build probe tests export[=SET,SET] export_bg=SET,SET export_wait
#        check=pt|pt2[:graphs] bench=MODEL[,MODEL]
# (SETs and MODELs as in torch_export.py and torch_bench.py). The daemon,
# inferctl and the test binaries come from $INFERD_BIN_DIR (a relocatable
# package made on a build host; docs/DEVELOPMENT.md). Work files go to
# $TORCH_WORK (default /tmp/inferd-torch), logs and JSON to $TORCH_WORK/out;
# when $OUT is set, summary.txt and a tarball of the logs are refreshed
# there after every step (a run cut short still leaves them).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${TORCH_WORK:-/tmp/inferd-torch}
out=$work/out
bin=${INFERD_BIN_DIR:-${GPU_BUNDLE:?set INFERD_BIN_DIR}/bin}
mkdir -p "$out" "$work"
export GPU_BUNDLE=${GPU_BUNDLE:-$(dirname "$bin")}
export INFERD_TORCH_LIB=${INFERD_TORCH_LIB:-$work/build-torch/lib/libinferd_torch.so}
export INFERD_TORCH_PYTHON=$(command -v python3)
export INFERD_TORCH_FIXTURES_SCRIPT=$root/tests/backends/torch/make_torch_fixtures.py
export INFERD_TORCH_FIXTURES_DIR=$work/fixtures
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
# The package's libraries serve inferd and its tools; Python (and the
# compilers it runs) get the library path as it was before, so that a
# library of the package never stands in for one of PyTorch's.
export INFERD_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
py_ld=${LD_LIBRARY_PATH:-}
py_ld=${py_ld#"$GPU_BUNDLE/lib:"}
py_ld=${py_ld#"/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu:"}
py() { env LD_LIBRARY_PATH="$py_ld" python3 "$@"; }
rc=0

step() {  # name, command...: runs it, logs to $out/<name>.log, keeps going
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name" | tee -a "$out/summary.txt"
  if "$@" >"$out/$name.log" 2>&1; then
    echo "--- $name: ok ($((SECONDS - start)) s)" | tee -a "$out/summary.txt"
  else
    local r=$?; rc=1
    echo "--- $name: FAILED rc=$r ($((SECONDS - start)) s)" | tee -a "$out/summary.txt"
    tail -25 "$out/$name.log"
  fi
  grep -hE '^\[  (PASSED|FAILED) |^\{' "$out/$name.log" | tail -40 >>"$out/summary.txt"
  publish
}

publish() {
  [[ -n ${OUT:-} ]] || return 0
  cp "$out/summary.txt" "$OUT/summary.txt"
  tar czf "$OUT/torch_suite_logs.tgz" -C "$out" . 2>/dev/null
}

build() {
  local prefix
  prefix=$(py -c 'import torch; print(torch.utils.cmake_prefix_path)')
  if cmake -S "$root/backends/torch" -B "$work/build-torch" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" && cmake --build "$work/build-torch"; then
    ls -l "$INFERD_TORCH_LIB"
    return
  fi
  # Where the wheel's CMake config cannot be used, the compiler line that
  # torch.utils.cpp_extension would give.
  echo "cmake failed; building with the compiler directly"
  local flags
  flags=$(py - <<'PY'
import torch, torch.utils.cpp_extension as c
try:
    inc, lib = c.include_paths(device_type="cuda"), c.library_paths(device_type="cuda")
except TypeError:
    inc, lib = c.include_paths(cuda=True), c.library_paths(cuda=True)
abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
print(" ".join(["-I" + p for p in inc] + ["-L" + p for p in lib] +
               ["-Wl,-rpath," + p for p in lib] + ["-D_GLIBCXX_USE_CXX11_ABI=%d" % abi]))
PY
)
  mkdir -p "$(dirname "$INFERD_TORCH_LIB")"
  # shellcheck disable=SC2086
  g++ -O2 -std=c++17 -shared -fPIC -fvisibility=hidden -DINFERD_TORCH_WITH_CUDA=1 -I"$root" \
    -I/usr/local/cuda/include $flags "$root/backends/torch/torch_backend.cc" \
    -lc10 -lc10_cuda -ltorch -ltorch_cpu -ltorch_cuda -o "$INFERD_TORCH_LIB"
}

# A repository of the exported models of one format that exported fully;
# with "graphs", every model served with torch.cuda_graphs: true.
repo_of() {  # format [graphs]
  local repo=$work/repo_$1${2:+_$2}
  rm -rf "$repo"; mkdir -p "$repo"
  for d in "$work"/export/repo/*_"$1"; do
    [[ -f $d/config.yaml ]] && cp -r "$d" "$repo/"
  done
  if [[ ${2:-} == graphs ]]; then
    sed -i 's/^torch: {/torch: {cuda_graphs: true, /' "$repo"/*/config.yaml
  fi
  echo "$repo"
}

check() {  # format [graphs]
  local repo port=50173
  repo=$(repo_of "$1" "${2:-}")
  ls "$repo"
  "$bin/inferd" --grpc-listen=127.0.0.1:$port --metrics-listen= --model-repository="$repo" \
    2>"$out/check_$1${2:+_$2}_inferd.log" &
  local pid=$!
  for _ in $(seq 900); do
    "$bin/inferd" healthcheck --grpc-target=127.0.0.1:$port >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || { echo "inferd exited:"; tail -20 "$out/check_$1${2:+_$2}_inferd.log"; return 1; }
    sleep 0.2
  done
  local r=0
  "$bin/torch_serve_check" --target=127.0.0.1:$port --cases="$work/export/cases" \
    $(ls "$repo") || r=1
  kill -TERM $pid; wait $pid || r=1
  return $r
}

for s in "$@"; do
  case $s in
    info) step info bash -c 'nvidia-smi -L; env LD_LIBRARY_PATH="'"$py_ld"'" python3 -c "import torch; print(torch.__version__, torch.version.cuda)"; g++ --version | head -1; nproc; echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"' ;;
    build) step build build ;;
    probe) step probe py "$root/scripts/gpu/torch_aoti_probe.py" "$work/probe" ;;
    tests)
      step fixtures py "$INFERD_TORCH_FIXTURES_SCRIPT" "$INFERD_TORCH_FIXTURES_DIR"
      step torch_model_test "$bin/torch_model_test"
      step torch_integration_test env INFERD_TEST_USE_GPU=1 INFERD_BIN_DIR="$bin" \
        "$bin/torch_integration_test" ;;
    export|export=*)
      sets=${s#export}; sets=${sets#=}
      step export py "$root/scripts/gpu/torch_export.py" "$work/export" ${sets//,/ } ;;
    # A long export in the background (its own session: it outlives this
    # command while the machine stays up), and waiting for it.
    export_bg=*)
      sets=${s#export_bg=}
      setsid nohup env LD_LIBRARY_PATH="$py_ld" python3 "$root/scripts/gpu/torch_export.py" \
        "$work/export" ${sets//,/ } >"$work/export_bg.log" 2>&1 </dev/null &
      echo $! >"$work/export_bg.pid"
      echo "=== export_bg started: $sets" | tee -a "$out/summary.txt"
      publish ;;
    export_wait)
      pid=$(cat "$work/export_bg.pid" 2>/dev/null)
      while [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; do sleep 2; done
      cp "$work/export_bg.log" "$out/export_bg.log" 2>/dev/null
      grep -h '^{' "$work/export_bg.log" | tee -a "$out/summary.txt"
      publish ;;
    # check=pt2:graphs serves every model with CUDA graphs.
    check=*) c=${s#check=}; step "check_${c/:/_}" check "${c%%:*}" "$([[ $c == *:* ]] && echo "${c#*:}")" ;;
    bench=*)
      IFS=, read -ra models <<<"${s#bench=}"
      for m in "${models[@]}"; do
        step "bench_$m" env BENCH_LOG_DIR="$out" LD_LIBRARY_PATH="$py_ld" python3 "$root/scripts/gpu/torch_bench.py" \
          "$work/export" "$m"
      done ;;
    *) echo "unknown step $s"; rc=2 ;;
  esac
done
exit $rc
