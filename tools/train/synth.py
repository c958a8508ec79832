#!/usr/bin/env python3
"""Synthetic long-reasoning tasks for the tiny model, answered in \\boxed{N}; stdlib only.

walk (default): a shuffled list of N lines `* ab = 7, next qx` forms one linked list ending in
`end`; the question names a start K nodes before the end. The solution walks the list one line per
node (`* ab = 7, next qx, sum 3 + 7 = 0`), so every step must look up a line of the prompt, far
back, and keeps a running sum modulo --modulus, the answer. Difficulty: --min/--max-nodes (prompt
length: what a compressed cache must keep), --min/--max-steps (trace length and error chaining).
trail: the walk in a compact form built for look-ups: each prompt line `ab qx7` is name, next
name and value, each one token (a line-start name, a space-prefixed name, a digit). Every name is
defined on one line and pointed to from one line, so each look-up copies the token that follows a
token seen once before (the plain induction pattern): after `ab` the solution copies ` qx`, after
` qx` the value `7`. The solution writes one line per node (`ab qx7:3+7=0`: the prompt line, then
the running sum). Same knobs as walk.
chain (session 1's task, what models/hardkv-tiny learnt): modulo assignments `ab = cd + 7` written
out step by step, then one variable recalled from the trace.

Writes JSONL rows {"id", "problem", "answer", "solution"}; the same --seed gives the same file.
Fresh test sets (walk; chain in the distribution models/hardkv-tiny was trained on):
  python3 tools/train/synth.py --n 200 --seed 4242 --min-nodes 48 --max-nodes 64 \\
      --min-steps 24 --max-steps 40 --out fresh_walk.jsonl
  python3 tools/train/synth.py --task trail --n 256 --seed 4242 --min-nodes 64 --max-nodes 256 \\
      --min-steps 16 --max-steps 64 --id-prefix fresh- --out fresh_trail.jsonl
  python3 tools/train/synth.py --task chain --n 256 --seed 4242 --min-vars 4 --max-vars 40 \\
      --out fresh_chain.jsonl
"""
import argparse
import json
import random
import sys

OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def var_names(count, rng):
    """Distinct short names (two lower-case letters), shuffled so order gives no hint."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    pool = [x + y for x in letters for y in letters]
    rng.shuffle(pool)
    return pool[:count]


def make_problem(rng, num_vars, modulus, ops, query, max_refs):
    """The chain task: (problem, answer, solution) for `num_vars` modulo assignments."""
    names = var_names(num_vars, rng)
    values = {}
    statements = []  # (name, expression text, list of operand tokens, value)
    for idx, name in enumerate(names):
        num_refs = 0 if idx == 0 else rng.randint(1, min(max_refs, idx))
        if idx < 2 and rng.random() < 0.5:
            num_refs = 0
        if num_refs == 0:
            value = rng.randrange(modulus)
            statements.append((name, str(value), str(value), [], value))
            values[name] = value
            continue
        # Operands: earlier variables drawn uniformly (so references reach far back), plus a
        # constant when only one variable is used.
        refs = rng.sample(names[:idx], num_refs)
        operands = list(refs)
        if num_refs == 1:
            operands.append(str(rng.randrange(1, modulus)))
        ops_used = [rng.choice(ops) for _ in range(len(operands) - 1)]
        # Evaluate left to right (the text says so), reducing modulo at each step.
        def val(tok):
            return values[tok] if tok in values else int(tok)

        acc = val(operands[0])
        for op, tok in zip(ops_used, operands[1:]):
            acc = OPS[op](acc, val(tok)) % modulus
        acc %= modulus
        expr = operands[0]
        num_expr = str(val(operands[0]))
        for op, tok in zip(ops_used, operands[1:]):
            expr += f" {op} {tok}"
            num_expr += f" {op} {val(tok)}"
        statements.append((name, expr, num_expr, refs, acc))
        values[name] = acc

    if query == "last":
        q_idx = num_vars - 1
    elif query == "early":
        q_idx = rng.randrange(0, max(1, num_vars // 4))
    else:
        q_idx = rng.randrange(num_vars)
    q_name = names[q_idx]
    answer = values[q_name]

    lines = [f"{name} = {expr}" for name, expr, *_ in statements]
    problem = (
        f"All arithmetic is modulo {modulus}, evaluated left to right. "
        "Compute the assignments in order:\n" + "\n".join(lines) + f"\nWhat is the value of {q_name}?"
    )
    steps = []
    for name, expr, num_expr, refs, value in statements:
        if not refs:
            steps.append(f"{name} = {value}")
        else:
            steps.append(f"{name} = {expr} = {num_expr} = {value}")
    solution = (
        "<think>\nI evaluate each assignment in order, reducing modulo "
        f"{modulus}.\n" + "\n".join(steps) + f"\nThe question asks for {q_name}. "
        f"Looking back, {q_name} = {answer}.\n</think>\n\n"
        f"The value of {q_name} is \\boxed{{{answer}}}."
    )
    return problem, str(answer), solution

def make_walk_problem(rng, num_nodes, num_steps, modulus):
    """The walk task: (problem, answer, solution) for a list of `num_nodes` lines of which the
    last `num_steps` (1 <= num_steps <= num_nodes) are visited."""
    names = var_names(num_nodes, rng)  # names[i] points to names[i + 1]; the last to "end"
    values = [rng.randrange(modulus) for _ in names]
    nexts = names[1:] + ["end"]
    order = list(range(num_nodes))
    rng.shuffle(order)
    start = num_nodes - num_steps
    lines = [f"* {names[i]} = {values[i]}, next {nexts[i]}" for i in order]
    problem = (
        "Each line gives a name, its value and the next name. Start at the given name, follow "
        f"next until you reach end, and add up the values of the names you visit, modulo "
        f"{modulus}.\n" + "\n".join(lines) + f"\nStart at {names[start]}. What is the sum?")
    steps, total = [], 0
    for i in range(start, num_nodes):
        head = f"* {names[i]} = {values[i]}, next {nexts[i]}, sum "
        if i == start:
            total = values[i] % modulus
            steps.append(head + str(total))
        else:
            new = (total + values[i]) % modulus
            steps.append(head + f"{total} + {values[i]} = {new}")
            total = new
    solution = ("<think>\n" + "\n".join(steps) + "\n</think>\n\n"
                f"The sum is \\boxed{{{total}}}.")
    return problem, str(total), solution


def make_trail_problem(rng, num_nodes, num_steps, modulus):
    """The trail task: the walk of make_walk_problem with prompt lines `ab qx7` (name, next name,
    value) and solution lines `ab qx7:3+7=0` (one token per name and digit in hardkv-tiny's
    tokenizer)."""
    names = var_names(num_nodes, rng)  # names[i] points to names[i + 1]; the last to "end"
    values = [rng.randrange(modulus) for _ in names]
    nexts = names[1:] + ["end"]
    order = list(range(num_nodes))
    rng.shuffle(order)
    start = num_nodes - num_steps
    lines = [f"{names[i]} {nexts[i]}{values[i]}" for i in order]
    problem = (
        "Each line gives a name, the next name and the value of the first name. Start at the "
        "given name, follow the next names until you reach end, and add up the values of the "
        f"names you visit, modulo {modulus}.\n" + "\n".join(lines) +
        f"\nStart at {names[start]}. What is the sum?")
    steps, total = [], 0
    for i in range(start, num_nodes):
        new = (total + values[i]) % modulus
        steps.append(f"{names[i]} {nexts[i]}{values[i]}:{total}+{values[i]}={new}")
        total = new
    solution = ("<think>\n" + "\n".join(steps) + "\n</think>\n\n"
                f"The sum is \\boxed{{{total}}}.")
    return problem, str(total), solution


def make_row(rng, args):
    """One problem of args.task with sizes drawn from the args' ranges."""
    if args.task in ("walk", "trail"):
        nodes = rng.randint(args.min_nodes, args.max_nodes)
        steps = rng.randint(min(args.min_steps, nodes), min(args.max_steps, nodes))
        make = make_walk_problem if args.task == "walk" else make_trail_problem
        return make(rng, nodes, steps, args.modulus)
    return make_problem(rng, rng.randint(args.min_vars, args.max_vars), args.modulus,
                        list(args.ops), args.query, args.max_refs)


