#!/usr/bin/env bash
# setup.sh — quick start, step 1 on a fresh Debian 12 machine: install the build
# dependencies (Debian packages), build zmlx into build/, and run the main job on the
# builtin default model (no download): `zmlx validate`, baseline vs the family preset of
# fused patterns, with its fidelity verdict and speedup.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config libjansson-dev libpcre2-dev clang libclang-rt-14-dev python3)
# Open MPI: zmlx-mpi, the launcher of one process per GPU across nodes (tests/mpi_launch.sh)
pkgs+=(libopenmpi-dev openmpi-bin)
# the test suite renders `zmlx matrix html` in headless Chromium, and cross-compiles the
# CPU kernels for aarch64 to run their tests under qemu (tests/cross_aarch64.sh)
[ "${ZMLX_SETUP_TESTS:-1}" = 1 ] && pkgs+=(chromium)
[ "${ZMLX_SETUP_TESTS:-1}" = 1 ] && [ "$(uname -m)" = x86_64 ] &&
    pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"

if [ "${ZMLX_SETUP_NO_DEMO:-0}" != 1 ]; then
    echo
    echo "== zmlx validate: builtin:glm47-mini (random weights), baseline vs the GLM preset =="
    ./build/zmlx validate
fi
