#!/usr/bin/env bash
# greedy_check.sh BIN BACKEND OUT: greedy (--temperature 0) hard-mode eval runs on the first 6 trail
# problems, four configurations; run with cpu and cuda and compare the samples.jsonl texts.
bin=$1; be=$2; out=$3
M=models/hardkv-tiny
A="--model $M --dataset $M/synth_test.jsonl --samples 1 --seed 0 --max-tokens 1024 --temperature 0 --limit 6 --backend $be"
K="--kv-mode hard --window 32 --sinks 1 --interval 32 --obs-window 32 --page-size 16"
for cfg in "rkv hard 256" "snapkv uniform 512" "rkv hard 1024" "snapkv hard 256"; do
  set -- $cfg; n=g-$1-$2-$3; mkdir -p $out/$n
  t0=$SECONDS
  $bin eval $A $K --strategy $1 --allocation $2 --budget $3 --upper-budget $(($3*2)) --out-dir $out/$n > $out/$n/log.txt 2>&1
  echo "$n rc $? $((SECONDS-t0)) s"
done
