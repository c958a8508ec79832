#!/usr/bin/env python3
"""Plot HARD-KV statistics written by `hardkv generate|bench|eval --stats-out FILE.json`.

Draws (1) a layer x kv-head heatmap of the mean number of candidate tokens kept per compression
event (and, beside it, the mean calibrated temperature) and (2) KV memory per tier over engine
steps (dense tier, condensed tier, its masked/sparse part, and what dense mode would hold).

Usage: python3 tools/plot_kv_stats.py stats.json [--out-prefix PREFIX]
Writes PREFIX_heads.png and PREFIX_memory.png (PREFIX defaults to the JSON path minus .json).
Needs matplotlib (and numpy).
"""
import argparse
import json
import os
import sys


def load(path):
    with open(path) as f:
        stats = json.load(f)
    if stats.get("kv_mode") != "hard":
        sys.exit(f"{path}: not HARD-KV statistics (kv_mode is {stats.get('kv_mode')!r})")
    return stats


def plot_heads(stats, out_path, plt, np):
    sel = stats["selection"]
    kept = np.array(sel["kept_mean"], dtype=float)  # [L, H]
    temp = np.array(sel["temperature_mean"], dtype=float)  # [L, H]
    comp = stats.get("compression", {})
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * kept.shape[1] * 2, 1 + 0.35 * kept.shape[0]))
    for ax, data, title, cmap in (
        (axes[0], kept, "kept candidates per event (mean)", "viridis"),
        (axes[1], np.log10(np.maximum(temp, 1e-12)), "log10 temperature (mean)", "magma"),
    ):
        im = ax.imshow(data, aspect="auto", origin="upper", cmap=cmap, interpolation="nearest")
        ax.set_xlabel("kv-head")
        ax.set_ylabel("layer")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax)
    fig.suptitle(
        f"{comp.get('strategy', '?')}/{comp.get('allocation', '?')}, budget {comp.get('budget', '?')}"
        f" (cap {comp.get('upper_budget', '?')}), events per layer {sel.get('events', [])[:1]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)


def plot_memory(stats, out_path, plt, np):
    mem = stats["memory"]
    step = np.array(mem["step"])
    mib = 1.0 / (1 << 20)
    fig, ax = plt.subplots(figsize=(8, 4))
    dense = np.array(mem["dense_bytes"]) * mib
    cond = np.array(mem["condensed_bytes"]) * mib
    sparse = np.array(mem["sparse_bytes"]) * mib
    ax.stackplot(step, dense, cond - sparse, sparse,
                 labels=["dense tier", "condensed tier (attended)", "sparse (masked, reclaimable)"],
                 alpha=0.8)
    ax.plot(step, np.array(mem["dense_equivalent_bytes"]) * mib, "k--", lw=1,
            label="dense mode would hold")
    ax.set_xlabel("engine step")
    ax.set_ylabel("KV memory (MiB)")
    ev = stats.get("events", {})
    ax.set_title(f"KV memory per tier; {ev.get('count', 0)} events, scoring "
                 f"{ev.get('select_seconds', 0):.3f}s, apply/rewrite {ev.get('apply_seconds', 0):.3f}s",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stats", help="JSON from --stats-out")
    ap.add_argument("--out-prefix", default=None)
    args = ap.parse_args()
    stats = load(args.stats)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    prefix = args.out_prefix or os.path.splitext(args.stats)[0]
    plot_heads(stats, prefix + "_heads.png", plt, np)
    plot_memory(stats, prefix + "_memory.png", plt, np)
    print(f"wrote {prefix}_heads.png and {prefix}_memory.png")


if __name__ == "__main__":
    main()
