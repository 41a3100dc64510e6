#!/usr/bin/env bash
# Issue 4/7's mlp throughput on the GPU machine: an MLP (MLP_SIZES, relu)
# through ModelInfer at the same client concurrency with dynamic batching
# on vs off (batch 1), the GPU busy fraction under that load (NVML
# utilization sampled by nvidia-smi), a saturating batched run (many
# clients, several inferctl processes: one process tops out near 33k
# requests/s), the GPU time of one call eager vs CUDA graphs
# (mlp_gpu_bench), and a PyTorch eager batch-1 loop in the same run.
#   bash mlp_bench.sh WORKDIR [DTYPE=fp16] [CONCURRENCY=64] [SECONDS=6]
# Environment:
#   MLP_SIZES=1024,4096,4096,1024  layer sizes
#   MLP_CLIENTS=1      inferctl processes sharing CONCURRENCY (both models alike)
#   MLP_SAT_CONC=512   concurrency of the saturating batched run (0: skip)
#   MLP_SAT_CLIENTS=4  inferctl processes of the saturating run
#   MLP_SAT_ROWS=8     rows per request in the saturating run (samples = rows)
#   MLP_SAT_SLOTS=8    max_tasks_per_device of the saturating run's daemon
#   MLP_PAIR=1         run the batched vs batch-1 pair (0: only the saturating run)
#   MLP_TORCH=1        run the PyTorch baseline (0: skip)
#   MLP_CONFIG=FILE    daemon config (--config) for every run
set -uo pipefail
work=$1; dtype=${2:-fp16}; conc=${3:-64}; secs=${4:-6}
clients=${MLP_CLIENTS:-1}; sat_conc=${MLP_SAT_CONC:-512}; sat_clients=${MLP_SAT_CLIENTS:-4}
sat_rows=${MLP_SAT_ROWS:-8}; sat_slots=${MLP_SAT_SLOTS:-8}
mkdir -p "$work"
"$bin/inferd" --print-config ${MLP_CONFIG:+--config="$MLP_CONFIG"} |
  sed "s/max_tasks_per_device: [0-9]*/max_tasks_per_device: $sat_slots/" >"$work/sat_config.yaml"
bin=${GPU_BUNDLE:?}/bin
# One GPU, the one nvidia-smi -i 0 samples (PCI order in both).
export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0
export MLP_SIZES=${MLP_SIZES:-1024,4096,4096,1024}
repo=$work/mlp_repo_${dtype}_${MLP_SIZES//,/_}; mkdir -p "$repo"
DT=$(echo "$dtype" | tr a-z A-Z)
"$bin/gen_demo_mlp" --out "$repo/mlp" --name mlp --sizes "$MLP_SIZES" --activation relu \
  --dtype "$dtype" --max-batch-size 256 >/dev/null
# The batch-1 baseline: the same weights (same seed), max batch size 1.
"$bin/gen_demo_mlp" --out "$repo/mlp_b1" --name mlp_b1 --sizes "$MLP_SIZES" \
  --activation relu --dtype "$dtype" --max-batch-size 1 >/dev/null
run() {  # label, model, concurrency, clients, [rows per request, config]
  local label=$1 model=$2 c=$3 n=$4 rows=${5:-1} config=${6:-${MLP_CONFIG:-}}
  "$bin/inferd" ${config:+--config="$config"} --grpc-listen=127.0.0.1:50181 --metrics-listen= \
    --model-repository="$repo" 2>"$work/$label.log" &
  local pid=$!
  for _ in $(seq 100); do "$bin/inferd" healthcheck --grpc-target=127.0.0.1:50181 >/dev/null 2>&1 && break; sleep 0.1; done
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -i 0 -lms 100 >"$work/$label.util" &
  local smi=$!
  local per=$(( (c + n - 1) / n )) pids=() i
  for i in $(seq "$n"); do
    "$bin/inferctl" --target=127.0.0.1:50181 bench "$model" --input=INPUT0:$DT:${rows}x${MLP_SIZES%%,*} \
      --concurrency="$per" --warmup=2 --duration="$secs" --json >"$work/$label.$i.json" &
    pids+=($!)
  done
  wait "${pids[@]}"
  kill $smi; kill -TERM $pid; wait $pid
  cat "$work/$label".*.json
  # Samples (requests x rows) per second over all clients, and the busy
  # fraction over the measured window (the warm-up samples skipped).
  local qps
  qps=$(cat "$work/$label".*.json | grep -o '"qps":[0-9.]*' | cut -d: -f2 | awk '{s+=$1} END {printf "%.1f", s}')
  awk -v s=20 -v q="$qps" -v r="$rows" -v c="$c" -v n="$n" 'NR>s {t+=$1; k++} END {if (k) printf "{\"label\":\"%s\",\"concurrency\":%d,\"clients\":%d,\"rows_per_request\":%d,\"samples_per_s\":%.1f,\"gpu_util_mean\":%.3f,\"samples\":%d}\n", L, c, n, r, q*r, t/k/100, k}' L="$label" "$work/$label.util" | tee "$work/$label.summary"
  rm -f "$work/$label".*.json
}
if [[ ${MLP_PAIR:-1} != 0 ]]; then
  run batched mlp "$conc" "$clients"
  run batch1 mlp_b1 "$conc" "$clients"
fi
[[ $sat_conc -gt 0 ]] && run batched_saturated mlp "$sat_conc" "$sat_clients" "$sat_rows" "$work/sat_config.yaml"
# GPU time of one call, eager vs CUDA graphs (issue 4: batch 1 <= 30 us).
[[ -x $bin/mlp_gpu_bench ]] && "$bin/mlp_gpu_bench" 200 "$MLP_SIZES" "$dtype" 1,64,256
[[ ${MLP_TORCH:-1} == 0 ]] && exit 0
python3 - "$dtype" "$work" <<'PY'
import json, os, sys, time, torch
from torch import nn
dt = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}[sys.argv[1]]
sz = [int(v) for v in os.environ.get("MLP_SIZES", "1024,4096,4096,1024").split(",")]
layers = []
for i in range(len(sz) - 1):
    layers += [nn.Linear(sz[i], sz[i + 1]), nn.ReLU()]
m = nn.Sequential(*layers[:-1]).cuda().to(dt).eval()
x = torch.randn(1, sz[0], device="cuda", dtype=dt)
with torch.no_grad():
    for _ in range(50): m(x)
    torch.cuda.synchronize(); n = 2000; t = time.perf_counter()
    for _ in range(n): m(x).cpu()
    dt_s = time.perf_counter() - t
torch_sps = n / dt_s
print(json.dumps({"label": "pytorch_eager_batch1_loop", "samples_per_s": torch_sps}))
def load(label):
    try:
        with open(os.path.join(sys.argv[2], label + ".summary")) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None
b, one, sat = load("batched"), load("batch1"), load("batched_saturated")
out = {"label": "ratios"}
if b and one and one["samples_per_s"] > 0:
    out["batched_vs_batch1_same_concurrency"] = round(b["samples_per_s"] / one["samples_per_s"], 2)
if b:
    out["batched_vs_pytorch"] = round(b["samples_per_s"] / torch_sps, 2)
if sat:
    out["saturated_vs_pytorch"] = round(sat["samples_per_s"] / torch_sps, 2)
    out["saturated_gpu_busy"] = sat["gpu_util_mean"]
print(json.dumps(out))
PY
