#!/usr/bin/env python3
"""Tables and plots of `hardkv eval` and `hardkv ppl` runs across KV budgets.

Reads every summary.json (eval) and ppl.json (ppl) under the given directories and prints
Markdown: the paper-style accuracy table (rows strategy x (Base = uniform allocation, +Ours = hard),
columns budget x (accuracy, mean generated tokens), full attention as reference) and the
perplexity table with each method's per-chunk NLL difference from full attention (paired over the
same chunks, 95% interval), KV memory held from stats.json beside each run, and each accuracy
run against full attention on the same (problem, sample) pairs (wins / losses, exact sign
test), and hard allocation against uniform of the same strategy and budget likewise. With --png-dir it also draws acc_vs_budget.png (accuracy and mean length vs budget) and
ppl_vs_budget.png (vs budget and vs KV memory held); the plots need matplotlib, the tables only
the stdlib.

  python3 tools/plot_eval.py q/ --png-dir docs/img
"""
import argparse
import glob
import json
import math
import os
import re

ROLE = {"uniform": "Base", "hard": "+Ours"}


def budget_of(js):
    """Budget in tokens of a run (None for full attention): budget_tokens, else the label."""
    if js.get("kv_mode", "dense") != "hard":
        return None
    if js.get("budget_tokens") is not None:
        return int(js["budget_tokens"])
    return int(re.match(r"\d+", str(js["budget"])).group(0))


def memory_ratio(stats_path):
    """(time-avg, peak, live time-avg) KV bytes held over what dense mode would hold, from
    --stats-out JSON: sums over engine steps, the high-water marks of both, and sums without the
    masked (evicted, not yet rewritten: reclaimable) bytes; None without stats."""
    if not os.path.exists(stats_path):
        return None
    with open(stats_path) as f:
        m = json.load(f).get("memory")
    if not m or not m.get("dense_equivalent_bytes"):
        return None
    avg = sum(m["total_bytes"]) / max(1, sum(m["dense_equivalent_bytes"]))
    peak = max(m["total_bytes"]) / max(1, max(m["dense_equivalent_bytes"]))
    live = (sum(m["total_bytes"]) - sum(m["sparse_bytes"])) / max(1, sum(m["dense_equivalent_bytes"]))
    return avg, peak, live


def memory_text(run):
    return "—" if run["_memory"] is None else "{:.2f} / {:.2f} / {:.2f}".format(*run["_memory"])


def load(dirs, name):
    runs = []
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "**", name), recursive=True)):
            with open(path) as f:
                js = json.load(f)
            js["_path"] = path
            js["_budget"] = budget_of(js)
            js["_memory"] = memory_ratio(os.path.join(os.path.dirname(path), "stats.json"))
            runs.append(js)
    return runs


def split_method(js):
    """('full', None) or (strategy, allocation) from the method label 'snapkv/hard'."""
    if js["_budget"] is None:
        return "full", None
    strategy, allocation = js["method"].split("/")
    return strategy, allocation


def sample_scores(run):
    """{(id, sample): score} from samples.jsonl beside the summary; {} when absent."""
    path = os.path.join(os.path.dirname(run["_path"]), "samples.jsonl")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {(r["id"], r["sample"]): r["score"] for r in rows}


