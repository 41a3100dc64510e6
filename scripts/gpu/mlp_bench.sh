#!/usr/bin/env bash
# Issue 4/7's mlp throughput on the GPU machine: the PyTorch-baseline-sized
# MLP (1024->4096->4096->1024, relu) through ModelInfer at the same client
# concurrency with dynamic batching on vs off (batch 1), the GPU busy
# fraction under that load (NVML utilization sampled by nvidia-smi), and a
# PyTorch eager batch-1 loop in the same run.
#   bash mlp_bench.sh WORKDIR [DTYPE=fp16] [CONCURRENCY=64] [SECONDS=6]
set -uo pipefail
work=$1; dtype=${2:-fp16}; conc=${3:-64}; secs=${4:-6}
bin=${GPU_BUNDLE:?}/bin
# One GPU, the one nvidia-smi -i 0 samples (PCI order in both).
export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0
export MLP_SIZES=${MLP_SIZES:-1024,4096,4096,1024}
repo=$work/mlp_repo_${dtype}_${MLP_SIZES//,/_}; mkdir -p "$repo"
DT=$(echo "$dtype" | tr a-z A-Z)
"$bin/gen_demo_mlp" --out "$repo/mlp" --name mlp --sizes "${MLP_SIZES:-1024,4096,4096,1024}" --activation relu \
  --dtype "$dtype" --max-batch-size 256 >/dev/null
# The batch-1 baseline: the same weights (same seed), max batch size 1.
"$bin/gen_demo_mlp" --out "$repo/mlp_b1" --name mlp_b1 --sizes "${MLP_SIZES:-1024,4096,4096,1024}" \
  --activation relu --dtype "$dtype" --max-batch-size 1 >/dev/null
run() {  # label, model
  local label=$1 model=$2
  "$bin/inferd" --grpc-listen=127.0.0.1:50181 --metrics-listen= \
    --model-repository="$repo" 2>"$work/$label.log" &
  local pid=$!
  for _ in $(seq 100); do "$bin/inferd" healthcheck --grpc-target=127.0.0.1:50181 >/dev/null 2>&1 && break; sleep 0.1; done
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -i 0 -lms 100 >"$work/$label.util" &
  local smi=$!
  "$bin/inferctl" --target=127.0.0.1:50181 bench "$model" --input=INPUT0:$DT:1x${MLP_SIZES%%,*} \
    --concurrency="$conc" --warmup=2 --duration="$secs" --json | tee "$work/$label.json"
  kill $smi; kill -TERM $pid; wait $pid
  # Busy fraction over the measured window: skip the warm-up samples.
  awk -v s=20 'NR>s {t+=$1; n++} END {if (n) printf "{\"label\":\"%s\",\"gpu_util_mean\":%.3f,\"samples\":%d}\n", L, t/n/100, n}' L="$label" "$work/$label.util"
}
run batched mlp
run batch1 mlp_b1
python3 - "$dtype" <<'PY'
import json, sys, time, torch
from torch import nn
dt = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}[sys.argv[1]]
import os
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
print(json.dumps({"label": "pytorch_eager_batch1_loop", "samples_per_s": n / dt_s}))
PY
