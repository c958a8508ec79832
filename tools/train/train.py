#!/usr/bin/env python3
"""Trains hardkv-tiny: a small Qwen3ForCausalLM with its own byte-level BPE tokenizer.

Data: the English corpus from extract_corpus.py (train.txt.gz / heldout.txt.gz) mixed with
synthetic variable-tracking tasks from synth.py rendered as Qwen3 ChatML conversations
(user: problem; assistant: "<think>...steps...</think>\\n\\n... \\boxed{N}"), loss on the assistant
part only. Writes, into --out (flat, so it fits the device tool's $OUT): config.json,
model.safetensors (bf16, tied embeddings), generation_config.json, tokenizer.json,
tokenizer_config.json (with the Qwen3 chat template), metrics.json (held-out perplexity,
synthetic accuracy by transformers' generate, step count, timings) and samples.jsonl (the
generated test responses as {id, text}, gradable with `hardkv grade`).

Needs torch, transformers and tokenizers (the GPU machine has them). Example:
  python3 tools/train/train.py --corpus .cache/corpus --out /tmp/tiny --minutes 5.5 --seed 0
"""
import argparse
import gzip
import json
import math
import os
import random
import re
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth  # noqa: E402

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# The pre-tokenizer regex of Qwen2/Qwen3's tokenizer.json (digits split one by one).
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_docs(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [d for d in f.read().split("\n\n\n") if d.strip()]  # documents end in a blank line


def synth_rows(n, seed, min_vars, max_vars):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        problem, answer, solution = synth.make_problem(
            rng, rng.randint(min_vars, max_vars), 10, ["+", "-"], "random", 2)
        rows.append({"id": f"synth-{i}", "problem": problem, "answer": answer, "solution": solution})
    return rows


def chat_prompt(problem):
    return f"<|im_start|>user\n{problem}<|im_end|>\n<|im_start|>assistant\n"


# --- tokenizer -------------------------------------------------------------------------------------
def train_tokenizer(texts, vocab_size):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    try:  # Qwen's files spell out these flags; older tokenizers versions take fewer arguments
        tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                                  use_regex=False)
        tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    except TypeError:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS), min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)  # ids after the BPE vocabulary, as in Qwen's files
    return tok


def write_tokenizer_config(out, tok, max_len):
    with open(os.path.join(HERE, "qwen3_chat_template.jinja"), encoding="utf-8") as f:
        template = f.read()
    added = {}
    for t in SPECIAL_TOKENS:
        added[str(tok.token_to_id(t))] = {
            "content": t, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": t not in ("<think>", "</think>")}
    cfg = {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": None,
        "chat_template": template, "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": max_len,
        "pad_token": "<|endoftext|>", "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)


# --- data ------------------------------------------------------------------------------------------
def pack_synth(tok, rows, ctx, eot):
    """Packs conversations into rows of ctx+1 tokens; labels mask the user part (-100)."""
    seqs = []
    prompts = tok.encode_batch([chat_prompt(r["problem"]) for r in rows])
    answers = tok.encode_batch([r["solution"] + "<|im_end|>\n" for r in rows])
    for p, a in zip(prompts, answers):
        ids = p.ids + a.ids + [eot]
        lab = [-100] * len(p.ids) + a.ids + [eot]
        if len(ids) <= ctx + 1:
            seqs.append((ids, lab))
    tokens, labels, cur_t, cur_l = [], [], [], []
    for ids, lab in seqs:
        if len(cur_t) + len(ids) > ctx + 1:
            pad = ctx + 1 - len(cur_t)
            tokens.append(cur_t + [eot] * pad)
            labels.append(cur_l + [-100] * pad)
            cur_t, cur_l = [], []
        cur_t += ids
        cur_l += lab
    return torch.tensor(tokens, dtype=torch.long), torch.tensor(labels, dtype=torch.long)


def encode_stream(tok, docs, eot):
    ids = []
    for enc in tok.encode_batch(docs):
        ids += enc.ids + [eot]
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def heldout_perplexity(model, stream, ctx, device, batch=16):
    model.eval()
    n = (len(stream) - 1) // ctx
    xs = stream[: n * ctx + 1]
    total_nll, total_tok = 0.0, 0
    for b in range(0, n, batch):
        idx = range(b, min(n, b + batch))
        x = torch.stack([xs[i * ctx:(i + 1) * ctx] for i in idx]).to(device)
        y = torch.stack([xs[i * ctx + 1:(i + 1) * ctx + 1] for i in idx]).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        nll = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1), reduction="sum")
        total_nll += nll.item()
        total_tok += y.numel()
    model.train()
    return math.exp(total_nll / total_tok), total_nll, total_tok


