#!/usr/bin/env python3
"""The torch backend's serving benchmark, all figures from one run on one
GPU: a model served by inferd from batch-1 ModelInfer requests at rising
concurrency, against (a) a PyTorch eager batch-1 loop, (b) the same
exported program called at batch 1 in a Python loop, (c) the same program
at its best batch size in Python (the GPU's ceiling for it).

    python3 scripts/gpu/torch_bench.py EXPORT_DIR MODEL [CONCURRENCY,...]

EXPORT_DIR is torch_export.py's output; MODEL a repository folder name
(resnet50_fp16_pt2, bert_fp16_pt, ...). Needs $GPU_BUNDLE/bin/{inferd,
inferctl}, and INFERD_TORCH_LIB naming the backend library. Prints JSON
lines; the last one sums up the ratios.
"""
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

# An AOTInductor package's wrapper library carries its own static copy of
# the C++ runtime; unless the process's shared libstdc++ is in the global
# symbol scope first, the two copies meet in std::locale and the load
# crashes (docs/MODELS.md, "AOTInductor packages in Python").
ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)

import torch  # noqa: E402

export_dir, model = sys.argv[1], sys.argv[2]
levels = [int(c) for c in (sys.argv[3] if len(sys.argv) > 3 else "1,8,32,128,256").split(",")]
secs = float(os.environ.get("BENCH_SECONDS", "6"))
clients = int(os.environ.get("BENCH_CLIENTS", "4"))
bin_dir = os.path.join(os.environ["GPU_BUNDLE"], "bin")
# inferd and inferctl run with the package's libraries (INFERD_LD_LIBRARY_PATH).
tool_env = dict(os.environ, LD_LIBRARY_PATH=os.environ.get("INFERD_LD_LIBRARY_PATH",
                                                           os.environ.get("LD_LIBRARY_PATH", "")))
port = int(os.environ.get("BENCH_PORT", "50191"))
fmt = model.rsplit("_", 1)[1]
base = model.rsplit("_", 1)[0]
case_dir = os.path.join(export_dir, "cases", model)
manifest = [l.split() for l in open(os.path.join(case_dir, "manifest.txt"))]
inputs = [(n, dt, [int(d) for d in shape.split(",")]) for k, n, dt, shape in manifest if k == "in"]
TORCH_DT = {"FP16": torch.float16, "FP32": torch.float32, "INT64": torch.int64,
            "BF16": torch.bfloat16}


def emit(**kw):
    print(json.dumps(kw), flush=True)


def example(batch):
    return {n: torch.zeros([batch] + shape[1:], dtype=TORCH_DT[dt], device="cuda")
            for n, dt, shape in inputs}


def load_program():
    path = os.path.join(export_dir, "repo", model, "model." + fmt)
    if fmt == "pt2":
        return torch._inductor.aoti_load_package(path)
    return torch.jit.load(path, map_location="cuda").eval()


def rate(fn, batch, seconds=3.0):
    """Samples/s of fn on a batch, synchronized at the end of a timed loop."""
    x = example(batch)
    with torch.inference_mode():
        for _ in range(5):
            fn(**x)
        torch.cuda.synchronize()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(10):
                fn(**x)
            n += 10
            torch.cuda.synchronize()
        return n * batch / (time.perf_counter() - start)


