#!/usr/bin/env bash
# HARD-KV benchmarks on the GPU machine (docs/BENCHMARKS_HARDKV.md), from binaries packed by
# tools/pack-gpu.sh into $BIN (hardkv, optionally test_cuda). Writes logs and --stats-out JSON under
# $OUT. Usage: tools/bench-hard-kv.sh BIN_DIR [tests] [events] [long] [step16k] ...
#   tests    the full GPU test binary
#   events   64 seqs x (128 prompt + 1,536 output), Qwen3-0.6B shapes, hard (event costs)
#   long     64 seqs x (128 + 8,192 output), Qwen3-0.6B shapes: hard vs dense, peak KV, plots
#   step16k  Qwen3-8B shapes, 16k-token prompts + 256 output: decode step hard (32, 64 seqs) vs
#            dense (16 seqs, the most whose 16k KV fits next to the weights on an H100)
set -uo pipefail
bin="$1"; shift
out="${OUT:-/tmp/hard-kv-bench}"
mkdir -p "$out"
[[ -x "$bin/hardkv" ]] || tar xJf "$bin/bins.tar.xz" -C "$bin"
export LD_LIBRARY_PATH="$PWD/$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
hk="$bin/hardkv"
q06=/tmp/q06 q8=/tmp/q8
[[ -d $q06 ]] || "$hk" make-model --preset qwen3-0.6b --random --out $q06 --seed 0 >/dev/null
hard="--kv-mode hard --strategy snapkv --allocation hard"
for what in "$@"; do
  case "$what" in
    tests)
      timeout 400 "$bin/test_cuda" ${TEST_FILTER:+--gtest_filter=$TEST_FILTER} >"$out/test_cuda.log" 2>&1
      echo "test_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) " "$out/test_cuda.log" ;;
    events)
      timeout 200 "$hk" bench -m $q06 --backend cuda --num-seqs 64 --input-len 128 \
        --output-len 1536 --max-model-len 8448 $hard --stats-out "$out/events.json" 2>&1 | tail -3 ;;
    long)
      c="$hk bench -m $q06 --backend cuda --num-seqs 64 --input-len 128 --output-len 8192 --max-model-len 8448"
      timeout 280 $c $hard --stats-out "$out/long_hard.json" 2>&1 | tail -3
      timeout 200 $c --kv-mode dense 2>&1 | tail -2
      python3 tools/plot_kv_stats.py "$out/long_hard.json" --out-prefix "$out/long_hard" ;;
    step16k)
      [[ -d $q8 ]] || "$hk" make-model --preset qwen3-8b --random --out $q8 --seed 0 >/dev/null
      c="$hk bench -m $q8 --backend cuda --input-len 16384 --output-len 256 --max-model-len 16640"
      for n in 32 64; do
        timeout 200 $c --num-seqs $n $hard --upper-budget 2048 --stats-out "$out/step16k_$n.json" 2>&1 | tail -3
      done
      timeout 150 $c --num-seqs 16 --kv-mode dense 2>&1 | tail -2 ;;
    *) echo "unknown: $what" ;;
  esac
done
