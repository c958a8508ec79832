#!/usr/bin/env bash
# The runs behind docs/QUALITY.md's tables: hardkv eval (synthetic set) and hardkv ppl (held-out
# text) for full attention and snapkv/rkv x uniform/hard x three budgets, into OUT/{acc,ppl}-*.
# usage: [ACC_BUDGETS="256 512 1024"] [ACC_LIMIT=0] [PPL_BUDGETS="128 256 512"] [PPL_CHUNKS=0] \
#   [ACC_EXTRA="--temperature 0"] [ONLY=REGEX] \
#   quality_runs.sh HARDKV_BINARY OUT_DIR BACKEND [acc|ppl|all]
# BACKEND: cpu or cuda (both run every configuration; CUDA's tiered attention covers head_dim 32
# since session 4). LIMIT/CHUNKS 0 = the whole set; ACC_EXTRA is appended to every eval command;
# ONLY (an extended regex) keeps the runs whose name matches (to run parts side by side).
set -uo pipefail
bin="$1"; out="$2"; backend="$3"; what="${4:-all}"
acc_budgets="${ACC_BUDGETS:-256 512 1024}"; ppl_budgets="${PPL_BUDGETS:-128 256 512}"
M=models/hardkv-tiny
K="--kv-mode hard --window 32 --sinks 1 --interval 32 --obs-window 32 --page-size 16"
run() {  # name, command...: skips runs already done (a summary exists), logs wall time
  local name="$1"; shift
  [[ -e "$out/$name/done" ]] && return 0
  [[ -n "${ONLY:-}" && ! "$name" =~ ^(${ONLY})$ ]] && return 0
  mkdir -p "$out/$name"
  local t0=$SECONDS
  "$@" --out-dir "$out/$name" > "$out/$name/log.txt" 2>&1 && touch "$out/$name/done"
  echo "$name: rc $? $((SECONDS - t0)) s"
}
if [[ "$what" != ppl ]]; then
  A="--model $M --dataset $M/synth_test.jsonl --samples 1 --seed 0 --max-tokens 1024 --backend $backend"
  A="$A --limit ${ACC_LIMIT:-0} ${ACC_EXTRA:-}"
  run acc-full "$bin" eval $A
  for b in $acc_budgets; do for s in snapkv rkv; do for a in uniform hard; do
    run "acc-$s-$a-$b" "$bin" eval $A $K --strategy $s --allocation $a --budget $b \
      --upper-budget $((2 * b)) --stats-out "$out/acc-$s-$a-$b/stats.json"
  done; done; done
fi
if [[ "$what" != acc ]]; then
  P="--model $M --text $M/heldout_sample.txt --chunk-len 1024 --prompt-len 32 --backend $backend"
  P="$P --max-chunks ${PPL_CHUNKS:-0}"
  run ppl-full "$bin" ppl $P
  for b in $ppl_budgets; do for s in snapkv rkv; do for a in uniform hard; do
    run "ppl-$s-$a-$b" "$bin" ppl $P $K --strategy $s --allocation $a --budget $b \
      --upper-budget $((2 * b)) --stats-out "$out/ppl-$s-$a-$b/stats.json"
  done; done; done
fi
