#!/usr/bin/env python3
"""Shows that k8s_schema_check.mjs can fail: every manifest in
testdata/k8s_invalid/ must be rejected with the message its
"# expect:" line names. Exits 77 (CTest skip) when node or the schema
packages are missing, like the checker itself."""

import glob
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77


def main() -> int:
    node = shutil.which("node")
    if node is None:
        print("SKIP: node is not installed")
        return SKIP
    checker = os.path.join(HERE, "k8s_schema_check.mjs")
    cases = sorted(glob.glob(os.path.join(HERE, "testdata", "k8s_invalid", "*.yaml")))
    failures = 0
    for case in cases:
        with open(case, encoding="utf-8") as f:
            expect = next(line.split("expect:", 1)[1].strip() for line in f if "# expect:" in line)
        run = subprocess.run([node, checker, case], capture_output=True, text=True, check=False)
        if run.returncode == SKIP:
            print(run.stdout.strip())
            return SKIP
        name = os.path.basename(case)
        if run.returncode != 1 or expect not in run.stdout:
            failures += 1
            print(f"FAIL {name}: exit {run.returncode}, expected a line with {expect!r}, got:\n{run.stdout}{run.stderr}")
        else:
            print(f"ok   {name}: rejected ({expect})")
    print(f"{len(cases) - failures} passed, {failures} failed")
    return 1 if failures or not cases else 0


if __name__ == "__main__":
    sys.exit(main())
