"""Dynamic lookahead: the gain of each policy over the best static k, where, in SI and DSI (issue 9).

Usage:  python experiments/dynamic_lookahead/run.py [--out DIR] [--quick] [--no-png] [--reference]

1. **SI grid.** For acceptance ``a``, drafter cost ``c`` and burstiness ``b`` (a two-state Markov
   process; ``b = 0`` is i.i.d.), every policy of :func:`simspec.policy_ranking.rank_policies` runs
   on common outcomes with a drafter-confidence signal (:class:`simspec.ConfidenceSignal`, default
   law): its gain over the best static ``k`` with a 95% interval over replications.
2. **DSI.** The same question in the discrete-event engine, where a stop rule decides when the
   drafter submits a verification task: the best static ``k`` against the confidence stop (its
   threshold picked on other replications), transformers' heuristic schedule and adaptive threshold
   (learning from each verification as it is applied) and the oracle, with as many servers as the
   tasks need and with 3.
3. **The HF blog's MBPP example** (dynamic speculation lookahead, one MBPP prompt: static ``k = 5``
   used 38 target and 192 drafter forwards, the oracle 27 and 129) on a run-length trace with the
   same oracle shape: 27 rounds, 102 accepted drafts (found by a seeded search, printed).
4. **The real pair** (SmolLM2-135M drafting for Gemma-3-270M, the shipped CPU trace and profiles):
   the same ranking; transformers' own runs of the heuristic and default settings are measured in
   ``experiments/real_pair``.

Writes ``results.csv``, ``numbers.json`` (every number, for the regeneration test), ``summary.txt``
and ``gains.png``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from simspec import (
    AdaptiveConfidenceLookahead,
    ConfidenceLookahead,
    HeuristicLookahead,
    ConstantLatency,
    MarkovAcceptance,
    OracleLookahead,
    Scenario,
    StaticLookahead,
    TraceAcceptance,
    simulate,
)
from simspec.io import add_reference_flag, atomic_write_text, check_reference_flag, write_csv, write_experiment_numbers
from simspec.montecarlo.si import si_run
from simspec.policy_ranking import rank_policies, train_learned
from simspec.signals import ConfidenceSignal

COLUMNS = ["section", "acceptance", "c", "burstiness", "policy", "gain", "gain_low", "gain_high", "ms_per_token",
           "target_forwards", "drafter_forwards", "published_target_forwards", "published_drafter_forwards"]
NAN = float("nan")
#: the policies, by the start of their name in rank_policies
KINDS = {"static": "best static", "heuristic": "heuristic", "confidence θ=0.4 k_max=20 (transformers": "confidence 0.4",
         "confidence": "confidence tuned", "adaptive": "adaptive", "disco": "DISCO", "specdec": "SpecDec++",
         "oracle": "oracle"}
MBPP_RUNS = [2, 2, 2, 0, 1, 7, 0, 4, 5, 0, 0, 0, 0, 4, 0, 13, 13, 1, 0, 0, 1, 13, 0, 6, 1, 22, 5]  # seed 13489


def kind(name: str) -> str:
    for prefix, label in KINDS.items():
        if name.startswith(prefix):
            return label
    return name


def si_grid(quick: bool) -> list[list]:
    accs = (0.6, 0.7, 0.8, 0.9)
    cs = (0.05, 0.2) if quick else (0.05, 0.1, 0.2)
    bursts = (0.0, 0.9) if quick else (0.0, 0.5, 0.9)
    reps, tokens = (30, 100) if quick else (200, 200)
    rows = []
    for a in accs:
        for c in cs:
            for b in bursts:
                proc = MarkovAcceptance.from_mean(a, b) if b else MarkovAcceptance.from_mean(a, 0.0)
                s = Scenario.from_ms(30.0, 30.0 * c, proc, tokens=tokens)
                r = rank_policies(s, replications=reps, rng=7)
                for row in r.rows:
                    rows.append(["si", a, c, b, kind(row.policy), row.gain.mean, row.gain.low, row.gain.high,
                                 row.latency_per_token_ms.mean, row.target_forwards.mean, row.drafter_forwards.mean,
                                 NAN, NAN])
    return rows


def dsi_section(quick: bool) -> list[list]:
    reps, tokens = (3, 100) if quick else (12, 200)
    rows = []
    for servers, a in ((None, 0.7), (None, 0.9), (3, 0.7), (3, 0.9)):
        c, b = 0.2, 0.9
        proc = ConfidenceSignal(MarkovAcceptance.from_mean(a, b))
        base = Scenario.from_ms(30.0, 30.0 * c, proc, tokens=tokens, servers=servers)
        where = "as many servers as needed" if servers is None else f"{servers} servers"

        def lat(la, seed):
            res = simulate(base.replace(lookahead=la), "dsi", replications=reps, rng=seed)
            return np.array([run.decode_ms for run in res.runs]), res

        # choices made on seed 1, reported on seed 2 (common outcomes within a seed)
        k = min(range(1, 9), key=lambda k: lat(k, 1)[0].mean())
        theta = min((0.3, 0.5, 0.7, 0.9), key=lambda t: lat(ConfidenceLookahead(t, 20), 1)[0].mean())
        static, _ = lat(k, 2)
        for name, la in ((f"{where}: best static (k={k})", k),
                         (f"{where}: confidence tuned (θ={theta})", ConfidenceLookahead(theta, 20)),
                         (f"{where}: DISCO (trained for SI)", train_learned(base, "disco", replications=reps * 10,
                                                                             rng=1)),
                         (f"{where}: SpecDec++ (trained for SI)", train_learned(base, "specdec",
                                                                                replications=reps * 10, rng=1)),
                         (f"{where}: heuristic", HeuristicLookahead(5, 20)),
                         (f"{where}: adaptive", AdaptiveConfidenceLookahead(0.4, 20)),
                         (f"{where}: oracle", OracleLookahead())):
            t, res = lat(la, 2)
            g = static / t
            se = g.std(ddof=1) / np.sqrt(len(g))
            rows.append(["dsi", a, c, b, name, float(static.mean() / t.mean()), float(g.mean() - 1.96 * se),
                         float(g.mean() + 1.96 * se), float(t.mean() / tokens), res.target_forwards.mean,
                         res.drafter_forwards.mean, NAN, NAN])
    return rows


def mbpp_section() -> list[list]:
    acc = TraceAcceptance.from_run_lengths([MBPP_RUNS])
    A = np.array([[bool(x) for x in acc.traces[0]]])
    T, D = ConstantLatency(1.0), ConstantLatency(0.1)
    rows = []
    for name, pol, blog in (("static k=5", StaticLookahead(5), (38, 192)), ("oracle", OracleLookahead(), (27, 129))):
        r = si_run(A, pol, T, D)
        rows.append(["mbpp", float(np.mean(A)), 0.1, 0.0, name, NAN, NAN, NAN, float(r["decode_ms"][0] / A.shape[1]),
                     float(r["rounds"][0]), float(r["drafter_forwards"][0]), float(blog[0]), float(blog[1])])
    return rows


def real_pair_section(quick: bool) -> list[list]:
    from simspec.profiles import builtin_profile
    from simspec.traces import builtin_trace

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shipped profiles start at context 32; short prompts read the nearest
        s = Scenario.from_profiles(builtin_profile("cpu-real-pair", "gemma3-270m"),
                                   builtin_profile("cpu-real-pair", "smollm2-135m"), builtin_trace("cpu-real-pair"),
                                   tokens=64)
        r = rank_policies(s, replications=16 if quick else 64, rng=3)
    return [["real", round(s.acceptance.mean, 4), round(s.c, 4), 0.0, kind(row.policy), row.gain.mean, row.gain.low,
             row.gain.high, row.latency_per_token_ms.mean, row.target_forwards.mean, row.drafter_forwards.mean, NAN, NAN]
            for row in r.rows]


def summary(rows) -> str:
    out = ["# Dynamic lookahead: gain over the best static k (>1: faster)", ""]
    si = [r for r in rows if r[0] == "si"]
    policies = [p for p in KINDS.values() if p != "best static"]
    out.append("SI grid: gain over the best static k (mean over the grid; min..max)")
    for b in sorted({r[3] for r in si}):
        out.append(f"  burstiness {b:g}:")
        for p in policies:
            g = [r[5] for r in si if r[3] == b and r[4] == p]
            out.append(f"    {p:<18} {np.mean(g):.3f}x  ({min(g):.3f}..{max(g):.3f})")
    best = {}
    for r in si:
        if r[4] not in ("oracle", "best static"):
            key = (r[1], r[2], r[3])
            if key not in best or r[5] > best[key][1]:
                best[key] = (r[4], r[5])
    wins = {}
    for p, _ in best.values():
        wins[p] = wins.get(p, 0) + 1
    out.append("  best real policy per grid point: " + ", ".join(f"{p} {n}" for p, n in sorted(wins.items())))
    out += ["", "DSI (discrete-event, c = 0.2, burstiness 0.9): gain over its best static k"]
    out += [f"  a={r[1]:g} {r[4]:<56} {r[5]:.3f}x  [{r[6]:.3f}, {r[7]:.3f}]" for r in rows if r[0] == "dsi"]
    out += ["", "HF blog MBPP example (blog: static k=5 38 target / 192 draft forwards; oracle 27 / 129):"]
    out += [f"  {r[4]:<12} simspec {r[9]:.0f} target / {r[10]:.0f} draft forwards (blog {r[11]:.0f} / {r[12]:.0f})"
            for r in rows if r[0] == "mbpp"]
    real = [r for r in rows if r[0] == "real"]
    if real:
        out += ["", f"Real pair (SmolLM2-135M -> Gemma-3-270M, CPU profiles, acceptance {real[0][1]:g}, c = {real[0][2]:g}):"]
        out += [f"  {r[4]:<18} {r[8]:8.1f} ms/token   gain {r[5]:.3f}x [{r[6]:.3f}, {r[7]:.3f}]" for r in real]
    return "\n".join(out) + "\n"


def figure(rows):
    """The gain of each policy over the best static ``k`` against acceptance: a panel per drafter cost and
    burstiness, each policy in its colour of every simspec figure (``simspec.plots.policy_colour``)."""
    from matplotlib.figure import Figure

    from simspec.plots import policy_colour

    si = [r for r in rows if r[0] == "si"]
    cs = sorted({r[2] for r in si})
    bursts = sorted({r[3] for r in si})
    width = min(7.0, 2.35 * len(cs))
    fig = Figure(figsize=(width, 1.9 * len(bursts) + 0.7), layout="constrained")
    axes = fig.subplots(len(bursts), len(cs), sharex=True, sharey=True, squeeze=False)
    # each label's policy (for its colour) and line: the two confidence stops share a colour, the fixed one dotted
    style = {"heuristic": ("heuristic", "-"), "confidence 0.4": ("confidence", ":"),
             "confidence tuned": ("confidence", "-"), "adaptive": ("adaptive", "-"), "DISCO": ("disco", "-"),
             "SpecDec++": ("specdec++", "-"), "oracle": ("oracle", "--")}
    for i, b in enumerate(bursts):
        for j, c in enumerate(cs):
            ax = axes[i][j]
            for p in [p for p in KINDS.values() if p != "best static"]:
                pts = sorted((r[1], r[5]) for r in si if r[2] == c and r[3] == b and r[4] == p)
                policy, line = style[p]
                ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", ms=3, label=p,
                        color=policy_colour(policy), linestyle=line)
            ax.axhline(1.0, color="0.5", lw=0.8)
            ax.set_title(f"c = {c:g}, burstiness {b:g}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if i == len(bursts) - 1:
                ax.set_xlabel("acceptance (probability)", fontsize=8)
            if j == 0:
                ax.set_ylabel("gain over best static k (×)", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=7)
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder (default out/)")
    ap.add_argument("--quick", action="store_true", help="a smaller grid, fewer replications (tests)")
    ap.add_argument("--no-png", action="store_true", help="skip the figure")
    ap.add_argument("--no-real", action="store_true", help="skip the real pair's section")
    add_reference_flag(ap)
    args = ap.parse_args(argv)
    check_reference_flag(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = si_grid(args.quick) + dsi_section(args.quick) + mbpp_section()
    if not args.no_real:
        rows += real_pair_section(args.quick)
    write_csv(out / "results.csv", COLUMNS, rows)
    meta = {"experiment": "dynamic_lookahead", "mode": "quick" if args.quick else "full"}
    write_experiment_numbers(out, Path(__file__).parent, COLUMNS, rows, reference=args.reference, **meta)
    text = summary(rows)
    atomic_write_text(out / "summary.txt", text)
    if not args.no_png:
        from simspec.plots import save_figure

        save_figure(figure(rows), out / "gains.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
