#!/usr/bin/env python3
"""Issue 4's correctness check, run on the GPU machine: an MLP built and
saved by PyTorch (safetensors, as `save_file(model.state_dict())` writes it)
must give torch's outputs through the daemon's ModelInfer (fp32 within 1e-4
relative). Uses inferd and inferctl from $GPU_BUNDLE/bin.

    python3 torch_modelinfer_check.py WORKDIR
"""
import json
import os
import subprocess
import sys
import time

import torch
from torch import nn

work = sys.argv[1]
bin_dir = os.path.join(os.environ["GPU_BUNDLE"], "bin")
repo = os.path.join(work, "torch_repo")
model_dir = os.path.join(repo, "torch_mlp")
os.makedirs(model_dir, exist_ok=True)

torch.manual_seed(7)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.GELU(),
                      nn.Linear(128, 16)).eval()
from safetensors.torch import save_file  # noqa: E402

save_file({k: v.contiguous() for k, v in model.state_dict().items()},
          os.path.join(model_dir, "model.safetensors"))
with open(os.path.join(model_dir, "config.yaml"), "w") as f:
    f.write("""name: torch_mlp
backend: mlp
max_batch_size: 8
inputs:
  - {name: INPUT0, datatype: FP32, dims: [-1, 64]}
outputs:
  - {name: OUTPUT0, datatype: FP32, dims: [-1, 16]}
mlp:
  weights: model.safetensors
  dtype: fp32
  layers:
    - {weight: 0.weight, bias: 0.bias, activation: relu}
    - {weight: 2.weight, bias: 2.bias, activation: gelu}
    - {weight: 4.weight, bias: 4.bias, activation: none}
""")

x = torch.randn(2, 64)
with torch.no_grad():
    y_cpu = model(x)
    y_gpu = model.cuda()(x.cuda()).cpu()

port = "50171"
daemon = subprocess.Popen([os.path.join(bin_dir, "inferd"), "--grpc-listen=127.0.0.1:" + port,
                           "--metrics-listen=", "--model-repository=" + repo],
                          stderr=open(os.path.join(work, "torch_inferd.log"), "w"))
try:
    for _ in range(100):
        if subprocess.run([os.path.join(bin_dir, "inferd"), "healthcheck",
                           "--grpc-target=127.0.0.1:" + port], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    values = ",".join(repr(float(v)) for v in x.flatten().tolist())
    out = subprocess.run([os.path.join(bin_dir, "inferctl"), "--target=127.0.0.1:" + port,
                          "infer", "torch_mlp", "--input=INPUT0:FP32:2x64:" + values],
                         capture_output=True, text=True)
    print(out.stdout, out.stderr)
    line = [l for l in out.stdout.splitlines() if l.startswith("OUTPUT0")][0]
    got = torch.tensor([float(v) for v in line.split(": ", 1)[1].split(",")]).reshape(2, 16)
finally:
    daemon.terminate()
    daemon.wait(timeout=30)


def rel(a, b):
    return float(((a - b).abs() / b.abs().clamp_min(1e-3)).max())


result = {"check": "torch_vs_modelinfer_fp32", "max_rel_err_vs_torch_cpu": rel(got, y_cpu),
          "max_rel_err_vs_torch_cuda": rel(got, y_gpu), "tolerance": 1e-4}
print(json.dumps(result))
sys.exit(0 if result["max_rel_err_vs_torch_cpu"] <= 1e-4 else 1)
