#!/usr/bin/env python3
"""Writes PyTorch reference models for mlp_gpu_test's MatchesPyTorch test.

    python3 torch_reference.py OUT_DIR

For each case, OUT_DIR/repo/<name>/ gets model.safetensors (the
nn.Sequential's state_dict, as safetensors.torch.save_file writes it) and
config.yaml, and OUT_DIR/<name>.io.safetensors holds an input "x" and
torch's output "y". Then run mlp_gpu_test with
INFERD_TORCH_REFERENCE_DIR=OUT_DIR.
"""
import json
import os
import struct
import sys

import torch
from torch import nn

DTYPES = {torch.float32: ("F32", "fp32", "FP32"), torch.float16: ("F16", "fp16", "FP16"),
          torch.bfloat16: ("BF16", "bf16", "BF16")}


def save(tensors, path):
    """safetensors.torch.save_file, without needing the package."""
    try:
        from safetensors.torch import save_file
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, path)
        return
    except ImportError:
        pass
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main(out):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    cases = [("torch_fp32_relu", torch.float32, nn.ReLU()),
             ("torch_fp32_gelu", torch.float32, nn.GELU()),
             ("torch_fp16_gelu_tanh", torch.float16, nn.GELU(approximate="tanh"))]
    for name, dtype, act in cases:
        model = nn.Sequential(nn.Linear(1024, 4096), act, nn.Linear(4096, 4096), act,
                              nn.Linear(4096, 1024)).to(dtype=dtype, device="cuda").eval()
        x = torch.randn(64, 1024, device="cuda").to(dtype)
        with torch.no_grad():
            y = model(x)
        folder = os.path.join(out, "repo", name)
        os.makedirs(folder, exist_ok=True)
        save(model.state_dict(), os.path.join(folder, "model.safetensors"))
        st, short, wire = DTYPES[dtype]
        act_name = {"ReLU": "relu", "GELU": "gelu_tanh" if getattr(act, "approximate", "none") == "tanh"
                    else "gelu"}[type(act).__name__]
        layers = "".join(f"    - {{weight: {i}.weight, bias: {i}.bias, activation: "
                         f"{act_name if i < 4 else 'none'}}}\n" for i in (0, 2, 4))
        with open(os.path.join(folder, "config.yaml"), "w") as f:
            f.write(f"backend: mlp\nmax_batch_size: 64\n"
                    f"inputs: [{{name: INPUT0, datatype: {wire}, dims: [-1, 1024]}}]\n"
                    f"outputs: [{{name: OUTPUT0, datatype: {wire}, dims: [-1, 1024]}}]\n"
                    f"mlp:\n  weights: model.safetensors\n  dtype: {short}\n  layers:\n{layers}")
        save({"x": x, "y": y}, os.path.join(out, name + ".io.safetensors"))
        print("wrote", name)


if __name__ == "__main__":
    main(sys.argv[1])