def sign_test(wins, losses):
    """Exact two-sided sign test (McNemar on the discordant pairs): p-value."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def paired_accuracy_table(runs):
    """Each compressed run against full attention on the same (problem, sample) pairs."""
    full = [r for r in runs if r["_budget"] is None]
    if not full or not sample_scores(full[0]):
        return ""
    ref = sample_scores(full[0])
    lines = ["| method | budget | accuracy | vs full: +/− | sign-test p |", "| --- | --- | --- | --- | --- |"]
    hard = sorted((r for r in runs if r["_budget"] is not None),
                  key=lambda r: (r["_budget"], split_method(r)[0], split_method(r)[1] != "uniform"))
    for r in hard:
        scores = sample_scores(r)
        wins = sum(1 for k, v in scores.items() if v and not ref.get(k, 0))
        losses = sum(1 for k, v in scores.items() if not v and ref.get(k, 0))
        strategy, allocation = split_method(r)
        lines.append(f"| {strategy} {ROLE.get(allocation, allocation)} ({allocation}) | {r['budget']} | "
                     f"{r['accuracy']:.3f} | +{wins} / −{losses} | {sign_test(wins, losses):.2f} |")
    return "\n".join(lines)


def allocation_table(runs):
    """Hard allocation (+Ours) against uniform (Base) of the same strategy and budget, on the same
    (problem, sample) pairs: problems only hard solves / only uniform solves, exact sign test."""
    lines = ["| strategy | budget | uniform | hard | hard only / uniform only | sign-test p |",
             "| --- | --- | --- | --- | --- | --- |"]
    hard_runs = [r for r in runs if r["_budget"] is not None and split_method(r)[1] == "hard"]
    for h in sorted(hard_runs, key=lambda r: (r["_budget"], split_method(r)[0])):
        strategy = split_method(h)[0]
        base = [r for r in runs if r["_budget"] == h["_budget"] and split_method(r) == (strategy, "uniform")]
        if not base:
            continue
        u_scores, h_scores = sample_scores(base[0]), sample_scores(h)
        if not u_scores or not h_scores:
            continue
        both = u_scores.keys() & h_scores.keys()
        wins = sum(1 for k in both if h_scores[k] and not u_scores[k])
        losses = sum(1 for k in both if u_scores[k] and not h_scores[k])
        lines.append(f"| {strategy} | {h['_budget']} | {base[0]['accuracy']:.3f} | {h['accuracy']:.3f} | "
                     f"{wins} / {losses} | {sign_test(wins, losses):.2f} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def accuracy_table(runs):
    full = [r for r in runs if r["_budget"] is None]
    hard = [r for r in runs if r["_budget"] is not None]
    budgets = sorted({r["_budget"] for r in hard})
    head = "| method | " + " | ".join(f"acc @{b} | len @{b}" for b in budgets) + " |"
    lines = [head, "| " + " | ".join(["---"] * (1 + 2 * len(budgets))) + " |"]
    for r in full:
        cell = f"{r['accuracy']:.3f} ± {r['ci95']:.3f} | {r['mean_generated_tokens']:.0f}"
        lines.append(f"| full attention ({r['num_samples']} samples) | " +
                     " | ".join([cell] * len(budgets)) + " |")
    keys = sorted({split_method(r) for r in hard}, key=lambda k: (k[0], k[1] != "uniform", k[1]))
    for strategy, allocation in keys:
        cells = []
        for b in budgets:
            match = [r for r in hard if split_method(r) == (strategy, allocation) and r["_budget"] == b]
            if match:
                r = match[0]
                cells.append(f"{r['accuracy']:.3f} ± {r['ci95']:.3f} | {r['mean_generated_tokens']:.0f}")
            else:
                cells.append("— | —")
        label = f"{strategy} {ROLE.get(allocation, allocation)} ({allocation})"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| method | " + " | ".join(f"KV held / dense @{b}" for b in budgets) + " |",
              "| " + " | ".join(["---"] * (1 + len(budgets))) + " |"]
    for strategy, allocation in keys:
        cells = [next((memory_text(r) for r in hard if split_method(r) == (strategy, allocation)
                       and r["_budget"] == b), "—") for b in budgets]
        lines.append(f"| {strategy} {ROLE.get(allocation, allocation)} ({allocation}) | " +
                     " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_difference(run, ref):
    """Mean over chunks of (run NLL/token - ref NLL/token) and its 95% half-width (t ~ 1.96)."""
    ref_by_start = {c["start"]: c["mean_nll"] for c in ref["chunks"]}
    diffs = [c["mean_nll"] - ref_by_start[c["start"]] for c in run["chunks"] if c["start"] in ref_by_start]
    n = len(diffs)
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return mean, 1.96 * math.sqrt(var / n), n


def ppl_table(runs):
    full = [r for r in runs if r["_budget"] is None]
    lines = ["| method | budget | perplexity | mean NLL (nats) | Δ NLL vs full (95%) | "
             "KV held / dense: time-avg / peak / live |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in full:
        lines.append(f"| full | full | {r['perplexity']:.3f} | {r['mean_nll']:.4f} | — | — |")
    hard = sorted((r for r in runs if r["_budget"] is not None),
                  key=lambda r: (r["_budget"], split_method(r)[0], split_method(r)[1] != "uniform"))
    for r in hard:
        strategy, allocation = split_method(r)
        delta = "—"
        if full:
            mean, half, _ = paired_difference(r, full[0])
            delta = f"{mean:+.4f} ± {half:.4f}"
        lines.append(f"| {strategy} {ROLE.get(allocation, allocation)} ({allocation}) | {r['budget']} | "
                     f"{r['perplexity']:.3f} | {r['mean_nll']:.4f} | {delta} | {memory_text(r)} |")
    return "\n".join(lines)


def series(runs, value, err, x):
    """{(strategy, allocation): (xs, values, errors)} sorted by x."""
    out = {}
    for r in runs:
        if r["_budget"] is not None and x(r) is not None:
            out.setdefault(split_method(r), []).append((x(r), value(r), err(r) if err else 0))
    return {k: tuple(zip(*sorted(v))) for k, v in out.items()}


def by_budget(r):
    return r["_budget"]


def by_memory(r):
    return None if r["_memory"] is None else r["_memory"][0]


def draw(ax, runs, value, ylabel, err=None, x=by_budget):
    colors = {}
    for (strategy, allocation), (xs, ys, es) in sorted(series(runs, value, err, x).items()):
        color = colors.setdefault(strategy, f"C{len(colors)}")
        style = "-o" if allocation == "hard" else "--s"
        ax.errorbar(xs, ys, yerr=es if err else None, fmt=style, color=color, capsize=3,
                    label=f"{strategy} {ROLE.get(allocation, allocation)}")
    for r in runs:
        if r["_budget"] is None:
            ax.axhline(value(r), color="black", linestyle=":", label="full attention")
            if err:
                ax.axhspan(value(r) - err(r), value(r) + err(r), color="gray", alpha=0.15)
    if x is by_budget:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("KV budget per head (tokens, sinks and window included)")
    else:
        ax.set_xlabel("KV bytes held / dense, time-averaged (from --stats-out)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot(acc, ppl, png_dir, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(png_dir, exist_ok=True)
    if acc:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        draw(axes[0], acc, lambda r: r["accuracy"], "accuracy", err=lambda r: r["ci95"])
        draw(axes[1], acc, lambda r: r["mean_generated_tokens"], "mean generated tokens")
        fig.suptitle(title + ": accuracy and length vs budget")
        fig.tight_layout()
        fig.savefig(os.path.join(png_dir, "acc_vs_budget.png"), dpi=80)
    if ppl:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        draw(axes[0], ppl, lambda r: r["perplexity"], "perplexity (held-out text)")
        draw(axes[1], ppl, lambda r: r["perplexity"], "perplexity (held-out text)", x=by_memory)
        fig.suptitle(title + ": perplexity vs budget and vs KV memory held")
        fig.tight_layout()
        fig.savefig(os.path.join(png_dir, "ppl_vs_budget.png"), dpi=80)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="+", help="directories searched for summary.json and ppl.json")
    p.add_argument("--png-dir", default="", help="write the PNGs here (needs matplotlib)")
    p.add_argument("--title", default="hardkv-tiny, CPU")
    args = p.parse_args()
    acc, ppl = load(args.dirs, "summary.json"), load(args.dirs, "ppl.json")
    if acc:
        print(accuracy_table(acc) + "\n")
        paired = paired_accuracy_table(acc)
        if paired:
            print(paired + "\n")
        alloc = allocation_table(acc)
        if alloc:
            print(alloc + "\n")
    if ppl:
        print(ppl_table(ppl) + "\n")
    if args.png_dir:
        plot(acc, ppl, args.png_dir, args.title)


if __name__ == "__main__":
    main()
