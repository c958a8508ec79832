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
rc=0
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 900 | tee "$build/ctest.out" ||
  rc=$?
# ctest hides the output of tests that did not fail: print why each skipped test skipped, then
# repeat ctest's summary so that it stays the last thing printed.
log="$build/Testing/Temporary/LastTest.log"
if [ -f "$log" ] && grep -q ": Skipped$" "$log"; then
  echo "Skip reasons (count, reason):"
  grep -A1 ": Skipped$" "$log" | grep -v -e "^--$" -e ": Skipped$" | sort | uniq -c
  grep -E "tests passed|Total Test time" "$build/ctest.out" || true
fi
exit "$rc"
