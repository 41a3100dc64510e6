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
lines; the last one sums up the ratios. BENCH_INSTANCES (e.g. "2,1,4")
serves the model with each torch.instances_per_device in turn: the first
over every level, the others over BENCH_MORE_LEVELS; each row names it.
A variant "I:G" also sets scheduler.batch_gather_threads to G (e.g.
"1,1:1,2": one instance with the default gather threads, then with one);
"I:G:g" (G may be empty) also sets torch.cuda_graphs: true ("1::g,1":
with CUDA graphs over every level, then without over the high ones).
Each row also carries the daemon's cores in use (per thread name), its
CPU per request, and the model's mean batch and per-request queue and
compute times from ModelStatistics over that level.
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
levels = [int(c) for c in
          (sys.argv[3] if len(sys.argv) > 3 else "1,8,32,128,256,512,1024").split(",")]
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


def thread_cpu(pid):
    """{tid: (name, cpu seconds)} of every thread of a process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            s = open("/proc/%d/task/%s/stat" % (pid, tid)).read()
        except OSError:
            continue
        name = s[s.index("(") + 1:s.rindex(")")]
        f = s[s.rindex(")") + 2:].split()
        out[tid] = (name, (int(f[11]) + int(f[12])) / tick)
    return out


def cpu_summary(before, after, wall, qps):
    """The daemon's cores in use over a level, per thread name (summed) and
    its busiest threads, and its CPU per request."""
    per_thread = sorted(((after[t][1] - before.get(t, (None, 0.0))[1]) / wall, after[t][0], t)
                        for t in after)
    per_thread.reverse()
    by_name = {}
    for cores, name, _ in per_thread:
        n, c = by_name.get(name, (0, 0.0))
        by_name[name] = (n + 1, c + cores)
    total = sum(c for c, _, _ in per_thread)
    return {"daemon_cores": round(total, 2),
            "daemon_cpu_us_per_request": round(total / qps * 1e6, 1) if qps else None,
            "busiest_threads": [[name, round(c, 2)] for c, name, _ in per_thread[:6]],
            "threads_by_name": {k: [n, round(c, 2)] for k, (n, c) in
                                sorted(by_name.items(), key=lambda kv: -kv[1][1])[:8]}}


def model_stats():
    """The served model's ModelStatistics, as inferctl prints them in JSON."""
    r = subprocess.run([os.path.join(bin_dir, "inferctl"), "--target=127.0.0.1:%d" % port,
                        "stats", "models", "--model=" + model, "--json"],
                       capture_output=True, text=True, env=tool_env)
    try:
        return json.loads(r.stdout)["model_stats"][0]
    except (ValueError, KeyError, IndexError):
        return {}


def stats_delta(a, b):
    """Mean batch and per-execution phase times between two statistics."""
    def n(d, *path):
        for k in path:
            d = d.get(k, {}) if isinstance(d, dict) else {}
        return int(d) if not isinstance(d, dict) else 0
    execs = n(b, "execution_count") - n(a, "execution_count")
    infers = n(b, "inference_count") - n(a, "inference_count")
    if execs <= 0:
        return {}
    out = {"executions": execs, "mean_batch": round(infers / execs, 2)}
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        ns = n(b, "inference_stats", phase, "ns") - n(a, "inference_stats", phase, "ns")
        cnt = n(b, "inference_stats", phase, "count") - n(a, "inference_stats", phase, "count")
        out[phase + "_us_per_request"] = round(ns / cnt / 1e3, 1) if cnt else None
    return out


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

