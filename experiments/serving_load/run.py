"""Speculative decoding under load: where SI stops paying, and the best k per batch size (issue 11).

Usage:  python experiments/serving_load/run.py [--out DIR] [--quick] [--no-png] [--reference]

Every forward is priced by simspec's roofline (``simspec.roofline.RooflineLatency``) on an H100 preset,
bandwidth efficiency 0.8, compute efficiency 0.6, and 1.5 ms of framework overhead per forward.
These are stated assumptions, not a fit to a GPU run: no GPU was lent to the session that wrote this.
The target is Llama-3-8B. Two drafters are used:
a draft model (Llama-3.2-1B, its own forward) and an EAGLE-like head (one decoder layer of the
target's width: ~0.2B parameters, its forward mostly the per-forward overhead). Both run on the
target's GPU (``drafter="shared"``). Requests: Poisson arrivals, prompts of 512 tokens, outputs of
256, continuous batching up to 64 sequences.

1. **Speedup vs request rate** (``load``): SI over non-SI in mean end-to-end latency and in
   throughput, paired per replication; the first rate at which SI's speedup drops to 1 or below.
2. **Best k per batch size** (``best_k``): a closed batch of ``B`` sequences all arriving at once,
   each ``k`` from 1 to 6; SI's throughput per ``k``; the best ``k`` at each ``B``.
3. **One GPU vs four** (``gpus``): the same pair with the target on 4 GPUs (tensor parallel,
   modelled as 4x bandwidth and FLOP/s plus 1 ms of all-reduce per forward) and the drafter
   left on one: the report of an EAGLE drafter that wins on one GPU and loses on four.
4. **DSI vs SI vs non-SI on the same 4 target GPUs** (``dsi``): non-SI and SI run one engine copy
   per GPU (SI's draft model on a GPU of its own), DSI shares the 4 as one pool of batching
   servers (no chain; its requests share one drafter GPU per target server, each draft a batched
   drafter forward); request rate from light to heavy.
5. **Token trees under load** (``trees``): the EAGLE-like head at ``a = 0.8``, SI's chain of 4
   against a tree of the same depth, ``TokenTree.k_ary([2, 2, 1, 1])`` (14 nodes: two candidates
   at the first two levels), whose later siblings are accepted at 0.4 once the earlier ones are
   rejected (a stated assumption); request rate from light to heavy.

Writes ``results.csv``, ``numbers.json`` (every number, for the regeneration test), ``summary.txt``
and ``speedup_vs_rate.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from simspec import IIDAcceptance, serve
from simspec.hardware import hardware_preset
from simspec.io import add_reference_flag, atomic_write_text, check_reference_flag, write_csv, write_experiment_numbers
from simspec.roofline import ModelSpec, RooflineLatency
from simspec.serving import Batching, PoissonArrivals, RequestTable, Workload

COLUMNS = ["section", "drafter", "acceptance", "gpus", "rate", "batch", "k", "speedup", "speedup_low",
           "speedup_high", "throughput_speedup", "si_tok_s", "nonsi_tok_s", "si_tpot_ms", "nonsi_tpot_ms",
           "mean_batch"]
NAN = float("nan")
EFF = dict(efficiency=0.8, compute_efficiency=0.6, overhead_ms=1.5)


def models(gpus: int = 1):
    """Target, draft model and EAGLE-like head on ``gpus`` H100s (the drafters always on one)."""
    h100 = hardware_preset("H100")
    hw = h100 if gpus == 1 else h100.replace(name=f"{gpus}x H100 (TP)", memory_bandwidth_GBps=gpus *
                                             h100.memory_bandwidth_GBps, peak_tflops=gpus * h100.peak_tflops,
                                             memory_GiB=gpus * h100.memory_GiB)
    extra = 0.0 if gpus == 1 else 1.0  # all-reduce per forward, tensor parallel
    target = RooflineLatency("llama-3-8b", hw, **{**EFF, "overhead_ms": EFF["overhead_ms"] + extra})
    draft = RooflineLatency("llama-3.2-1b", h100, **EFF)
    t = target.model
    # one decoder layer of the target's shape (~12·h² parameters) and the target's LM head, read every forward
    head_spec = ModelSpec(name="eagle-like head", params=12 * t.hidden * t.hidden + t.vocab * t.hidden, layers=1,
                          hidden=t.hidden, kv_heads=t.kv_heads, head_dim=t.head_dim, heads=t.heads, vocab=t.vocab,
                          bytes_per_param=t.bytes_per_param)
    head = RooflineLatency(head_spec, h100, **EFF)
    return target, {"draft model 1B": draft, "EAGLE-like head": head}


def _row(section, drafter, a, gpus, rate, batch, k, res) -> list:
    sp = res.speedup["si_vs_nonsi"]
    m = res.metrics
    return [section, drafter, a, gpus, rate, batch, k, sp.mean, sp.low, sp.high,
            res.speedup["si_vs_nonsi_throughput"].mean, m["si"]["throughput_tok_s"].mean,
            m["nonsi"]["throughput_tok_s"].mean, m["si"]["tpot_p50_ms"].mean, m["nonsi"]["tpot_p50_ms"].mean,
            m["nonsi"]["mean_batch"].mean]


def run_load(quick: bool) -> list[list]:
    target, drafters = models()
    rates = [0.5, 4.0, 16.0] if quick else [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    reqs, reps = (60, 2) if quick else (400, 3)
    rows = []
    for name, drafter in drafters.items():
        for a in (0.6, 0.8):
            for rate in rates:
                w = Workload(PoissonArrivals(rate), prompt_len=512, output_len=256, requests=reqs)
                res = serve(w, target, drafter, IIDAcceptance(a), lookahead=4, replications=reps, rng=0,
                            batching=Batching(max_batch=64, drafter="shared"))
                rows.append(_row("load", name, a, 1, rate, 64, 4, res))
    return rows


def run_best_k(quick: bool) -> list[list]:
    target, drafters = models()
    batches = [1, 16, 64] if quick else [1, 4, 16, 32, 64, 128]
    ks = [1, 2, 4] if quick else [1, 2, 3, 4, 5, 6]
    rows = []
    for name, drafter in drafters.items():
        for B in batches:
            n = 2 * B
            table = RequestTable(np.zeros(n), np.full(n, 512), np.full(n, 256))
            for k in ks:
                res = serve(table, target, drafter, IIDAcceptance(0.8), lookahead=k, replications=2, rng=0,
                            batching=Batching(max_batch=B, drafter="shared"))
                rows.append(_row("best_k", name, 0.8, 1, NAN, B, k, res))
    return rows


def run_gpus(quick: bool) -> list[list]:
    rows = []
    reqs = 60 if quick else 300
    for gpus in (1, 4):
        target, drafters = models(gpus)
        drafter = drafters["EAGLE-like head"]
        for rate in ([1.0, 8.0] if quick else [1.0, 8.0, 32.0]):
            w = Workload(PoissonArrivals(rate), prompt_len=512, output_len=256, requests=reqs)
            res = serve(w, target, drafter, IIDAcceptance(0.6), lookahead=4, replications=2, rng=0,
                        batching=Batching(max_batch=64, drafter="shared"))
            rows.append(_row("gpus", "EAGLE-like head", 0.6, gpus, rate, 64, 4, res))
    return rows


def run_dsi(quick: bool) -> list[list]:
    target, drafters = models()
    drafter = drafters["draft model 1B"]
    rows = []
    reqs, reps = (60, 2) if quick else (400, 3)
    for rate in ([1.0, 16.0] if quick else [1.0, 4.0, 16.0, 64.0, 128.0]):
        w = Workload(PoissonArrivals(rate), prompt_len=512, output_len=256, requests=reqs)
        res = serve(w, target, drafter, IIDAcceptance(0.8), lookahead=4, algorithms=("nonsi", "si", "dsi"),
                    replications=reps, rng=0, batching=Batching(max_batch=64, replicas=4))
        m = res.metrics
        for alg, sp in (("si", res.speedup["si_vs_nonsi"]), ("dsi", res.speedup["dsi_vs_nonsi"])):
            rows.append(["dsi", alg, 0.8, 4, rate, 64, 4, sp.mean, sp.low, sp.high,
                         res.speedup[f"{alg}_vs_nonsi_throughput"].mean, m[alg]["throughput_tok_s"].mean,
                         m["nonsi"]["throughput_tok_s"].mean, m[alg]["tpot_p50_ms"].mean,
                         m["nonsi"]["tpot_p50_ms"].mean, m[alg]["mean_batch"].mean])
    return rows


TREE = (2, 2, 1, 1)
SIBLING_RATE = 0.4


def run_trees(quick: bool) -> list[list]:
    from simspec import TokenTree
    from simspec.trees import PositionalTreeAcceptance

    target, drafters = models()
    drafter = drafters["EAGLE-like head"]
    rows = []
    reqs, reps = (60, 2) if quick else (400, 3)
    law = PositionalTreeAcceptance.from_chain_rate(0.8, sibling_rate=SIBLING_RATE)
    for rate in ([0.5, 16.0] if quick else [0.5, 4.0, 16.0, 32.0, 64.0]):
        w = Workload(PoissonArrivals(rate), prompt_len=512, output_len=256, requests=reqs)
        res = serve(w, target, drafter, IIDAcceptance(0.8), lookahead=4, algorithms=("nonsi", "si", "tree"),
                    tree=TokenTree.k_ary(list(TREE)), tree_acceptance=law, replications=reps, rng=0,
                    batching=Batching(max_batch=64, drafter="shared"))
        m = res.metrics
        for alg in ("si", "tree"):
            sp = res.speedup[f"{alg}_vs_nonsi"]
            rows.append(["trees", alg, 0.8, 1, rate, 64, 4, sp.mean, sp.low, sp.high,
                         res.speedup[f"{alg}_vs_nonsi_throughput"].mean, m[alg]["throughput_tok_s"].mean,
                         m["nonsi"]["throughput_tok_s"].mean, m[alg]["tpot_p50_ms"].mean,
                         m["nonsi"]["tpot_p50_ms"].mean, m[alg]["mean_batch"].mean])
    return rows


def summary(rows: list[list]) -> str:
    col = {c: i for i, c in enumerate(COLUMNS)}
    out = ["Speculative decoding under load (roofline H100, Llama-3-8B target, k = 4, drafter on the same GPU)", ""]
    out.append("1. SI over non-SI vs request rate (mean end-to-end latency; throughput ratio)")
    for r in rows:
        if r[0] == "load":
            out.append(f"   {r[1]:16s} a={r[2]:.1f} {r[4]:5g} req/s: latency {r[col['speedup']]:.3f}x "
                       f"[{r[col['speedup_low']]:.3f}, {r[col['speedup_high']]:.3f}], throughput "
                       f"{r[col['throughput_speedup']]:.3f}x, non-SI batch {r[col['mean_batch']]:.1f}")
    cross = {}
    for r in rows:
        if r[0] == "load" and r[col["speedup"]] <= 1.0 and (r[1], r[2]) not in cross:
            cross[(r[1], r[2])] = r[4]
    for key in sorted({(r[1], r[2]) for r in rows if r[0] == "load"}):
        out.append(f"   crossover {key[0]}, a={key[1]:.1f}: "
                   + (f"SI stops paying at {cross[key]:g} req/s" if key in cross else "SI pays at every rate tried"))
    out += ["", "2. Best k per batch size (closed batch, a = 0.8; SI throughput in tokens/s)"]
    best = {}
    for r in rows:
        if r[0] == "best_k":
            key = (r[1], r[5])
            if key not in best or r[col["si_tok_s"]] > best[key][1]:
                best[key] = (r[6], r[col["si_tok_s"]], r[col["nonsi_tok_s"]])
    for (name, B), (k, si, non) in sorted(best.items()):
        out.append(f"   {name:16s} batch {B:4d}: best k = {k}, {si:8.0f} tok/s vs non-SI {non:8.0f} ({si / non:.2f}x)")
    out += ["", "3. One GPU vs four (EAGLE-like head, a = 0.6): SI over non-SI in mean end-to-end latency"]
    for r in rows:
        if r[0] == "gpus":
            out.append(f"   {r[3]} GPU(s), {r[4]:4g} req/s: {r[col['speedup']]:.3f}x "
                       f"(TPOT {r[col['si_tpot_ms']]:.2f} vs {r[col['nonsi_tpot_ms']]:.2f} ms)")
    out += ["", "4. On the same 4 target GPUs (draft model 1B, a = 0.8): speedup over non-SI in mean end-to-end latency"]
    for r in rows:
        if r[0] == "dsi":
            out.append(f"   {r[1].upper():3s} {r[4]:5g} req/s: {r[col['speedup']]:.3f}x [{r[col['speedup_low']]:.3f}, "
                       f"{r[col['speedup_high']]:.3f}], TPOT {r[col['si_tpot_ms']]:.2f} vs {r[col['nonsi_tpot_ms']]:.2f} "
                       f"ms, batch {r[col['mean_batch']]:.1f}")
    out += ["", f"5. Token trees under load (EAGLE-like head, a = 0.8, siblings {SIBLING_RATE}): chain k = 4 vs tree "
            f"k_ary({list(TREE)}), median TPOT speedup over non-SI"]
    by_rate: dict = {}
    for r in rows:
        if r[0] == "trees":
            by_rate.setdefault(r[4], {})[r[1]] = r
    for rate, pair in sorted(by_rate.items()):
        si, tree = pair["si"], pair["tree"]
        tp = lambda r: r[col["nonsi_tpot_ms"]] / r[col["si_tpot_ms"]]
        out.append(f"   {rate:5g} req/s: chain {tp(si):.3f}x, tree {tp(tree):.3f}x (tree/chain {tp(tree) / tp(si):.3f}); "
                   f"throughput chain {si[col['throughput_speedup']]:.3f}x, tree {tree[col['throughput_speedup']]:.3f}x; "
                   f"TPOT {si[col['si_tpot_ms']]:.2f} vs {tree[col['si_tpot_ms']]:.2f} ms")
    return "\n".join(out) + "\n"


def figure(rows: list[list]):
    """SI's gain over non-SI against the request rate, in simspec's figure style: SI in its blue (a shade per
    drafter and acceptance), 7 inches wide, every axis with its unit."""
    from matplotlib.figure import Figure

    from simspec.plots import ALGORITHM_COLOURS, shade as _mix

    def shade(level: float) -> str:  # SI's colour, lighter for the draft model
        return _mix(ALGORITHM_COLOURS["si"], level)

    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    col = {c: i for i, c in enumerate(COLUMNS)}
    keys = sorted({(r[1], r[2]) for r in rows if r[0] == "load"})
    for (name, a), style, level in zip(keys, ("-o", "--o", "-s", "--s"), (0.0, 0.0, 0.45, 0.45)):
        rr = [r for r in rows if r[0] == "load" and r[1] == name and r[2] == a]
        x = [r[4] for r in rr]
        axes[0].plot(x, [r[col["speedup"]] for r in rr], style, color=shade(level), ms=4, label=f"{name}, a = {a}")
        axes[1].plot(x, [r[col["nonsi_tpot_ms"]] / r[col["si_tpot_ms"]] for r in rr], style, color=shade(level), ms=4)
    for ax, label in zip(axes, ("mean end-to-end latency", "median TPOT")):
        ax.axhline(1.0, color=ALGORITHM_COLOURS["nonsi"], lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("request rate (requests/s)", fontsize=8)
        ax.set_ylabel(f"SI vs non-SI, {label} (×)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_title("Llama-3-8B, one H100 (roofline), k = 4", fontsize=8)
    axes[1].set_title("past ~30 req/s non-SI saturates first", fontsize=8)
    axes[0].legend(fontsize=7)
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"))
    ap.add_argument("--quick", action="store_true", help="fewer rates, requests and batch sizes (the test's run)")
    ap.add_argument("--no-png", action="store_true")
    add_reference_flag(ap)
    args = ap.parse_args(argv)
    check_reference_flag(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = (run_load(args.quick) + run_best_k(args.quick) + run_gpus(args.quick) + run_dsi(args.quick)
            + run_trees(args.quick))
    meta = {"experiment": "serving_load", "mode": "quick" if args.quick else "full"}
    write_csv(out / "results.csv", COLUMNS, rows)
    write_experiment_numbers(out, Path(__file__).parent, COLUMNS, rows, reference=args.reference, **meta)
    text = summary(rows)
    atomic_write_text(out / "summary.txt", text)
    if not args.no_png:
        from simspec.plots import save_figure

        save_figure(figure(rows), out / "speedup_vs_rate.png")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
