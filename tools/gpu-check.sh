#!/usr/bin/env bash
# GPU check: on this machine, pack the CUDA test and benchmark binaries built in $BUILD
# (default build-cuda) into .gpubuild/ (git-ignored; pass it as `carry`). On the GPU machine,
# run the GPU tests and benchmarks from .gpubuild/ and write logs + results.json under $OUT.
#   here:     bash tools/gpu-check.sh pack
#   there:    bash tools/gpu-check.sh run [--no-bench] [--bench-args "--preset qwen3-0.6b ..."]
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
shift || true

if [[ "$mode" == pack ]]; then
  build="${BUILD:-build-cuda}"
  cmake --build "$build" -j2 --target test_cuda bench_decode || exit 1
  rm -rf .gpubuild && mkdir -p .gpubuild/lib
  cp "$build/tests/test_cuda" "$build/bench/bench_decode" .gpubuild/
  strip .gpubuild/test_cuda .gpubuild/bench_decode
  # Host libraries the GPU machine may lack (CUDA's own libraries are there).
  for lib in libgomp.so.1; do cp -L "$(ldconfig -p | awk -v l=$lib '$1 == l {print $NF; exit}')" .gpubuild/lib/; done
  du -sh .gpubuild
  exit 0
fi

out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
run_bench=1
bench_args="--preset qwen3-0.6b --ctx 512,4096 --steps 128"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-bench) run_bench=0 ;;
    --bench-args) bench_args="$2"; shift ;;
  esac
  shift
done
export LD_LIBRARY_PATH="$PWD/.gpubuild/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv \
  >"$out/device.txt" 2>&1
ldd .gpubuild/test_cuda | grep -i "not found" && echo "missing libraries" | tee -a "$out/device.txt"

t0=$(date +%s)
.gpubuild/test_cuda --gtest_output=json:"$out/test_cuda.json" >"$out/test_cuda.log" 2>&1
test_rc=$?
t1=$(date +%s)
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]|greedy agreement" "$out/test_cuda.log" | tail -40

bench_rc=-1
if [[ $run_bench == 1 ]]; then
  # Eager launches, then one CUDA graph per decode step.
  for g in 0 1; do
    # shellcheck disable=SC2086
    .gpubuild/bench_decode $bench_args --graph $g --json "$out/bench_decode_g$g.json" 2>&1 |
      tee -a "$out/bench_decode.log"
    bench_rc=${PIPESTATUS[0]}
  done
fi

python3 - "$out" "$test_rc" "$bench_rc" "$((t1 - t0))" <<'PY'
import json, os, sys
out, test_rc, bench_rc, test_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
res = {"test_rc": test_rc, "bench_rc": bench_rc, "test_seconds": test_s}
try:
    t = json.load(open(os.path.join(out, "test_cuda.json")))
    res["tests"] = {"total": t.get("tests"), "failures": t.get("failures"),
                    "disabled": t.get("disabled")}
    res["failed"] = [f"{s['name']}.{c['name']}" for s in t["testsuites"] for c in s["testsuite"]
                     if c.get("failures")]
except Exception as e:  # the test binary crashed before writing its report
    res["tests_error"] = str(e)
res["bench_decode"] = []
for g in (0, 1):
    try:
        res["bench_decode"] += json.load(open(os.path.join(out, f"bench_decode_g{g}.json")))
    except Exception:
        pass
res["device"] = open(os.path.join(out, "device.txt")).read().strip()
json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=2)
print(json.dumps({k: v for k, v in res.items() if k != "bench_decode"}, indent=1))
PY
[[ $test_rc == 0 ]]
