#!/usr/bin/env bash
# Runs TOOL ARGS... from the repository root; exits 77 (the deploy tests'
# CTest SKIP_RETURN_CODE) only when TOOL is not installed.
#   run_tool.sh REPO_ROOT TOOL [ARGS...]
set -euo pipefail
root=$1
tool=$2
shift 2
if ! command -v "$tool" >/dev/null 2>&1; then
  echo "SKIP: $tool is not installed (see scripts/setup.sh)"
  exit 77
fi
cd "$root"
exec "$tool" "$@"