def add_task_args(p):
    """The task flags, shared with train.py."""
    p.add_argument("--task", choices=["walk", "trail", "chain"], default="walk")
    p.add_argument("--modulus", type=int, default=10, help="values lie in [0, modulus)")
    p.add_argument("--min-nodes", type=int, default=48, help="walk: fewest lines in the prompt")
    p.add_argument("--max-nodes", type=int, default=64, help="walk: most lines in the prompt")
    p.add_argument("--min-steps", type=int, default=24, help="walk: fewest nodes visited")
    p.add_argument("--max-steps", type=int, default=40, help="walk: most nodes visited")
    p.add_argument("--min-vars", type=int, default=8, help="chain: fewest assignments")
    p.add_argument("--max-vars", type=int, default=32, help="chain: most assignments")
    p.add_argument("--ops", default="+-", help="chain: operators to use, from '+-*'")
    p.add_argument("--max-refs", type=int, default=2, help="chain: most earlier variables per line")
    p.add_argument("--query", choices=["last", "early", "random"], default="random",
                   help="chain: which variable is asked: the last, one in the first quarter, or any")


def check_task_args(p, args):
    if not set(args.ops) <= set(OPS) or not args.ops:
        p.error("--ops must be a non-empty subset of '+-*'")
    if not 1 <= args.min_vars <= args.max_vars or args.max_vars > 676:
        p.error("need 1 <= --min-vars <= --max-vars <= 676")
    if not 1 <= args.min_nodes <= args.max_nodes or args.max_nodes > 676:
        p.error("need 1 <= --min-nodes <= --max-nodes <= 676")
    if not 1 <= args.min_steps <= args.max_steps:
        p.error("need 1 <= --min-steps <= --max-steps")
    if args.modulus < 2:
        p.error("--modulus must be at least 2")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100, help="number of problems")
    p.add_argument("--seed", type=int, default=0)
    add_task_args(p)
    p.add_argument("--id-prefix", default="synth-")
    p.add_argument("--out", default="-", help="output JSONL ('-' for stdout)")
    args = p.parse_args(argv)
    check_task_args(p, args)

    rng = random.Random(args.seed)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    try:
        for i in range(args.n):
            problem, answer, solution = make_row(rng, args)
            row = {"id": f"{args.id_prefix}{i}", "problem": problem, "answer": answer,
                   "solution": solution}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
