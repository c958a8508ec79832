#!/usr/bin/env bash
# Configures and builds hardkv into ${HARDKV_BUILD_DIR:-build} (Release; CUDA when nvcc exists).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${HARDKV_BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${HARDKV_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
