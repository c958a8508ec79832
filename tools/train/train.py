#!/usr/bin/env python3
"""Trains hardkv-tiny: a small Qwen3ForCausalLM with its own byte-level BPE tokenizer.

Data: the English corpus from extract_corpus.py (train.txt.gz / heldout.txt.gz) mixed with
synthetic tasks from synth.py (the trail task by default) rendered as Qwen3 ChatML
conversations (user: problem; assistant: "<think>...steps...</think>\\n\\n... \\boxed{N}"), loss
on the assistant part only. Tasks are packed into rows with attention masked between the packed
documents and positions restarting at 0 in each (qwen3_torch.py, the training model), and come in
a curriculum (--phases: short problems in short rows first). --tokenizer reuses an existing
tokenizer.json instead of training one. Writes, into --out (flat, so it fits the device tool's $OUT): config.json,
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
from qwen3_torch import Qwen3  # noqa: E402

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


def parse_phases(spec):
    """--phases: comma-separated FRAC:CTX:MINN-MAXN:MINK-MAXK:COUNT (share of the steps, row
    length, nodes (walk/trail) or variables (chain), steps visited, problems generated)."""
    phases = []
    for part in spec.split(","):
        frac, ctx, nodes, steps, count = part.split(":")
        (n0, n1), (k0, k1) = (map(int, nodes.split("-")), map(int, steps.split("-")))
        phases.append(dict(frac=float(frac), ctx=int(ctx), min_nodes=n0, max_nodes=n1,
                           min_steps=k0, max_steps=k1, count=int(count)))
    total = sum(p["frac"] for p in phases)
    for p in phases:
        p["frac"] /= total
    return phases


def phase_namespace(args, ph):
    ns = argparse.Namespace(task=args.task, modulus=10, ops="+-", max_refs=2, query="random",
                            min_nodes=ph["min_nodes"], max_nodes=ph["max_nodes"],
                            min_steps=ph["min_steps"], max_steps=ph["max_steps"],
                            min_vars=ph["min_nodes"], max_vars=ph["max_nodes"])
    return ns


TRAIL_LINE = re.compile(r"^([a-z]{2}) ([a-z]+)(\d):(\d)\+(\d)=(\d)$")


def trail_diagnostics(rows, responses):
    """Per solution line of the generated traces (trail task): how often the name was in the
    prompt and continued the previous line's next name, and how often the copied value, the copied
    next name and the addition were right."""
    c = dict(lines=0, known_name=0, follows=0, value=0, next=0, add=0)
    for r, resp in zip(rows, responses):
        table = {}
        for line in r["problem"].split("\n"):
            m = re.match(r"^([a-z]{2}) ([a-z]+)(\d)$", line)
            if m:
                table[m.group(1)] = (int(m.group(3)), m.group(2))
        prev_next = None
        body = resp["text"].split("</think>")[0]
        for line in body.split("\n"):
            m = TRAIL_LINE.match(line.strip())
            if not m:
                continue
            name, nxt, val, a, b, s_ = m.group(1), m.group(2), int(m.group(3)), *map(int, m.groups()[3:])
            c["lines"] += 1
            c["follows"] += prev_next is None or name == prev_next
            if name in table:
                c["known_name"] += 1
                c["value"] += table[name][0] == val
                c["next"] += table[name][1] == nxt
            c["add"] += (a + b) % 10 == s_
            prev_next = nxt
    n = max(1, c["lines"])
    return {"lines": c["lines"], **{k: round(v / n, 4) for k, v in c.items() if k != "lines"}}


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


# --- main ---------------------------------------------------------------------------------------
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
    p.add_argument("--max-positions", type=int, default=4096)
    p.add_argument("--rope-theta", type=float, default=1e6,
                   help="Qwen3's value: with head_dim 32, theta 1e4 leaves few rotary pairs slow "
                        "enough to match content 1-2k tokens apart")
    p.add_argument("--batch-tokens", type=int, default=65536, help="tokens per step (rows x ctx)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--minutes", type=float, default=5.0, help="training time (sets --steps)")
    p.add_argument("--steps", type=int, default=0, help="fixed step count (overrides --minutes)")
    p.add_argument("--text-frac", type=float, default=0.15, help="share of rows that are text")
    p.add_argument("--task", choices=["walk", "trail", "chain"], default="trail", help="synth.py task")
    p.add_argument("--phases", default="0.25:512:2-12:1-12:100000,0.25:1024:4-64:1-48:60000,"
                                       "0.5:2048:4-256:1-64:60000",
                   help="curriculum, FRAC:CTX:MINN-MAXN:MINK-MAXK:COUNT,... (parse_phases)")
    for key, default in zip(("min-nodes", "max-nodes", "min-steps", "max-steps", "min-vars",
                             "max-vars"), (64, 256, 16, 64, 4, 40)):
        p.add_argument(f"--test-{key}", type=int, default=default, help=f"test tasks: synth.py --{key}")
    p.add_argument("--num-test", type=int, default=256)
    p.add_argument("--test-seed", type=int, default=4321)
    p.add_argument("--tokenizer", default="", help="tokenizer.json to reuse ('' = train one)")
    p.add_argument("--max-new", type=int, default=1024, help="test generation length")
    p.add_argument("--smoke", action="store_true", help="tiny run to check the pipeline")
    args = p.parse_args()
    phases = parse_phases(args.phases)
    if args.smoke:
        args.num_test, args.steps, args.max_new = 8, 30, 64
        for ph in phases:
            ph["count"] = 300
    os.makedirs(args.out, exist_ok=True)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    t0 = time.time()
    metrics = {"args": vars(args), "phases": phases, "command": " ".join(sys.argv)}

    def dump_metrics():
        with open(os.path.join(args.out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)

    train_docs = read_docs(os.path.join(args.corpus, "train.txt.gz"))
    heldout_docs = read_docs(os.path.join(args.corpus, "heldout.txt.gz"))
    if args.smoke:
        train_docs, heldout_docs = train_docs[:20], heldout_docs[:2]
    phase_rows = [synth_rows(ph["count"], (args.seed + 1) * 100 + i, phase_namespace(args, ph))
                  for i, ph in enumerate(phases)]
    log(f"{len(train_docs)} train docs, {len(heldout_docs)} held-out docs, "
        f"{[len(r) for r in phase_rows]} tasks per phase ({time.time() - t0:.0f}s)")

    if args.tokenizer:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(args.tokenizer)
    else:
        tok = train_tokenizer(
            train_docs + [r["problem"] + "\n" + r["solution"] for r in phase_rows[-1][:5000]], args.vocab)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    write_tokenizer_config(args.out, tok, args.max_positions)
    eot, im_end = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|im_end|>")
    vocab_size = tok.get_vocab_size()
    sample = "Emma Woodhouse, handsome — ab = cd + 7 = 3 + 7 = 0 \\boxed{0}"
    assert tok.decode(tok.encode(sample).ids) == sample, "tokenizer does not round-trip"

    text_stream = encode_stream(tok, train_docs, eot).to(device)
    heldout_stream = encode_stream(tok, heldout_docs, eot)
    heldout_bytes = sum(len(d.encode("utf-8")) + 1 for d in heldout_docs)
    packed = []
    for ph, rows in zip(phases, phase_rows):
        tk, lb = pack_synth(tok, rows, ph["ctx"], eot)
        packed.append((tk.to(device), lb.to(device)))
        ph["packed_rows"] = len(tk)
        ph["label_tokens"] = int((lb != -100).sum())
    del phase_rows
    probes = []  # per phase: 8 packed rows of 200 problems never trained on (teacher-forced accuracy)
    for i, ph in enumerate(phases):
        tk, lb = pack_synth(tok, synth_rows(200, 777 + i, phase_namespace(args, ph)), ph["ctx"], eot)
        probes.append((tk[:8, :-1].to(device), lb[:8, 1:].to(device)))
    log(f"text {len(text_stream)} tokens, held-out {len(heldout_stream)} tokens, packed rows per "
        f"phase {[ph['packed_rows'] for ph in phases]} ({time.time() - t0:.0f}s)")

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
    model = Qwen3(config, args.rope_theta).to(device)
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

    def batch(pi, g):
        ctx = phases[pi]["ctx"]
        rows = max(1, args.batch_tokens // ctx)
        n_text = int(round(rows * args.text_frac))
        n_synth = rows - n_text
        tokens, labels = packed[pi]
        xs, ys = [], []
        if n_text:
            starts = torch.randint(0, len(text_stream) - ctx - 1, (n_text,), device=device, generator=g)
            t = text_stream[starts[:, None] + torch.arange(ctx + 1, device=device)[None, :]]
            xs.append(t[:, :-1])
            ys.append(t[:, 1:])
        if n_synth:
            r = torch.randint(0, len(tokens), (n_synth,), device=device, generator=g)
            xs.append(tokens[r, :-1])
            ys.append(labels[r, 1:])
        return torch.cat(xs), torch.cat(ys)

    def loss_of(x, y):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            h = model.hidden(x, eot)
            keep = y != -100
            logits = model.logits(h[keep])
        return F.cross_entropy(logits.float(), y[keep])

    def step(step_idx, total, pi):
        warmup = min(100, max(1, total // 10))
        lr = args.lr * (step_idx + 1) / warmup if step_idx < warmup else \
            args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step_idx - warmup) / max(1, total - warmup))))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch(pi, gen)
        loss = loss_of(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    model.train()
    total_steps = args.steps
    if not total_steps:
        # Size the run to --minutes: time forward+backward at each phase's row length on a
        # separate generator, with no optimizer step (the weights do not change).
        tgen = torch.Generator(device=device)
        tgen.manual_seed(12345)
        per_step = []
        for pi in range(len(phases)):
            for i in range(4):
                if i == 1:
                    torch.cuda.synchronize()
                    ts = time.time()
                loss_of(*batch(pi, tgen)).backward()
                model.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            per_step.append((time.time() - ts) / 3 * 1.08)  # + optimizer step
        mean_step = sum(ph["frac"] * s for ph, s in zip(phases, per_step))
        total_steps = max(200, int(args.minutes * 60 / mean_step))
        log(f"ms/step per phase {[round(s * 1000) for s in per_step]} -> {total_steps} steps")
        metrics["timed_ms_per_step"] = [round(s * 1000, 1) for s in per_step]
    bounds, acc = [], 0.0
    for ph in phases:
        acc += ph["frac"]
        bounds.append(int(round(acc * total_steps)))
    metrics["phase_end_steps"] = bounds
    @torch.no_grad()
    def probe_accuracy():
        out = []
        for x, y in probes:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                keep = y != -100
                pred = model.logits(model.hidden(x, eot)[keep]).argmax(-1)
            out.append(round((pred == y[keep]).float().mean().item(), 4))
        return out

    losses, probe_curve = [], []
    t_train = time.time()
    for i in range(total_steps):
        pi = next(j for j, b in enumerate(bounds) if i < b)
        loss = step(i, total_steps, pi)
        if i % 100 == 0 or i == total_steps - 1 or i + 1 in bounds:
            losses.append((i, round(loss.item(), 4)))
            probe = probe_accuracy() if i % 200 == 0 or i == total_steps - 1 else None
            if probe:
                probe_curve.append((i, probe))
            log(f"step {i}/{total_steps} phase {pi} loss {losses[-1][1]:.4f} "
                f"({time.time() - t_train:.0f}s){f' probe acc {probe}' if probe else ''}")
    torch.cuda.synchronize()
    metrics["steps"] = total_steps
    metrics["train_seconds"] = round(time.time() - t_train, 1)
    metrics["tokens_seen"] = total_steps * args.batch_tokens
    metrics["loss_curve"] = losses
    metrics["probe_teacher_forced_accuracy"] = probe_curve
    metrics["final_loss"] = losses[-1][1]
    dump_metrics()

    # transformers' class with these weights: the saved checkpoint, and an independent forward.
    model.eval()
    hf = Qwen3ForCausalLM(config).to(device)
    missing, unexpected = hf.load_state_dict(model.state_dict(), strict=False)
    metrics["load_missing_unexpected"] = [list(missing), list(unexpected)]
    if hf.lm_head.weight.data_ptr() != hf.model.embed_tokens.weight.data_ptr():
        hf.lm_head.weight = hf.model.embed_tokens.weight  # tied, as config.json says
    hf.eval()
    hf_bf16 = Qwen3ForCausalLM(config).to(device)
    hf_bf16.load_state_dict(hf.state_dict())
    hf_bf16 = hf_bf16.to(torch.bfloat16)
    save_model(hf_bf16, args, eot, im_end)  # first, so that a failure below loses nothing
    try:
        with torch.no_grad():  # parity (f32): plain causal, and a packed row against its parts alone
            a = torch.tensor(tok.encode(chat_prompt("Start at ab.") + "<think>\nab qx7:0+7=7").ids,
                             device=device)
            b = torch.tensor(tok.encode("It is a truth universally acknowledged, that").ids, device=device)
            ref = hf(input_ids=a[None]).logits[0]
            mine = model.logits(model.hidden(a[None]))[0]
            metrics["parity_vs_transformers_max_abs"] = (ref - mine).abs().max().item()
            packed_ids = torch.cat([a, torch.tensor([eot], device=device), b])[None]
            hp = model.logits(model.hidden(packed_ids, eot))[0]
            alone_b = model.logits(model.hidden(b[None]))[0]
            metrics["packed_vs_alone_max_abs"] = max((hp[:len(a)] - mine).abs().max().item(),
                                                     (hp[len(a) + 1:] - alone_b).abs().max().item())
            metrics["logit_scale_max_abs"] = ref.abs().max().item()
        log(f"parity: transformers {metrics['parity_vs_transformers_max_abs']:.2e}, packed vs alone "
            f"{metrics['packed_vs_alone_max_abs']:.2e} (logits up to {metrics['logit_scale_max_abs']:.1f})")
    except Exception as e:  # report, do not lose the run
        metrics["parity_error"] = repr(e)
        log(f"parity check failed: {e!r}")
    dump_metrics()
    del model, opt, hf
    hf = hf_bf16
    ppl, nll, ntok = heldout_perplexity(hf, heldout_stream, 2048, device)
    metrics["heldout_tokens"] = ntok
    metrics["heldout_perplexity"] = ppl
    metrics["heldout_bits_per_byte"] = nll / math.log(2) / heldout_bytes
    log(f"held-out perplexity {ppl:.2f} over {ntok} tokens, {metrics['heldout_bits_per_byte']:.3f} bits/byte")
    dump_metrics()

    # The test set equals `synth.py --task TASK --n NUM_TEST --seed TEST_SEED --id-prefix test-
    # <test ranges>`: fresh problems (phase i's training pool uses Random(((seed + 1) * 100 + i)
    # * 1000 + chunk) per chunk of 5,000).
    test_rng, test_args = random.Random(args.test_seed), task_namespace(args, "test")
    test_rows = []
    for i in range(args.num_test):
        problem, answer, solution = synth.make_row(test_rng, test_args)
        test_rows.append({"id": f"test-{i}", "problem": problem, "answer": answer,
                          "solution": solution})
    with open(os.path.join(args.out, "synth_test.jsonl"), "w") as f:
        for r in test_rows:
            f.write(json.dumps(r) + "\n")
    acc, responses = synth_accuracy(hf, tok, test_rows, device, [im_end, eot], eot,
                                    max_new=args.max_new, batch=128)
    metrics["synth_test_accuracy_greedy"] = acc
    metrics["synth_test_n"] = len(test_rows)
    by_ctx = {}  # accuracy by the reference context (prompt + reference solution tokens)
    for r, resp in zip(test_rows, responses):
        n = len(tok.encode(chat_prompt(r["problem"]) + r["solution"]).ids)
        key = f"{n // 512 * 512}-{n // 512 * 512 + 511}"
        c, m = by_ctx.get(key, (0, 0))
        by_ctx[key] = (c + resp["correct"], m + 1)
    metrics["synth_test_by_context_tokens"] = {k: f"{c}/{m}" for k, (c, m) in
                                               sorted(by_ctx.items(), key=lambda kv: int(kv[0].split("-")[0]))}
    if args.task == "trail":
        metrics["trail_line_diagnostics"] = trail_diagnostics(test_rows, responses)
    log(f"synthetic test accuracy (greedy, transformers generate): {acc:.3f} on {len(test_rows)}; "
        f"by context {metrics['synth_test_by_context_tokens']}; {metrics.get('trail_line_diagnostics')}")
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
    dump_metrics()
    log(json.dumps({k: v for k, v in metrics.items() if k not in ("args", "loss_curve", "probe_teacher_forced_accuracy")}))


if __name__ == "__main__":
    main()
