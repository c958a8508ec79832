#!/usr/bin/env python3
"""How far each `hardkv eval` run got along the trail task's walks: for every run directory
(samples.jsonl) under the given roots, the share of reference solution lines reproduced before
the first wrong line (mean over samples), and which field the first wrong line got wrong (copied
next name, copied value, the addition, or a missing/garbled line). Stdlib only.

  python3 tools/train/trail_progress.py --dataset models/hardkv-tiny/synth_test.jsonl q/
"""
import argparse
import glob
import json
import os
import re

LINE = re.compile(r"^([a-z]{2}) ([a-z]+)(\d):(\d)\+(\d)=(\d)$")


def first_error(ref_lines, text):
    """(lines right before the first error, kind of that error or None)."""
    got = [ln.strip() for ln in text.split("</think>")[0].split("\n") if ln.strip() and ln.strip() != "<think>"]
    for i, ref in enumerate(ref_lines):
        if i >= len(got):
            return i, "stopped"
        if got[i] == ref:
            continue
        m, r = LINE.match(got[i]), LINE.match(ref)
        if not m:
            return i, "garbled"
        if m.group(1) != r.group(1):
            return i, "name"
        if m.group(2) != r.group(2):
            return i, "next"
        if m.group(3) != r.group(3):
            return i, "value"
        return i, "sum"
    return len(ref_lines), None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("roots", nargs="+")
    args = p.parse_args()
    refs = {}
    with open(args.dataset) as f:
        for line in f:
            r = json.loads(line)
            body = r["solution"].split("<think>\n")[1].split("\n</think>")[0]
            refs[str(r["id"])] = body.split("\n")
    print("| run | samples | accuracy | walk done before first error | first error: next / value / sum / other |")
    print("| --- | --- | --- | --- | --- |")
    dirs = sorted({os.path.dirname(p) for root in args.roots
                   for p in glob.glob(os.path.join(root, "**", "samples.jsonl"), recursive=True)})
    for d in dirs:
        n = correct = 0
        frac = 0.0
        kinds = {"next": 0, "value": 0, "sum": 0, "other": 0}
        with open(os.path.join(d, "samples.jsonl")) as f:
            for line in f:
                s = json.loads(line)
                ref = refs[str(s["id"])]
                done, kind = first_error(ref, s["text"])
                n += 1
                correct += bool(s.get("score"))
                frac += done / len(ref)
                if kind:
                    kinds[kind if kind in kinds else "other"] += 1
        print(f"| {os.path.basename(d)} | {n} | {correct / n:.3f} | {frac / n:.3f} | "
              f"{kinds['next']} / {kinds['value']} / {kinds['sum']} / {kinds['other']} |")


if __name__ == "__main__":
    main()
