#!/usr/bin/env bash
# Installs the Debian packages inferd needs to build, test and lint.
# Idempotent: packages already present are skipped. Run as root; when not
# root it prints the exact command to run instead.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libyaml-cpp-dev prometheus-cpp-dev libcivetweb-dev zlib1g-dev libjemalloc-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  prometheus
  python3 python3-grpcio python3-grpc-tools python3-protobuf python3-yaml python3-pytest
  libtorch-dev python3-torch
  yamllint clang clang-14 libclang-rt-14-dev
)

# Offline Kubernetes schemas for the deploy checks (npm registry packages).
install_npm_deps() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/deploy"
  if [[ -f "$dir/package-lock.json" && ! -d "$dir/node_modules" ]] && command -v npm >/dev/null; then
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  install_npm_deps
  exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages; run as root:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_npm_deps
