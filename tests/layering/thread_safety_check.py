#!/usr/bin/env python3
"""Runs clang -fsyntax-only -Wthread-safety over every C++ source of core/,
server/ and clients/ with the flags from compile_commands.json; fails on any
thread-safety finding. GCC ignores the ABSL_GUARDED_BY family, so this is
where those annotations are checked. The CUDA layer's host sources
(core/device/cuda/, its mlp module) are in a CUDA build's compile commands,
with the toolkit's include path; a build without CUDA has none of them, and
the clang-tsa preset checks them where the toolkit's headers exist
(cmake/CudaThreadSafetyCheck.cmake)."""
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys

clang, build_dir = sys.argv[1], sys.argv[2]
src = os.getcwd()
entries = json.load(open(os.path.join(build_dir, "compile_commands.json")))
jobs = []
for e in entries:
    f = os.path.relpath(e["file"], src)
    if not f.endswith(".cc") or f.startswith(".."):
        continue
    if not f.startswith(("core/", "server/", "clients/")):
        continue
    args = shlex.split(e["command"]) if "command" in e else e["arguments"]
    keep = []
    for i, a in enumerate(args[1:], start=1):
        if a == "-isystem" and i + 1 < len(args):
            keep += ["-isystem", args[i + 1]]  # the path is the next argument
        elif a.startswith(("-I", "-D", "-std=")) or (a.startswith("-isystem") and a != "-isystem"):
            keep.append(a)
    cmd = [clang, "-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety",
           "-Wno-unknown-warning-option"] + keep + [e["file"]]
    jobs.append((f, cmd, e.get("directory", build_dir)))


def run(job):
    f, cmd, cwd = job
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    bad = [l for l in p.stderr.splitlines() if "thread-safety" in l or " error:" in l]
    return f, bad


failed = 0
with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
    for f, bad in pool.map(run, jobs):
        if bad:
            failed += 1
            print(f + ":\n  " + "\n  ".join(bad))
print(f"thread-safety analysis: {len(jobs) - failed} of {len(jobs)} files clean")
sys.exit(1 if failed else 0)
