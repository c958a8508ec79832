#!/usr/bin/env bash
# The README's test command: installs dependencies, fetches test vectors (npm), builds, and runs
# every test. GPU tests are labelled "gpu" and skip with a printed reason when no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
HARDKV_TEST_ASSETS="$(bash tools/fetch-test-assets.sh | tail -n 1)"
export HARDKV_TEST_ASSETS
bash scripts/build.sh
build="${HARDKV_BUILD_DIR:-build}"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 900
