#!/usr/bin/env bash
# On the GPU machine: checks and measures session 8's sampling paths (one-pass temperature rows,
# results written by the kernel into mapped pinned slots, the plain greedy kernel; all switched by
# HARDKV_SAMPLE_ONE_PASS / _MAPPED / _GREEDY_LEAN) against the old paths, in one machine start.
#   here:  bash tools/pack-gpu.sh .gpubuild/s8 build hardkv tests/test_cuda bench/bench_decode \
#            bench/bench_sampling
#   there: bash tools/gpu-sampling-ab.sh .gpubuild/s8   (logs under $OUT)
# Order: GPU tests (sampling, ops, graphs, engine, parity) first, then batch-1 decode with the
# step parts (--gap), then the nano-vLLM workload alternated new / old / new + skinny GEMM / old,
# then the sampling kernel alone.
set -uo pipefail
pack="$1"
out="${OUT:-/tmp/gpu-sampling-ab}"
mkdir -p "$out" "$pack/bin"
tar xJf "$pack/bins.tar.xz" -C "$pack/bin"
export LD_LIBRARY_PATH="$PWD/$pack/bin/lib:${LD_LIBRARY_PATH:-}"
bin="$PWD/$pack/bin"
new=(HARDKV_SAMPLE_ONE_PASS=1 HARDKV_SAMPLE_MAPPED=1 HARDKV_SAMPLE_GREEDY_LEAN=1)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/device.txt"
("$bin/hardkv" make-model --preset qwen3-0.6b --random --out /tmp/q06 --seed 0 >/dev/null) &
# test_cuda switches the new paths on itself (tests/cuda/sampling_test.cc).
timeout 300 "$bin/test_cuda" --gtest_brief=1 \
  --gtest_filter='CudaSampl*:CudaOps*:CudaEngine*:CudaGraph*:GemvLean*:ModelParity*' \
  >"$out/test_cuda.log" 2>&1
echo "test_cuda rc $?" | tee -a "$out/device.txt"
grep -E "FAILED|PASSED|sampling:|greedy without" "$out/test_cuda.log" | tail -15
wait
b1=(--preset qwen3-0.6b --dir /tmp/q06 --steps 64 --graph 1 --sample gpu --overlap 1)
env "${new[@]}" "$bin/bench_decode" "${b1[@]}" --ctx 512,4096 --gap 1 2>&1 | tee "$out/b1.txt"
env HARDKV_SAMPLE_MAPPED=1 "$bin/bench_decode" "${b1[@]}" --ctx 512 --gap 1 2>&1 |
  sed 's/^/mapped only: /' | tee -a "$out/b1.txt"
"$bin/bench_decode" "${b1[@]}" --ctx 512 --gap 1 2>&1 | sed 's/^/old: /' | tee -a "$out/b1.txt"
bench=(-m /tmp/q06 --backend cuda --num-seqs 256 --input-len 100:1024 --output-len 100:1024 --seed 0)
run() {
  echo "== $*"
  env "$@" "$bin/hardkv" bench "${bench[@]}" 2>&1 | tail -2
}
{
  run "${new[@]}"
  run X=0
  run "${new[@]}" HARDKV_GEMM_SKINNY=1
  run X=0
} 2>&1 | tee "$out/bench.txt"
env "${new[@]}" timeout 60 "$bin/bench_sampling" --rows 1,137,256 --iters 20 --no-host 2>&1 |
  tee "$out/sampling.txt"
timeout 60 "$bin/bench_sampling" --rows 1,137,256 --iters 20 --no-host 2>&1 | sed 's/^/old: /' |
  tee -a "$out/sampling.txt"
