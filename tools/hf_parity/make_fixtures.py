#!/usr/bin/env python3
"""Creates tiny random-weight HF checkpoints (one per feature combination) and records what
HuggingFace transformers computes on them: full-sequence fp32 logits for a few prompts and 32-token
greedy continuations. Run where torch + transformers 5.x are installed (the GPU machine); the
output directory is committed as tests/fixtures/hf/ and checked by tests/model/hf_parity_test.cc.

  python3 tools/hf_parity/make_fixtures.py --out tests/fixtures/hf

Per fixture <name>/: config.json, generation_config.json, model.safetensors (fp32, from
save_pretrained) and reference.safetensors with, for each prompt i:
  prompt_i_ids     I64 [T]      random token ids
  prompt_i_logits  F32 [T, V]   transformers' logits for every prompt position
  prompt_i_greedy  I64 [32]     transformers' greedy continuation (no EOS stop)
  prompt_i_gap     F32 [32]     top-1 minus top-2 logit at each greedy step (tie margin)
"""
import argparse
import json
import os

import torch
import transformers
from safetensors.torch import save_file

FIXTURES = {
    # Qwen3: q/k RMSNorm, head_dim != hidden/heads, GQA 2:1, tied embeddings.
    "qwen3": ("Qwen3ForCausalLM", transformers.Qwen3Config, dict(
        vocab_size=384, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=512,
        rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    # Qwen2: qkv bias, GQA 4:1, untied.
    "qwen2": ("Qwen2ForCausalLM", transformers.Qwen2Config, dict(
        vocab_size=384, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=512,
        rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    # Llama 3.x: llama3 rope scaling, GQA 4:1, untied; config written in the classic form.
    "llama3": ("LlamaForCausalLM", transformers.LlamaConfig, dict(
        vocab_size=384, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=512,
        rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64})),
    # Llama-2 / TinyLlama style, plus attention and MLP biases, tied embeddings.
    "llama2_bias": ("LlamaForCausalLM", transformers.LlamaConfig, dict(
        vocab_size=384, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
        rms_norm_eps=1e-5, tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
}
PROMPT_LENS = [5, 19, 37]
NEW_TOKENS = 32


def classic_rope_form(config_path):
    """Rewrites transformers 5's rope_parameters into rope_theta + rope_scaling (the form found
    in published Llama 3 checkpoints), so both forms are covered by the fixtures."""
    with open(config_path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp.pop("rope_theta")
    if rp.get("rope_type", "default") != "default":
        cfg["rope_scaling"] = rp
    with open(config_path, "w") as f:
        json.dump(cfg, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    for name, (arch, config_cls, kw) in FIXTURES.items():
        cfg = config_cls(**kw, initializer_range=0.25, bos_token_id=1, eos_token_id=2,
                         pad_token_id=None)
        model = getattr(transformers, arch)(cfg).float().eval()
        with torch.no_grad():  # norms away from 1 so the tests see them
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    p.copy_(1.0 + 0.3 * torch.randn_like(p))
                elif pname.endswith("bias"):
                    p.copy_(0.2 * torch.randn_like(p))
        d = os.path.join(args.out, name)
        model.save_pretrained(d, safe_serialization=True)
        if name == "llama3":
            classic_rope_form(os.path.join(d, "config.json"))
        ref = {}
        gen = torch.Generator().manual_seed(args.seed + len(name))
        for i, n in enumerate(PROMPT_LENS):
            ids = torch.randint(0, cfg.vocab_size, (1, n), generator=gen)
            with torch.no_grad():
                logits = model(ids).logits[0].float()
                seq = ids
                greedy, gaps = [], []
                for _ in range(NEW_TOKENS):  # explicit loop: no EOS stop, full logits each step
                    step = model(seq).logits[0, -1].float()
                    top2 = torch.topk(step, 2).values
                    nxt = int(torch.argmax(step))
                    greedy.append(nxt)
                    gaps.append(float(top2[0] - top2[1]))
                    seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
            ref[f"prompt_{i}_ids"] = ids[0].to(torch.int64)
            ref[f"prompt_{i}_logits"] = logits.contiguous()
            ref[f"prompt_{i}_greedy"] = torch.tensor(greedy, dtype=torch.int64)
            ref[f"prompt_{i}_gap"] = torch.tensor(gaps, dtype=torch.float32)
            print(f"{name} prompt {i}: len {n}, max|logit| {logits.abs().max():.3f}, "
                  f"min greedy gap {min(gaps):.2e}")
        save_file(ref, os.path.join(d, "reference.safetensors"),
                  metadata={"transformers": transformers.__version__,
                            "torch": torch.__version__, "seed": str(args.seed)})


if __name__ == "__main__":
    main()