def per_call_us(fn, calls=300):
    """Median latency of one synchronized batch-1 call."""
    x = example(1)
    times = []
    with torch.inference_mode():
        for _ in range(10):
            fn(**x)
        torch.cuda.synchronize()
        for _ in range(calls):
            t = time.perf_counter()
            fn(**x)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    return times[len(times) // 2]


def eager_module():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_export as te  # builds the same module, same seed
    spec = next(te.specs(base))
    return spec.module


# Baselines, in Python, before the daemon takes the GPU.
program = load_program()
call = (lambda **x: program(**x)) if fmt == "pt2" else (lambda **x: program(*x.values()))
eager = eager_module()
baseline = {"eager_b1": rate(lambda **x: eager(*x.values()), 1),
            "program_b1": rate(call, 1),
            "program_b1_call_us": per_call_us(call)}
best = (0.0, 0)
for b in (8, 16, 32, 64, 128, 256):
    try:
        r = rate(call, b, 2.0)
    except Exception as e:  # noqa: BLE001 (a batch past the exported range)
        emit(model=model, baseline_batch=b, error=repr(e)[:300])
        break
    emit(model=model, baseline_batch=b, samples_per_s=round(r, 1))
    if r > best[0]:
        best = (r, b)
baseline["program_best"], baseline["program_best_batch"] = best
emit(model=model, baseline=baseline)
del program, eager
torch.cuda.empty_cache()

# The daemon, serving only this model.
repo = tempfile.mkdtemp()
shutil.copytree(os.path.join(export_dir, "repo", model), os.path.join(repo, model))
log = open(os.path.join(os.environ.get("BENCH_LOG_DIR", "/tmp"), "bench_%s_inferd.log" % model),
           "w")
daemon = subprocess.Popen([os.path.join(bin_dir, "inferd"), "--grpc-listen=127.0.0.1:%d" % port,
                           "--metrics-listen=127.0.0.1:%d" % (port + 1),
                           "--model-repository=" + repo], stderr=log, env=tool_env)
try:
    for _ in range(600):
        if subprocess.run([os.path.join(bin_dir, "inferd"), "healthcheck",
                           "--grpc-target=127.0.0.1:%d" % port], capture_output=True,
                          env=tool_env).returncode == 0:
            break
        if daemon.poll() is not None:
            raise SystemExit("inferd exited; see its log")
        time.sleep(0.2)
    spec_args = ["--input=%s:%s:%s" % (n, dt, "x".join(str(d) for d in [1] + shape[1:]))
                 for n, dt, shape in inputs]
    served = []
    for c in levels:
        n = min(clients, c)
        smi = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu",
                                "--format=csv,noheader,nounits", "-i", "0", "-lms", "200"],
                               stdout=subprocess.PIPE, text=True)
        procs = [subprocess.Popen([os.path.join(bin_dir, "inferctl"),
                                   "--target=127.0.0.1:%d" % port, "bench", model] + spec_args +
                                  ["--concurrency=%d" % ((c + n - 1) // n), "--warmup=2",
                                   "--duration=%g" % secs, "--json"],
                                  stdout=subprocess.PIPE, text=True, env=tool_env)
                 for _ in range(n)]
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1])["result"] for p in procs]
        smi.terminate()
        util = [float(v) for v in smi.communicate()[0].split() if v.strip()]
        util = util[int(2 / 0.2):] or util  # the warm-up's samples left out
        qps = sum(r["qps"] for r in results)
        row = {"model": model, "concurrency": c, "clients": n, "samples_per_s": round(qps, 1),
               "p50_us": max(r["p50_us"] for r in results),
               "p99_us": max(r["p99_us"] for r in results),
               "errors": sum(r["errors"] for r in results),
               "gpu_busy": round(sum(util) / len(util) / 100, 3) if util else None}
        emit(**row)
        served.append(row)
    scrape = subprocess.run(["curl", "-s", "127.0.0.1:%d/metrics" % (port + 1)],
                            capture_output=True, text=True).stdout
    hist = [l for l in scrape.splitlines() if l.startswith("inferd_scheduler_batch_size")]
    emit(model=model, batch_size_histogram=hist)
finally:
    daemon.terminate()
    daemon.wait(timeout=60)
    shutil.rmtree(repo, ignore_errors=True)

top = max(served, key=lambda r: r["samples_per_s"])
one = next(r for r in served if r["concurrency"] == 1)
emit(model=model, summary={
    "served_best_samples_per_s": top["samples_per_s"], "at_concurrency": top["concurrency"],
    "gpu_busy_at_best": top["gpu_busy"],
    "vs_eager_b1": round(top["samples_per_s"] / baseline["eager_b1"], 2),
    "vs_program_best_batch": round(top["samples_per_s"] / baseline["program_best"], 3),
    "p99_at_1_us": one["p99_us"],
    "program_b1_call_us": round(baseline["program_b1_call_us"], 1),
    "p99_at_1_minus_call_us": round(one["p99_us"] - baseline["program_b1_call_us"], 1)})
