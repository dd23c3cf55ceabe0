"""Chain, tree, overlap or DSI for my pair and GPUs? (issue 12)

Usage:  python experiments/trees_and_overlap/run.py [--out DIR] [--quick] [--reference]

1. **Side by side** (``compare``): non-SI, SI at its best static ``k``, tree SI at ``best_tree``'s tree,
   PEARL at its default window, the asynchronous pipeline, and DSI (1 target server without the chain,
   2 with it, and 2 whose verification tasks are the tree SI's tree), all in the discrete-event engine
   on common outcomes. Each pair is a target of 30 ms
   plus 0.3 ms per extra token in a forward (a GPU's cheap width), a drafter of ``c`` × 30 ms, i.i.d.
   acceptance ``a``; the tree law's later siblings are accepted at ``a / 2`` once the earlier ones are
   rejected. Reported: latency per token, GPU-seconds per token (busy time), and GPUs held.
2. **The best tree vs the verification slope** (``slope``): for the law ``from_chain_rate(0.8,
   sibling_rate=0.4)`` and a 1.5 ms drafter, the budget, depth and time per token of ``best_tree`` as
   the target's cost per extra token grows from 0 to 4 ms.
3. **Published shapes** (``shapes``):
   - Sequoia's expected accepted length grows with the tree budget while a chain's saturates at
     ``1/(1 − a)``: E[accepted] for chain, binary and optimal trees at budgets 4..128;
   - PEARL vs chain SI (both closed forms): the ratio over a grid of ``(a, c)``, against SI at its best
     ``k`` and against SI at PEARL's window (the paper's baseline drafts as many tokens as PEARL's window).

Writes ``results.csv``, ``numbers.json`` (every number, for the regeneration test) and ``summary.txt``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path



from simspec import (AffineLatency, ConstantLatency, IIDAcceptance, PositionalTreeAcceptance, Scenario, TokenTree,
                     best_tree, expected_accepted_length, optimal_tree, simulate, theory)
from simspec.io import add_reference_flag, atomic_write_text, check_reference_flag, write_csv, write_experiment_numbers

COLUMNS = ["section", "a", "c", "slope_ms", "algorithm", "detail", "value", "value_low", "value_high",
           "gpu_s_per_token", "gpus"]
NAN = float("nan")
TARGET_MS, SLOPE_MS = 30.0, 0.3


def _law(a: float) -> PositionalTreeAcceptance:
    return PositionalTreeAcceptance.from_chain_rate(a, sibling_rate=a / 2)


def run_compare(quick: bool) -> list[list]:
    pairs = [(0.8, 0.05), (0.6, 0.2)] if quick else [(0.6, 0.05), (0.8, 0.05), (0.9, 0.05), (0.6, 0.2), (0.8, 0.2),
                                                       (0.9, 0.2), (0.8, 0.4)]
    reps, tokens = (3, 400) if quick else (8, 2000)
    rows = []
    for a, c in pairs:
        target, drafter = AffineLatency(TARGET_MS, SLOPE_MS), ConstantLatency(c * TARGET_MS)
        base = Scenario(target, drafter, IIDAcceptance(a), tokens=tokens)
        k = int(theory.best_si_lookahead(a, c, slope=SLOPE_MS / TARGET_MS)[0])
        runs = {
            ("non-SI", ""): (simulate(base, "nonsi", replications=reps, rng=0), 1),
            ("SI", f"k={k}"): (simulate(base.replace(lookahead=k), "si", replications=reps, rng=0), 2),
            ("PEARL", ""): (simulate(base, "pearl", replications=reps, rng=0), 2),
            ("pipeline", ""): (simulate(base, "pipeline", replications=reps, rng=0), 2),
            ("DSI", "1 server, no chain"): (simulate(base.replace(servers=1, chain=False), "dsi", replications=reps,
                                                     rng=0), 2),
            ("DSI", "2 servers"): (simulate(base.replace(servers=2), "dsi", replications=reps, rng=0), 3),
        }
        law = _law(a)
        tree = best_tree(law, target, drafter).tree
        runs[("tree", f"size {tree.size}, depth {tree.depth}")] = (
            simulate(base, "tree", replications=reps, rng=0, tree=tree, tree_acceptance=law), 2)
        runs[("DSI", "2 servers, tree tasks")] = (
            simulate(base.replace(servers=2), "dsi", replications=reps, rng=0, tree=tree, tree_acceptance=law), 3)
        for (alg, detail), (res, gpus) in runs.items():
            e = res.latency_per_token_ms
            detail = detail or str(res.lookahead)
            rows.append(["compare", a, c, SLOPE_MS, alg, detail, e.mean, e.low, e.high,
                         res.gpu_seconds_per_token.mean, gpus])
    return rows


def run_slope(quick: bool) -> list[list]:
    law = _law(0.8)
    drafter = ConstantLatency(1.5)
    rows = []
    for s in ([0.0, 0.5, 2.0] if quick else [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0]):
        ch = best_tree(law, AffineLatency(TARGET_MS / 3, s), drafter, budgets=range(0, 65))
        rows.append(["slope", 0.8, 1.5 / (TARGET_MS / 3), s, "best tree", f"depth {ch.tree.depth}",
                     float(ch.tree.size), ch.ms_per_token, NAN, NAN, 2])
    return rows


def run_shapes(quick: bool) -> list[list]:
    rows = []
    law = _law(0.8)
    for n in ([4, 16, 64] if quick else [4, 8, 16, 32, 64, 128]):
        shapes = {"chain": TokenTree.chain(n), "binary": TokenTree.k_ary(2, size=n), "optimal": optimal_tree(n, law)}
        for name, tree in shapes.items():
            rows.append(["sequoia", 0.8, NAN, NAN, name, f"budget {n}", expected_accepted_length(tree, law), NAN, NAN,
                         NAN, NAN])
    grid_a = [0.6, 0.8] if quick else [0.5, 0.6, 0.7, 0.8, 0.9]
    grid_c = [0.1, 0.3] if quick else [0.05, 0.1, 0.2, 0.3, 0.5]
    for a in grid_a:
        for c in grid_c:
            k = int(theory.best_si_lookahead(a, c)[0])
            si = float(theory.si_latency_per_token(a, c, k))
            gamma = max(2, int(round(1.0 / c)))
            pearl = theory.pearl_latency_per_token(a, c, gamma)
            rows.append(["pearl_vs_si", a, c, 0.0, "PEARL / SI", f"gamma={gamma}, k={k}", si / pearl, NAN, NAN, NAN,
                         NAN])
            same = float(theory.si_latency_per_token(a, c, gamma))
            rows.append(["pearl_vs_si", a, c, 0.0, "PEARL / SI at k = gamma", f"gamma={gamma}, k={gamma}",
                         same / pearl, NAN, NAN, NAN, NAN])
    return rows


def summary(rows: list[list]) -> str:
    col = {c: i for i, c in enumerate(COLUMNS)}
    out = ["Chain, tree, overlap or DSI (target 30 ms + 0.3 ms per extra token; discrete-event engine)", ""]
    out.append("1. Latency per token (ms) and GPU-seconds per token, per pair")
    for key in sorted({(r[1], r[2]) for r in rows if r[0] == "compare"}):
        sub = [r for r in rows if r[0] == "compare" and (r[1], r[2]) == key]
        best = min(sub, key=lambda r: r[col["value"]])
        out.append(f"   a = {key[0]}, c = {key[1]}: fastest {best[4]} ({best[5]})")
        for r in sub:
            out.append(f"      {r[4]:9s} {r[5]:26s} {r[6]:7.2f} ms [{r[7]:.2f}, {r[8]:.2f}]  "
                       f"{r[col['gpu_s_per_token']] * 1000:6.2f} GPU-ms/token  {r[col['gpus']]} GPU(s)")
    out += ["", "2. best_tree vs the target's cost per extra token (10 ms target, 1.5 ms drafter, a = 0.8)"]
    for r in rows:
        if r[0] == "slope":
            out.append(f"   slope {r[3]:4g} ms/token: budget {int(r[6]):3d}, {r[5]}")
    out += ["", "3a. E[accepted length] vs tree budget (a = 0.8, siblings at 0.4)"]
    for n in sorted({int(r[5].split()[1]) for r in rows if r[0] == "sequoia"}):
        vals = {r[4]: r[6] for r in rows if r[0] == "sequoia" and r[5] == f"budget {n}"}
        out.append(f"   budget {n:4d}: chain {vals['chain']:.3f}, binary {vals['binary']:.3f}, "
                   f"optimal {vals['optimal']:.3f}")
    out += ["", "3b. PEARL over chain SI (closed forms, both at their best settings)"]
    for r in rows:
        if r[0] == "pearl_vs_si":
            out.append(f"   a = {r[1]}, c = {r[2]}: {r[4]:24s} {r[6]:.3f}x ({r[5]})")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"))
    ap.add_argument("--quick", action="store_true", help="fewer pairs, replications and budgets (the test's run)")
    add_reference_flag(ap)
    args = ap.parse_args(argv)
    check_reference_flag(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_compare(args.quick) + run_slope(args.quick) + run_shapes(args.quick)
    meta = {"experiment": "trees_and_overlap", "mode": "quick" if args.quick else "full"}
    write_csv(out / "results.csv", COLUMNS, rows)
    write_experiment_numbers(out, Path(__file__).parent, COLUMNS, rows, reference=args.reference, **meta)
    text = summary(rows)
    atomic_write_text(out / "summary.txt", text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


