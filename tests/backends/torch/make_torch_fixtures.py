"""Writes the torch backend's test fixtures: a model repository of
TorchScript models (random weights, fixed seed) and, for each model, an
input batch with the outputs torch computes for it.

    python3 make_torch_fixtures.py OUT_DIR

OUT_DIR/repo/<model>/{config.yaml,model.pt}   the repository the tests serve
OUT_DIR/cases/<model>/manifest.txt            one line per tensor:
    in|out NAME DATATYPE DIM,DIM,...          (raw little-endian in NAME.raw)
OUT_DIR/.done                                 written last

Runs with any PyTorch >= 1.13 (Debian's python3-torch in CI).
"""
import os
import sys

import torch
from torch import nn

torch.manual_seed(0)
DTYPES = {torch.float32: "FP32", torch.float16: "FP16", torch.bfloat16: "BF16",
          torch.float64: "FP64", torch.int64: "INT64", torch.int32: "INT32", torch.bool: "BOOL"}


def write_model(root, name, module, config):
    d = os.path.join(root, "repo", name)
    os.makedirs(d, exist_ok=True)
    torch.jit.save(module, os.path.join(d, "model.pt"))
    with open(os.path.join(d, "config.yaml"), "w") as f:
        f.write(config)
    return d


def write_case(root, name, inputs, outputs):
    d = os.path.join(root, "cases", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "manifest.txt"), "w") as f:
        for kind, tensors in (("in", inputs), ("out", outputs)):
            for tname, t in tensors:
                t = t.contiguous()
                f.write("%s %s %s %s\n" % (kind, tname, DTYPES[t.dtype],
                                           ",".join(str(s) for s in t.shape)))
                if t.dtype == torch.bfloat16:  # numpy has no bfloat16
                    t = t.view(torch.int16)
                with open(os.path.join(d, tname + ".raw"), "wb") as raw:
                    raw.write(t.detach().cpu().numpy().tobytes())


class TwoInTwoOut(nn.Module):
    """FP32 and INT64 in; FP32 and INT64 out (tuple); bound by position."""

    def forward(self, a, b):
        return a * 2.0 + b.to(torch.float32), b.sum(dim=1, keepdim=True)


class Raises(nn.Module):
    """Raises inside the model when the input holds a value above 1000."""

    def forward(self, x):
        if bool((x > 1000.0).any()):
            raise ValueError("input values must stay below 1000")
        return x + 1.0


def main(out):
    # An MLP, traced; config input name "x" is forward's argument name.
    mlp = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8)).eval()
    x = torch.randn(5, 16)
    traced = torch.jit.trace(mlp, torch.randn(2, 16))

    class Named(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    named = torch.jit.script(Named(mlp))
    write_model(out, "torch_mlp", named, """backend: torch
max_batch_size: 8
dynamic_batching: {max_queue_delay_us: 100000}
inputs: [{name: x, datatype: FP32, dims: [-1, 16]}]
outputs: [{name: y, datatype: FP32, dims: [-1, 8]}]
torch: {file: model.pt}
""")
    with torch.no_grad():
        write_case(out, "torch_mlp", [("x", x)], [("y", traced(x))])

    # A small conv net with batch norm (eval mode), traced.
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    with torch.no_grad():  # non-trivial running statistics
        conv[1].running_mean.uniform_(-0.5, 0.5)
        conv[1].running_var.uniform_(0.5, 1.5)
    conv.eval()
    img = torch.randn(3, 3, 12, 12)
    write_model(out, "torch_convbn", torch.jit.trace(conv, torch.randn(1, 3, 12, 12)),
                """backend: torch
max_batch_size: 4
inputs: [{name: image, datatype: FP32, dims: [-1, 3, 12, 12]}]
outputs: [{name: logits, datatype: FP32, dims: [-1, 4]}]
torch: {file: model.pt, instances_per_device: 2, warmup: [1, 4]}
""")
    with torch.no_grad():
        write_case(out, "torch_convbn", [("image", img)], [("logits", conv(img))])

    # Two inputs and two outputs of different datatypes, scripted.
    two = torch.jit.script(TwoInTwoOut())
    a = torch.randn(3, 4)
    b = torch.randint(-5, 5, (3, 4), dtype=torch.int64)
    write_model(out, "torch_two_io", two, """backend: torch
max_batch_size: 8
inputs:
  - {name: INPUT0, datatype: FP32, dims: [-1, 4]}
  - {name: INPUT1, datatype: INT64, dims: [-1, 4]}
outputs:
  - {name: OUTPUT0, datatype: FP32, dims: [-1, 4]}
  - {name: OUTPUT1, datatype: INT64, dims: [-1, 1]}
torch: {file: model.pt}
""")
    o0, o1 = two(a, b)
    write_case(out, "torch_two_io", [("INPUT0", a), ("INPUT1", b)],
               [("OUTPUT0", o0), ("OUTPUT1", o1)])

    # A model whose own code raises at run time (warmup zeros pass).
    write_model(out, "torch_raises", torch.jit.script(Raises()), """backend: torch
max_batch_size: 4
inputs: [{name: x, datatype: FP32, dims: [-1, 2]}]
outputs: [{name: y, datatype: FP32, dims: [-1, 2]}]
torch: {file: model.pt}
""")

    # Broken models, loaded on demand by the tests (they fail to load).
    broken = os.path.join(out, "broken")
    os.makedirs(broken, exist_ok=True)
    good = os.path.join(out, "repo", "torch_mlp", "model.pt")
    data = open(good, "rb").read()

    def broken_model(name, file_bytes, config, file_name="model.pt"):
        d = os.path.join(broken, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, file_name), "wb") as f:
            f.write(file_bytes)
        with open(os.path.join(d, "config.yaml"), "w") as f:
            f.write(config)

    mlp_config = open(os.path.join(out, "repo", "torch_mlp", "config.yaml")).read()
    broken_model("not_a_model", b"this is a text file, not a TorchScript archive\n", mlp_config)
    broken_model("truncated", data[: len(data) // 2], mlp_config)
    broken_model("wrong_inputs", data, mlp_config.replace(
        "inputs: [{name: x, datatype: FP32, dims: [-1, 16]}]",
        "inputs: [{name: a, datatype: FP32, dims: [-1, 16]}, "
        "{name: b, datatype: FP32, dims: [-1, 16]}]"))
    broken_model("wrong_output_shape", data,
                 mlp_config.replace("dims: [-1, 8]", "dims: [-1, 5]"))
    broken_model("wrong_feature_count", data,
                 mlp_config.replace("dims: [-1, 16]", "dims: [-1, 12]"))
    broken_model("aoti_package", b"PK\x03\x04 not really a package",
                 mlp_config.replace("torch: {file: model.pt}", "torch: {file: model.pt2}"),
                 file_name="model.pt2")

    with open(os.path.join(out, ".done"), "w") as f:
        f.write(torch.__version__ + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_torch_fixtures.py OUT_DIR")
    main(sys.argv[1])
