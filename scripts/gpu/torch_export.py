#!/usr/bin/env python3
"""Exports the torch backend's GPU models, each as an AOTInductor package
(torch.export with a dynamic batch dimension + aoti_compile_and_package)
and as TorchScript (torch.jit.trace), with random weights (fixed seed),
into a model repository, and writes for each a reference case: an input
batch and the outputs the same program computes in Python.

    python3 scripts/gpu/torch_export.py OUT_DIR [SET...]

SET: ci (the CI models: mlp, conv net with batch norm, two inputs and two
outputs), resnet50_fp16, resnet50_fp32, bert_fp16 (BertModel of
BertConfig(), base size, sequence 128); default: all. FORMATS=pt,pt2
(environment) limits the formats.

OUT_DIR/repo/<set model>_<pt|pt2>/{config.yaml,model.pt|model.pt2}
OUT_DIR/cases/<same name>/manifest.txt + .raw files (the fixtures format)
OUT_DIR/export.json   one line per export: seconds, bytes, or the error
"""
import ctypes
import json
import os
import sys
import time

# An AOTInductor package's wrapper library carries its own static copy of
# the C++ runtime; unless the process's shared libstdc++ is in the global
# symbol scope first, the two copies meet in std::locale and the load
# crashes (docs/MODELS.md, "AOTInductor packages in Python").
ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)

import torch  # noqa: E402
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "backends", "torch"))
import make_torch_fixtures as fx  # noqa: E402

DEV = os.environ.get("TORCH_EXPORT_DEVICE", "cuda")


class Spec:
    """A model to export: module, named example inputs (batch 2), output
    names, max batch size for the config, and the dynamic batch range."""

    def __init__(self, name, module, inputs, outputs, max_batch, batch_max, delay_us=2000):
        self.name, self.module, self.inputs, self.outputs = name, module, inputs, outputs
        self.max_batch, self.batch_max, self.delay_us = max_batch, batch_max, delay_us


def dims_of(t):
    return [-1] + list(t.shape[1:])


def config(spec, fmt, outputs):
    lines = ["backend: torch", "max_batch_size: %d" % spec.max_batch,
             "dynamic_batching: {max_queue_delay_us: %d}" % spec.delay_us, "inputs:"]
    for n, t in spec.inputs:
        lines.append("  - {name: %s, datatype: %s, dims: %s}" % (n, fx.DTYPES[t.dtype], dims_of(t)))
    lines.append("outputs:")
    for n, t in zip(spec.outputs, outputs):
        lines.append("  - {name: %s, datatype: %s, dims: %s}" % (n, fx.DTYPES[t.dtype], dims_of(t)))
    # No warmup list: the default runs every batch size the batcher may form.
    lines.append("torch: {file: model.%s}" % fmt)
    return "\n".join(lines) + "\n"


def flat(result):
    if isinstance(result, torch.Tensor):
        return [result]
    res = []
    for r in result:
        res += flat(r)
    return res


def record(log, **kw):
    log.write(json.dumps(kw) + "\n")
    log.flush()
    print(json.dumps(kw), flush=True)


def export(spec, out, formats, log):
    args = tuple(t for _, t in spec.inputs)
    for fmt in formats:
        name = "%s_%s" % (spec.name, fmt)
        d = os.path.join(out, "repo", name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "model." + fmt)
        start = time.time()
        try:
            with torch.no_grad():
                if fmt == "pt":
                    program = torch.jit.trace(spec.module, args)
                    torch.jit.save(program, path)
                else:
                    batch = torch.export.Dim("batch", min=1, max=spec.batch_max)
                    shapes = {n: {0: batch} for n, _ in spec.inputs}
                    ep = torch.export.export(spec.module, (), kwargs=dict(spec.inputs),
                                             dynamic_shapes=shapes)
                    torch._inductor.aoti_compile_and_package(ep, package_path=path)
                    # The reference is the package itself, run from Python;
                    # how far it is from the eager program is recorded too.
                    program = torch._inductor.aoti_load_package(path)
                    eager = flat(ep.module()(**dict(spec.inputs)))
                outputs = flat(program(*args) if fmt == "pt" else program(**dict(spec.inputs)))
                vs_eager = None
                if fmt == "pt2":
                    vs_eager = max(float((o.float() - e.float()).abs().max() /
                                         e.float().abs().max().clamp_min(1e-30))
                                   for o, e in zip(outputs, eager) if o.is_floating_point())
            with open(os.path.join(d, "config.yaml"), "w") as f:
                f.write(config(spec, fmt, outputs))
            fx.write_case(out, name, spec.inputs, list(zip(spec.outputs, outputs)))
            record(log, model=name, seconds=round(time.time() - start, 1),
                   bytes=os.path.getsize(path), package_vs_eager_rel_err=vs_eager)
        except Exception as e:  # noqa: BLE001
            record(log, model=name, seconds=round(time.time() - start, 1), error=repr(e)[:3000])


