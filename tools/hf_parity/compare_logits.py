#!/usr/bin/env python3
"""Compares hardkv's logits dump (bench_dump_logits) with HF transformers on the same checkpoint.

  python3 compare_logits.py MODEL_DIR LOGITS.f32 [--json OUT.json]

Runs transformers in fp32 (the reference) and in bf16 (what bf16-level error looks like for this
model) on the dump's tokens and prints top-1 agreement and logit errors of hardkv and of HF bf16
against the fp32 reference. Needs torch + transformers (the GPU machine has them).
"""
import argparse
import json
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def hf_logits(model_dir, tokens, dtype):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).cuda().eval()
    with torch.no_grad():
        out = model(torch.tensor(tokens, device="cuda")[None, :]).logits[0].float().cpu()
    del model
    torch.cuda.empty_cache()
    return out.numpy()


def stats(ref, got):
    diff = np.abs(ref - got)
    return {
        "top1_agreement": float(np.mean(ref.argmax(-1) == got.argmax(-1))),
        "max_abs_err": float(diff.max()),
        "max_abs_err_over_max_abs_logit": float(diff.max() / np.abs(ref).max()),
        "mean_abs_err": float(diff.mean()),
        "rms_err_over_rms_logit": float(np.sqrt((diff ** 2).mean() / (ref ** 2).mean())),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("logits")
    ap.add_argument("--json")
    a = ap.parse_args()
    tokens = np.fromfile(a.logits + ".tokens", dtype=np.int32).tolist()
    got = np.fromfile(a.logits, dtype=np.float32).reshape(len(tokens), -1)
    ref = hf_logits(a.model_dir, tokens, torch.float32)
    bf16 = hf_logits(a.model_dir, tokens, torch.bfloat16)
    # Positions where fp32's top-2 margin is below HF bf16's own error are coin flips for any bf16
    # engine; report agreement on the others too.
    top2 = np.sort(ref, axis=-1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    clear = margin > np.abs(ref - bf16).max(axis=-1)
    res = {
        "positions": len(tokens),
        "vocab": int(ref.shape[1]),
        "hardkv_vs_hf_fp32": stats(ref, got),
        "hf_bf16_vs_hf_fp32": stats(ref, bf16),
        "positions_with_clear_top1": int(clear.sum()),
        "hardkv_top1_agreement_on_clear": float(np.mean((ref.argmax(-1) == got.argmax(-1))[clear])),
    }
    print(json.dumps(res, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
