#!/usr/bin/env python3
"""Checks that AOTInductor packages load on this machine and, when they do
not, gathers what explains it: the compiler Inductor invokes, the C++
runtime the compiled wrapper was built with and the one the process loads.

    python3 torch_aoti_probe.py WORKDIR

Compiles a 64->128->8 MLP for the CPU (and CUDA when present) with
torch.export + aoti_compile_and_package, then loads and runs each package
in a child process (a crash must not end the probe) under each variant:
  default     plain python3
  preload     LD_PRELOAD of the libstdc++ that g++ links against
  package_env the library path of a shell that sourced inferd's package
Prints one JSON object per check and a summary at the end.
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import torch
from torch import nn

work = os.path.abspath(sys.argv[1])
os.makedirs(work, exist_ok=True)


def sh(cmd):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()


facts = {
    "torch": torch.__version__,
    "cxx11_abi": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
    "gxx": sh("g++ --version | head -1"),
    "which_gxx": sh("command -v g++ c++ gcc clang++ | tr '\\n' ' '"),
    "CXX_env": os.environ.get("CXX", ""),
    "inductor_cpp_cxx": str(torch._inductor.config.cpp.cxx),
    "gxx_libstdcxx": sh("g++ -print-file-name=libstdc++.so.6"),
    "system_libstdcxx": sh("ls -l /usr/lib/x86_64-linux-gnu/libstdc++.so.6* 2>&1 | head -3"),
    "torch_built_with": [l.strip() for l in torch.__config__.show().splitlines()
                         if "compiler" in l.lower() or "CXX_FLAGS" in l][:3],
    "libstdcxx_in_process": sorted({l.split()[-1] for l in open("/proc/self/maps")
                                    if "libstdc++" in l}),
    "libstdcxx_copies": sh("find / -xdev -name 'libstdc++.so.6*' 2>/dev/null | head -20").split(),
}
print(json.dumps({"facts": facts}), flush=True)

torch.manual_seed(0)
mlp = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 8)).eval()
devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
packages = {}
for dev in devices:
    m = mlp.to(dev)
    x = torch.randn(4, 64, device=dev)
    batch = torch.export.Dim("batch", min=1, max=64)
    path = os.path.join(work, "probe_%s.pt2" % dev)
    try:
        ep = torch.export.export(m, (x,), dynamic_shapes={"input": {0: batch}})
        torch._inductor.aoti_compile_and_package(ep, package_path=path)
        packages[dev] = path
        with zipfile.ZipFile(path) as z:
            sos = [n for n in z.namelist() if n.endswith(".so")]
            z.extractall(os.path.join(work, "unz_" + dev))
        so = os.path.join(work, "unz_" + dev, sos[0]) if sos else ""
        print(json.dumps({"compiled": dev, "files": sos,
                          "comment": sh("readelf -p .comment '%s' | tail -n +2" % so),
                          "needed": sh("readelf -d '%s' | grep NEEDED" % so),
                          "static_libstdcxx_symbols": sh(
                              "nm -C --defined-only '%s' 2>/dev/null | grep -c 'std::locale::'" % so)}),
              flush=True)
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"compiled": dev, "error": repr(e)[:2000]}), flush=True)

child = r'''
import sys, torch
pkg, dev = sys.argv[1], sys.argv[2]
m = torch._inductor.aoti_load_package(pkg)
x = torch.randn(3, 64, device=dev)
y = m(x)
print("ok", tuple(y.shape))
print("maps", sorted({l.split()[-1] for l in open("/proc/self/maps") if "libstdc++" in l}))
'''
variants = {"default": {}}
if os.environ.get("INFERD_LD_LIBRARY_PATH"):  # as a shell with inferd's package set up
    variants["package_env"] = {"LD_LIBRARY_PATH": os.environ["INFERD_LD_LIBRARY_PATH"]}
preload = facts["gxx_libstdcxx"]
if os.path.isabs(preload) and os.path.exists(preload):
    variants["preload"] = {"LD_PRELOAD": os.path.realpath(preload)}
summary = {}
for dev, pkg in packages.items():
    for name, extra in variants.items():
        env = dict(os.environ, **extra)
        r = subprocess.run([sys.executable, "-c", child, pkg, dev], capture_output=True, text=True,
                           env=env, timeout=300)
        summary["%s/%s" % (dev, name)] = r.returncode
        print(json.dumps({"load": dev, "variant": name, "rc": r.returncode,
                          "out": r.stdout[-600:], "err": r.stderr[-1500:]}), flush=True)
print(json.dumps({"summary": summary}), flush=True)
shutil.rmtree(os.path.join(work, "unz_cpu"), ignore_errors=True)