def serve(instances, gather, graphs, levels):
    """Starts the daemon serving only this model with torch.instances_per_device
    = `instances` (None: as exported), scheduler.batch_gather_threads =
    `gather` (None: the default) and torch.cuda_graphs = `graphs`, runs the
    levels, returns their rows."""
    repo = tempfile.mkdtemp()
    config_args = []
    if gather is not None:
        with open(os.path.join(repo, "inferd.yaml"), "w") as f:
            f.write("scheduler:\n  batch_gather_threads: %d\n" % gather)
        config_args = ["--config=" + os.path.join(repo, "inferd.yaml")]
    dst = os.path.join(repo, model)
    shutil.copytree(os.path.join(export_dir, "repo", model), dst)
    cfg = os.path.join(dst, "config.yaml")
    text = open(cfg).read()
    if instances is not None:
        text = text.replace("torch: {", "torch: {instances_per_device: %d, " % instances)
    if graphs:
        text = text.replace("torch: {", "torch: {cuda_graphs: true, ")
    open(cfg, "w").write(text)
    load_start = time.perf_counter()
    log = open(os.path.join(os.environ.get("BENCH_LOG_DIR", "/tmp"),
                            "bench_%s_inferd.log" % model), "a")
    daemon = subprocess.Popen([os.path.join(bin_dir, "inferd"),
                               "--grpc-listen=127.0.0.1:%d" % port,
                               "--metrics-listen=127.0.0.1:%d" % (port + 1),
                               "--model-repository=" + repo] + config_args,
                              stderr=log, env=tool_env)
    served = []
    try:
        for _ in range(600):
            if subprocess.run([os.path.join(bin_dir, "inferd"), "healthcheck",
                               "--grpc-target=127.0.0.1:%d" % port], capture_output=True,
                              env=tool_env).returncode == 0:
                break
            if daemon.poll() is not None:
                raise SystemExit("inferd exited; see its log")
            time.sleep(0.2)
        emit(model=model, instances=instances, gather_threads=gather, cuda_graphs=graphs,
             load_seconds=round(time.perf_counter() - load_start, 1))
        spec_args = ["--input=%s:%s:%s" % (n, dt, "x".join(str(d) for d in [1] + shape[1:]))
                     for n, dt, shape in inputs]
        for c in levels:
            n = min(clients, c)
            smi = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu",
                                    "--format=csv,noheader,nounits", "-i", "0", "-lms", "200"],
                                   stdout=subprocess.PIPE, text=True)
            threads_before, wall0 = thread_cpu(daemon.pid), time.perf_counter()
            stats_before = model_stats()
            procs = [subprocess.Popen([os.path.join(bin_dir, "inferctl"),
                                       "--target=127.0.0.1:%d" % port, "bench", model] +
                                      spec_args +
                                      ["--concurrency=%d" % ((c + n - 1) // n), "--warmup=2",
                                       "--duration=%g" % secs, "--json"],
                                      stdout=subprocess.PIPE, text=True, env=tool_env)
                     for _ in range(n)]
            levels_out = [json.loads(p.communicate()[0].strip().splitlines()[-1])["levels"][0]
                          for p in procs]
            results = [l["result"] for l in levels_out]
            threads_after, wall = thread_cpu(daemon.pid), time.perf_counter() - wall0
            stats_after = model_stats()
            smi.terminate()
            util = [float(v) for v in smi.communicate()[0].split() if v.strip()]
            util = util[int(2 / 0.2):] or util  # the warm-up's samples left out
            qps = sum(r["qps"] for r in results)
            row = {"model": model, "instances": instances, "gather_threads": gather,
                   "cuda_graphs": graphs,
                   "concurrency": c, "clients": n,
                   "samples_per_s": round(qps, 1),
                   "p50_us": max(r["p50_us"] for r in results),
                   "p99_us": max(r["p99_us"] for r in results),
                   "errors": sum(r["errors"] for r in results),
                   "gpu_busy": round(sum(util) / len(util) / 100, 3) if util else None,
                   "server_queue_us": max((l["server_queue_us"] or 0) for l in levels_out),
                   "server_compute_us": max((l["server_compute_us"] or 0) for l in levels_out)}
            row.update(stats_delta(stats_before, stats_after))
            row.update(cpu_summary(threads_before, threads_after, wall, qps))
            emit(**row)
            served.append(row)
        scrape = subprocess.run(["curl", "-s", "127.0.0.1:%d/metrics" % (port + 1)],
                                capture_output=True, text=True).stdout
        hist = [l for l in scrape.splitlines() if l.startswith("inferd_scheduler_batch_size")]
        emit(model=model, instances=instances, gather_threads=gather, cuda_graphs=graphs,
             batch_size_histogram=hist)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        shutil.rmtree(repo, ignore_errors=True)
    return served


# The daemon, serving only this model: the full sweep with the first
# instance count (BENCH_INSTANCES, "" = as exported), then the high levels
# (BENCH_MORE_LEVELS) with each other one.
def variant(text):  # "I", "I:G" or "I:G:g"; "" = as exported
    parts = (text.split(":") + ["", ""])[:3]
    i, g, flags = parts
    return (int(i) if i else None, int(g) if g else None, "g" in flags)


variants = [variant(v) for v in os.environ.get("BENCH_INSTANCES", "").split(",")]
more = [int(c) for c in os.environ.get("BENCH_MORE_LEVELS", "128,512,1024").split(",")]
served = serve(*variants[0], levels)
for v in variants[1:]:
    served += serve(*v, more)

top = max(served, key=lambda r: r["samples_per_s"])
one = next(r for r in served if r["concurrency"] == 1)
emit(model=model, summary={
    "served_best_samples_per_s": top["samples_per_s"], "at_concurrency": top["concurrency"],
    "instances_at_best": top["instances"],
    "cuda_graphs_at_best": top["cuda_graphs"],
    "cuda_graphs_at_1": one["cuda_graphs"],
    "gather_threads_at_best": top["gather_threads"],
    "gpu_busy_at_best": top["gpu_busy"],
    "vs_eager_b1": round(top["samples_per_s"] / baseline["eager_b1"], 2),
    "vs_program_best_batch": round(top["samples_per_s"] / baseline["program_best"], 3),
    "p99_at_1_us": one["p99_us"],
    "program_b1_call_us": round(baseline["program_b1_call_us"], 1),
    "p99_at_1_minus_call_us": round(one["p99_us"] - baseline["program_b1_call_us"], 1)})
