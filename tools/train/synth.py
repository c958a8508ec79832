#!/usr/bin/env python3
"""Synthetic long-reasoning tasks for the tiny model: multi-step variable tracking.

A problem lists assignments (v1 = 7, v2 = v1 + 3, v3 = v2 - v1, ...) in modular arithmetic and
asks for one variable; the solution evaluates every assignment in order, one line each, and then
must recall the queried variable's value from far back in that trace before ending in \\boxed{N}.
How far back is set by --query (early variables sit thousands of tokens before the answer).

Writes JSONL rows {"id", "problem", "answer", "solution"}; the same --seed gives the same file.
Stdlib only. Example (a fresh 200-problem test set):
  python3 tools/train/synth.py --n 200 --seed 1234 --min-vars 24 --max-vars 48 --out test.jsonl
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
    """Returns (problem, answer, solution) for one chain of `num_vars` assignments."""
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100, help="number of problems")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-vars", type=int, default=8, help="fewest assignments per problem")
    p.add_argument("--max-vars", type=int, default=32, help="most assignments per problem")
    p.add_argument("--modulus", type=int, default=10, help="values lie in [0, modulus)")
    p.add_argument("--ops", default="+-", help="operators to use, from '+-*'")
    p.add_argument("--max-refs", type=int, default=2, help="most earlier variables per assignment")
    p.add_argument("--query", choices=["last", "early", "random"], default="random",
                   help="which variable is asked: the last, one in the first quarter, or any")
    p.add_argument("--id-prefix", default="synth-")
    p.add_argument("--out", default="-", help="output JSONL ('-' for stdout)")
    args = p.parse_args(argv)
    if not set(args.ops) <= set(OPS) or not args.ops:
        p.error("--ops must be a non-empty subset of '+-*'")
    if not 1 <= args.min_vars <= args.max_vars or args.max_vars > 676:
        p.error("need 1 <= --min-vars <= --max-vars <= 676")
    if args.modulus < 2:
        p.error("--modulus must be at least 2")

    rng = random.Random(args.seed)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    try:
        for i in range(args.n):
            num_vars = rng.randint(args.min_vars, args.max_vars)
            problem, answer, solution = make_problem(
                rng, num_vars, args.modulus, list(args.ops), args.query, args.max_refs)
            row = {"id": f"{args.id_prefix}{i}", "problem": problem, "answer": answer,
                   "solution": solution}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == "__main__":
    main()
