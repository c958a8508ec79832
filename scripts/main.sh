#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, then runs the main job on the embedded
# default model (models/hardkv-tiny, the project's own 7.9M-parameter Qwen3-architecture model):
#   1. generates a continuation of a prompt (argument 1, optional), streamed to stdout;
#   2. evaluates it on the first 8 problems of its synthetic long-reasoning test set and prints
#      the accuracy table (build/eval-main/summary.md).
# HARDKV_MODEL=/path/to/hf-model uses another checkpoint for step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
build="${HARDKV_BUILD_DIR:-build}"
model="${HARDKV_MODEL:-models/hardkv-tiny}"
echo "== generate ($model)"
"$build/hardkv" generate -m "$model" -p "${1:-It is a truth universally acknowledged}" \
  --max-tokens 96 --temperature 0.6 --top-k 20 --top-p 0.95 --seed 0
echo "== eval (models/hardkv-tiny on 8 synthetic long-reasoning problems)"
"$build/hardkv" eval --model models/hardkv-tiny --dataset models/hardkv-tiny/synth_test.jsonl \
  --limit 8 --seed 0 --out-dir "$build/eval-main"
cat "$build/eval-main/summary.md"