@torch.no_grad()
def synth_accuracy(model, tok, rows, device, eos_ids, pad_id, max_new, batch=64):
    model.eval()
    responses, correct = [], 0
    for b in range(0, len(rows), batch):
        chunk = rows[b:b + batch]
        encs = [tok.encode(chat_prompt(r["problem"])).ids for r in chunk]
        width = max(map(len, encs))
        ids = torch.full((len(encs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(encs), width), dtype=torch.long)
        for i, e in enumerate(encs):  # left padding
            ids[i, width - len(e):] = torch.tensor(e)
            mask[i, width - len(e):] = 1
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             max_new_tokens=max_new, do_sample=False, eos_token_id=eos_ids,
                             pad_token_id=pad_id)
        for i, r in enumerate(chunk):
            gen = out[i, width:].tolist()
            text = tok.decode(gen, skip_special_tokens=False)
            text = text.split("<|im_end|>")[0].replace("<|endoftext|>", "")
            m = re.findall(r"\\boxed\{([^{}]*)\}", text)
            ok = bool(m) and m[-1].strip() == r["answer"]
            correct += ok
            responses.append({"id": r["id"], "text": text, "correct": ok})
    model.train()
    return correct / max(1, len(rows)), responses


# --- main ------------------------------------------------------------------------------------------
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=".cache/corpus")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab", type=int, default=6144)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--intermediate", type=int, default=768)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=32)
    p.add_argument("--ctx", type=int, default=2048, help="training sequence length")
    p.add_argument("--max-positions", type=int, default=4096)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--minutes", type=float, default=5.0, help="training time (sets --steps)")
    p.add_argument("--steps", type=int, default=0, help="fixed step count (overrides --minutes)")
    p.add_argument("--synth-frac", type=float, default=0.5, help="fraction of rows that are tasks")
    p.add_argument("--num-synth", type=int, default=60000)
    p.add_argument("--synth-min-vars", type=int, default=4)
    p.add_argument("--synth-max-vars", type=int, default=40)
    p.add_argument("--num-test", type=int, default=128)
    p.add_argument("--test-seed", type=int, default=1234)
    p.add_argument("--smoke", action="store_true", help="tiny run to check the pipeline")
    args = p.parse_args()
    if args.smoke:
        args.num_synth, args.num_test, args.steps, args.batch = 500, 4, 10, 4
    os.makedirs(args.out, exist_ok=True)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda"
    t0 = time.time()
    metrics = {"args": vars(args), "command": " ".join(sys.argv)}

    train_docs = read_docs(os.path.join(args.corpus, "train.txt.gz"))
    heldout_docs = read_docs(os.path.join(args.corpus, "heldout.txt.gz"))
    if args.smoke:
        train_docs, heldout_docs = train_docs[:20], heldout_docs[:2]
    train_synth = synth_rows(args.num_synth, args.seed + 1, args.synth_min_vars, args.synth_max_vars)
    log(f"{len(train_docs)} train docs, {len(heldout_docs)} held-out docs, {len(train_synth)} tasks")

    tok = train_tokenizer(train_docs + [r["problem"] + "\n" + r["solution"] for r in train_synth[:5000]],
                          args.vocab)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    write_tokenizer_config(args.out, tok, args.max_positions)
    eot, im_end = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|im_end|>")
    vocab_size = tok.get_vocab_size()
    sample = "Emma Woodhouse, handsome — ab = cd + 7 = 3 + 7 = 0 \\boxed{0}"
    assert tok.decode(tok.encode(sample).ids) == sample, "tokenizer does not round-trip"
    log(f"tokenizer: {vocab_size} tokens ({time.time() - t0:.0f}s)")

    text_stream = encode_stream(tok, train_docs, eot).to(device)
    heldout_stream = encode_stream(tok, heldout_docs, eot)
    synth_tokens, synth_labels = pack_synth(tok, train_synth, args.ctx, eot)
    synth_tokens, synth_labels = synth_tokens.to(device), synth_labels.to(device)
    heldout_bytes = sum(len(d.encode("utf-8")) + 1 for d in heldout_docs)
    log(f"text {len(text_stream)} tokens, held-out {len(heldout_stream)} tokens, "
        f"{len(synth_tokens)} packed task rows ({time.time() - t0:.0f}s)")

    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    cfg_kwargs = dict(
        vocab_size=vocab_size, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads, head_dim=args.head_dim,
        max_position_embeddings=args.max_positions, rms_norm_eps=1e-6, tie_word_embeddings=True,
        attention_bias=False, use_sliding_window=False, hidden_act="silu", bos_token_id=eot,
        eos_token_id=im_end, pad_token_id=eot)
    try:
        config = Qwen3Config(**cfg_kwargs, rope_parameters={"rope_type": "default",
                                                            "rope_theta": args.rope_theta})
    except TypeError:
        config = Qwen3Config(**cfg_kwargs, rope_theta=args.rope_theta)
    model = Qwen3ForCausalLM(config).to(device)
    num_params = sum(p.numel() for p in model.parameters())
    metrics["num_params"] = num_params
    log(f"model: {num_params / 1e6:.2f}M parameters")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), fused=True)
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    n_synth = int(round(args.batch * args.synth_frac))
    n_text = args.batch - n_synth

    def batch():
        xs, ys = [], []
        if n_text:
            starts = torch.randint(0, len(text_stream) - args.ctx - 1, (n_text,), device=device, generator=gen)
            win = starts[:, None] + torch.arange(args.ctx + 1, device=device)[None, :]
            t = text_stream[win]
            xs.append(t[:, :-1])
            ys.append(t[:, 1:])
        if n_synth:
            rows = torch.randint(0, len(synth_tokens), (n_synth,), device=device, generator=gen)
            xs.append(synth_tokens[rows, :-1])
            ys.append(synth_labels[rows, 1:])
        return torch.cat(xs), torch.cat(ys)

    def step(step_idx, total):
        warmup = min(100, max(1, total // 10))
        lr = args.lr * (step_idx + 1) / warmup if step_idx < warmup else \
            args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step_idx - warmup) / max(1, total - warmup))))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    model.train()
    total_steps = args.steps
    losses = []
    t_train = time.time()
    if not total_steps:  # time 20 steps at the initial lr ramp to size the run to --minutes
        for i in range(20):
            losses.append(step(i, 1000).item())
        torch.cuda.synchronize()
        per_step = (time.time() - t_train) / 20
        total_steps = max(40, int(args.minutes * 60 / per_step))
        log(f"{per_step * 1000:.0f} ms/step -> {total_steps} steps")
    for i in range(len(losses), total_steps):
        loss = step(i, total_steps)
        if i % 100 == 0 or i == total_steps - 1:
            losses.append(loss.item())
            log(f"step {i}/{total_steps} loss {losses[-1]:.3f}")
    torch.cuda.synchronize()
    metrics["steps"] = total_steps
    metrics["train_seconds"] = round(time.time() - t_train, 1)
    metrics["tokens_seen"] = total_steps * args.batch * args.ctx
    metrics["final_loss"] = losses[-1]

    model = model.to(torch.bfloat16)
    ppl, nll, ntok = heldout_perplexity(model, heldout_stream, min(args.ctx, 2048), device)
    metrics["heldout_tokens"] = ntok
    metrics["heldout_perplexity"] = ppl
    metrics["heldout_bits_per_byte"] = nll / math.log(2) / heldout_bytes
    log(f"held-out perplexity {ppl:.2f} over {ntok} tokens, {metrics['heldout_bits_per_byte']:.3f} bits/byte")

    test_rows = [dict(r, id=f"test-{i}") for i, r in
                 enumerate(synth_rows(args.num_test, args.test_seed, args.synth_min_vars, args.synth_max_vars))]
    with open(os.path.join(args.out, "synth_test.jsonl"), "w") as f:
        for r in test_rows:
            f.write(json.dumps(r) + "\n")
    acc, responses = synth_accuracy(model, tok, test_rows, device, [im_end, eot], eot,
                                    max_new=1024 if not args.smoke else 32)
    metrics["synth_test_accuracy_greedy"] = acc
    metrics["synth_test_n"] = len(test_rows)
    log(f"synthetic test accuracy (greedy, transformers generate): {acc:.3f} on {len(test_rows)}")
    with open(os.path.join(args.out, "samples.jsonl"), "w") as f:
        for r in responses:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")

    model.generation_config = GenerationConfig(
        bos_token_id=eot, eos_token_id=[im_end, eot], pad_token_id=eot, do_sample=True,
        temperature=0.6, top_k=20, top_p=0.95)
    model.save_pretrained(args.out, safe_serialization=True)
    cfg_path = os.path.join(args.out, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg.setdefault("rope_theta", args.rope_theta)  # readers that predate rope_parameters
    cfg["torch_dtype"] = "bfloat16"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
    metrics["total_seconds"] = round(time.time() - t0, 1)

    try:  # the saved tokenizer and template as transformers sees them
        from transformers import AutoTokenizer
        hf_tok = AutoTokenizer.from_pretrained(args.out)
        msgs = [{"role": "user", "content": test_rows[0]["problem"]}]
        rendered = hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        metrics["hf_template_matches_training_prompt"] = rendered == chat_prompt(test_rows[0]["problem"])
        metrics["hf_tokenizer_matches"] = hf_tok.encode(sample) == tok.encode(sample).ids
    except Exception as e:  # report, do not lose the run
        metrics["hf_tokenizer_error"] = repr(e)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    log(json.dumps({k: v for k, v in metrics.items() if k != "args"}))


if __name__ == "__main__":
    main()