class TwoIO(nn.Module):
    def forward(self, INPUT0, INPUT1):
        return INPUT0 * 2.0 + INPUT1.to(torch.float32), INPUT1.sum(dim=1, keepdim=True)


class Wrap(nn.Module):
    """Names forward's arguments as the config's inputs."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


class Bert(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask):
        o = self.inner(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return o.last_hidden_state, o.pooler_output


def specs(which):
    torch.manual_seed(0)
    if which == "ci":
        mlp = Wrap(nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))).to(DEV).eval()
        yield Spec("ci_mlp", mlp, [("x", torch.randn(2, 16, device=DEV))], ["y"], 8, 64)
        conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
        with torch.no_grad():
            conv[1].running_mean.uniform_(-0.5, 0.5)
            conv[1].running_var.uniform_(0.5, 1.5)
        conv = Wrap(conv).to(DEV).eval()
        yield Spec("ci_convbn", conv, [("x", torch.randn(2, 3, 12, 12, device=DEV))], ["logits"],
                   4, 64)
        yield Spec("ci_two_io", TwoIO().to(DEV).eval(),
                   [("INPUT0", torch.randn(2, 4, device=DEV)),
                    ("INPUT1", torch.randint(-5, 5, (2, 4), device=DEV))],
                   ["OUTPUT0", "OUTPUT1"], 8, 64)
    elif which.startswith("resnet50"):
        import torchvision
        dt = torch.float16 if which.endswith("fp16") else torch.float32
        m = torchvision.models.resnet50(weights=None).to(DEV)
        # Random weights leave batch norm's running statistics at 0 / 1:
        # calibrate them so activations stay in fp16's range.
        m.train()
        with torch.no_grad():
            for _ in range(4):
                m(torch.randn(32, 3, 224, 224, device=DEV))
        m = Wrap(m.eval().to(dt))
        yield Spec(which, m, [("x", torch.randn(2, 3, 224, 224, device=DEV, dtype=dt))],
                   ["logits"], 128, 256, delay_us=100)
    elif which == "bert_fp16":
        from transformers import BertConfig, BertModel
        m = BertModel(BertConfig()).to(DEV).eval().half()
        ids = torch.randint(0, 30522, (2, 128), device=DEV)
        mask = torch.ones(2, 128, dtype=torch.int64, device=DEV)
        yield Spec(which, Bert(m), [("input_ids", ids), ("attention_mask", mask)],
                   ["last_hidden_state", "pooler_output"], 64, 256, delay_us=100)
    else:
        raise SystemExit("unknown set " + which)


def main():
    out = os.path.abspath(sys.argv[1])
    sets = sys.argv[2:] or ["ci", "resnet50_fp16", "resnet50_fp32", "bert_fp16"]
    formats = os.environ.get("FORMATS", "pt,pt2").split(",")
    if "pt2" in formats:
        import torch._inductor.config as inductor_config
        inductor_config.compile_threads = os.cpu_count() or 8
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "export.json"), "a") as log:
        for s in sets:
            for spec in specs(s):
                export(spec, out, formats, log)


if __name__ == "__main__":
    main()
