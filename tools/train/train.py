#!/usr/bin/env python3
"""Trains hardkv-tiny: a small Qwen3ForCausalLM with its own byte-level BPE tokenizer.

Data: the English corpus from extract_corpus.py (train.txt.gz / heldout.txt.gz) mixed with
synthetic tasks from synth.py (the linked-list walk by default) rendered as Qwen3 ChatML
conversations (user: problem; assistant: "<think>...steps...</think>\\n\\n... \\boxed{N}"), loss
on the assistant part only. --tokenizer reuses an existing tokenizer.json instead of training one. Writes, into --out (flat, so it fits the device tool's $OUT): config.json,
model.safetensors (bf16, tied embeddings), generation_config.json, tokenizer.json,
tokenizer_config.json (with the Qwen3 chat template), metrics.json (held-out perplexity,
synthetic accuracy by transformers' generate, step count, timings) and samples.jsonl (the
generated test responses as {id, text}, gradable with `hardkv grade`).

Needs torch, transformers and tokenizers (the GPU machine has them). Example:
  python3 tools/train/train.py --corpus .cache/corpus --out /tmp/tiny --minutes 5.5 --seed 0 \\
      --tokenizer models/hardkv-tiny/tokenizer.json
"""
import argparse
import concurrent.futures
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


def _synth_chunk(job):
    seed, n, task_args = job
    rng = random.Random(seed)
    return [synth.make_row(rng, task_args) for _ in range(n)]


def synth_rows(n, seed, task_args, chunk=5000):
    """n problems of synth.make_row. walk: chunk c is drawn from Random(seed * 1000 + c) in
    parallel; chain: one Random(seed) in sequence (session 1's data, reproducible)."""
    if task_args.task == "chain":
        triples = _synth_chunk((seed, n, task_args))
    else:
        jobs = [(seed * 1000 + c, min(chunk, n - c * chunk), task_args)
                for c in range((n + chunk - 1) // chunk)]
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(8, len(jobs) or 1)) as pool:
            triples = [t for part in pool.map(_synth_chunk, jobs) for t in part]
    return [{"id": f"synth-{i}", "problem": p, "answer": a, "solution": s}
            for i, (p, a, s) in enumerate(triples)]


def task_namespace(args, prefix):
    """synth.py's task flags from train.py's --{prefix}-* flags."""
    ns = argparse.Namespace(task=args.task, modulus=10, ops="+-", max_refs=2, query="random")
    for key in ("min_nodes", "max_nodes", "min_steps", "max_steps", "min_vars", "max_vars"):
        setattr(ns, key, getattr(args, f"{prefix}_{key}"))
    return ns


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


def save_model(model, args, eot, im_end):
    from transformers import GenerationConfig

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
    p.add_argument("--synth-frac", type=float, default=0.75, help="fraction of rows that are tasks")
    p.add_argument("--num-synth", type=int, default=150000)
    p.add_argument("--task", choices=["walk", "chain"], default="walk", help="synth.py task")
    for prefix, ranges in (("synth", (4, 80, 1, 56, 4, 40)), ("test", (48, 64, 24, 40, 4, 40))):
        for key, default in zip(("min-nodes", "max-nodes", "min-steps", "max-steps", "min-vars",
                                 "max-vars"), ranges):
            p.add_argument(f"--{prefix}-{key}", type=int, default=default,
                           help=f"{'training' if prefix == 'synth' else 'test'} tasks: synth.py --{key}")
    p.add_argument("--num-test", type=int, default=128)
    p.add_argument("--test-seed", type=int, default=1234)
    p.add_argument("--tokenizer", default="", help="tokenizer.json to reuse ('' = train one)")
    p.add_argument("--max-new", type=int, default=1000, help="test generation length")
    p.add_argument("--smoke", action="store_true", help="tiny run to check the pipeline")
    args = p.parse_args()
    if args.smoke:
        args.num_synth, args.num_test, args.steps, args.batch, args.max_new = 500, 4, 10, 4, 32
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
    train_synth = synth_rows(args.num_synth, args.seed + 1, task_namespace(args, "synth"))
    log(f"{len(train_docs)} train docs, {len(heldout_docs)} held-out docs, {len(train_synth)} tasks")

    if args.tokenizer:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(args.tokenizer)
    else:
        tok = train_tokenizer(
            train_docs + [r["problem"] + "\n" + r["solution"] for r in train_synth[:5000]], args.vocab)
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

    from transformers import Qwen3Config, Qwen3ForCausalLM

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
        warmup = min(100, max(1, total // 10))  # 100 for every run of >= 1000 steps
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
    if not total_steps:  # (--steps runs ignore --minutes)
        # Size the run to --minutes from the time of steps 20..99 (the warm-up, identical for every
        # run of >= 1000 steps), so the result equals a run with --steps <the logged count>.
        for i in range(100):
            loss = step(i, 1000)
            if i == 19:
                torch.cuda.synchronize()
                t20 = time.time()
        losses.append(loss.item())
        torch.cuda.synchronize()
        per_step = (time.time() - t20) / 80
        total_steps = max(1000, 100 + int((args.minutes * 60 - (time.time() - t_train)) / per_step))
        log(f"{per_step * 1000:.0f} ms/step -> {total_steps} steps")
    for i in range(100 if losses else 0, total_steps):
        if not args.steps and time.time() - t_train > args.minutes * 60 * 1.25:  # a slowed GPU
            log(f"stopped at step {i} of {total_steps}: over 1.25 x --minutes")
            total_steps = i
            break
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
    save_model(model, args, eot, im_end)  # before the evaluations, so that a failure there loses nothing
    ppl, nll, ntok = heldout_perplexity(model, heldout_stream, min(args.ctx, 2048), device)
    metrics["heldout_tokens"] = ntok
    metrics["heldout_perplexity"] = ppl
    metrics["heldout_bits_per_byte"] = nll / math.log(2) / heldout_bytes
    log(f"held-out perplexity {ppl:.2f} over {ntok} tokens, {metrics['heldout_bits_per_byte']:.3f} bits/byte")

    # The test set equals `synth.py --n NUM_TEST --seed TEST_SEED --id-prefix test- <test ranges>`.
    test_rng, test_args = random.Random(args.test_seed), task_namespace(args, "test")
    test_rows = []
    for i in range(args.num_test):
        problem, answer, solution = synth.make_row(test_rng, test_args)
        test_rows.append({"id": f"test-{i}", "problem": problem, "answer": answer,
                          "solution": solution})
    with open(os.path.join(args.out, "synth_test.jsonl"), "w") as f:
        for r in test_rows:
            f.write(json.dumps(r) + "\n")
    acc, responses = synth_accuracy(model, tok, test_rows, device, [im_end, eot], eot,
                                    max_new=args.max_new)
    metrics["synth_test_accuracy_greedy"] = acc
    by_len = {}  # accuracy by the number of solution lines (nodes visited, for the walk task)
    for r, resp in zip(test_rows, responses):
        lines = r["solution"].count("\n") - 3
        key = f"{lines // 8 * 8}-{lines // 8 * 8 + 7}"
        c, n = by_len.get(key, (0, 0))
        by_len[key] = (c + resp["correct"], n + 1)
    metrics["synth_test_by_solution_lines"] = {k: f"{c}/{n}" for k, (c, n) in sorted(by_len.items())}
    metrics["synth_test_n"] = len(test_rows)
    log(f"synthetic test accuracy (greedy, transformers generate): {acc:.3f} on {len(test_rows)}")
    with open(os.path.join(args.out, "samples.jsonl"), "w") as f:
        for r in responses:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")

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
