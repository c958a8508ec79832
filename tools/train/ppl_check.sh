#!/usr/bin/env bash
# ppl_check.sh BIN BACKEND OUT: teacher-forced hard-mode NLL on 4 held-out chunks (CPU vs CUDA).
bin=$1; be=$2; out=$3
M=models/hardkv-tiny
P="--model $M --text $M/heldout_sample.txt --chunk-len 1024 --prompt-len 32 --backend $be --max-chunks 4"
K="--kv-mode hard --window 32 --sinks 1 --interval 32 --obs-window 32 --page-size 16"
for cfg in "snapkv hard 128" "rkv uniform 128"; do
  set -- $cfg; n=p-$1-$2-$3; mkdir -p $out/$n
  t0=$SECONDS
  $bin ppl $P $K --strategy $1 --allocation $2 --budget $3 --upper-budget $(($3*2)) --out-dir $out/$n > $out/$n/log.txt 2>&1
  echo "$n rc $? $((SECONDS-t0)) s"
done
