"""How many target servers DSI can use: latency and GPU cost per token against N = 1..16.

Usage:  python experiments/dsi_servers/run.py [--out DIR] [--seed X] [--quick] [--workers W] [--no-png]

Scenarios: drafter/target latency ratio c in {0.05, 0.2, 0.5} x acceptance a in
{0.6, 0.9}, i.i.d. acceptance, constant latencies (target 30 ms), S = 200 tokens.
For every N (target servers, the non-SI chain's included) two DSI policies:
the best lookahead k in 1..20 for that N, and k = 1 (the paper's Prop. 1), plus
N = inf (as many servers as the tasks ask for).  References: non-SI and SI at
its best k in 1..20.

1. search: every (k, N) on ``--search-reps`` paired replications (one seed for
   all), picking the best k per N (and SI's best k).  Once a (k, N) run never
   queued a task, larger N give the identical runs and are filled in, not rerun.
2. evaluation: the chosen configurations and k = 1 at every N on
   ``--eval-reps`` fresh paired replications (one seed for all): these are the
   reported numbers, free of selection bias.

Writes ``DIR/servers.csv``, ``DIR/summary.md`` and ``DIR/servers.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from simspec import Scenario
from simspec.deployment import dsi_servers_needed
from simspec.des import simulate
from simspec.io import add_reference_flag, atomic_write_text, check_reference_flag, write_csv, write_numbers
from simspec.records import Estimate

TARGET_MS = 30.0
C_VALUES = (0.05, 0.2, 0.5)
A_VALUES = (0.6, 0.9)
K_MAX = 20
N_MAX = 16
INF = 0  # the key of "as many servers as needed" (servers=None) in the tables below


def _seed(seed: int, stage: int) -> np.random.SeedSequence:
    # a fresh object per call: simulate() spawns from the SeedSequence it is given (reusing one breaks pairing)
    return np.random.SeedSequence([seed, stage])


def _servers(n: int) -> int | None:
    return None if n == INF else n


def _lat(res) -> np.ndarray:
    return np.array([r.latency_ms for r in res.runs], dtype=float)


def scenario_job(args: tuple) -> dict:
    """Search and evaluation for one (c, a)."""
    c, a, tokens, search_reps, eval_reps, seed = args
    t0 = time.perf_counter()
    scn = Scenario.from_ms(TARGET_MS, c * TARGET_MS, a, tokens=tokens)
    ns = list(range(1, N_MAX + 1))
    # --- search -------------------------------------------------------------------------------
    grid: dict[tuple[int, int], float] = {}  # (k, N) -> mean latency; N = INF for unlimited
    violations = comparisons = simulated = 0
    for k in range(1, K_MAX + 1):
        prev, flat_from = None, None
        for n in ns:
            res = simulate(scn.replace(lookahead=k, servers=n), "dsi", replications=search_reps,
                           rng=_seed(seed, 0))
            simulated += 1
            lat = _lat(res)
            grid[(k, n)] = float(lat.mean())
            if prev is not None:  # paired runs: more servers should never make a run slower
                comparisons += lat.size
                violations += int(np.sum(lat > prev * (1 + 1e-12)))
            prev = lat
            if all(r.tasks_queued == 0 for r in res.runs):
                flat_from = n
                break
        for n in ns:
            if flat_from is not None and n > flat_from:
                grid[(k, n)] = grid[(k, flat_from)]
        if flat_from is not None:
            grid[(k, INF)] = grid[(k, flat_from)]
        else:
            grid[(k, INF)] = float(_lat(simulate(scn.replace(lookahead=k, servers=None), "dsi",
                                                 replications=search_reps, rng=_seed(seed, 0))).mean())
            simulated += 1
    best_k = {n: min(range(1, K_MAX + 1), key=lambda k: (grid[(k, n)], k)) for n in ns + [INF]}
    si_search = {k: float(_lat(simulate(scn.replace(lookahead=k), "si", replications=search_reps,
                                        rng=_seed(seed, 0))).mean()) for k in range(1, K_MAX + 1)}
    k_si = min(si_search, key=lambda k: (si_search[k], k))
    # --- evaluation: fresh paired replications --------------------------------------------------
    ev = _seed
    rows = {}
    k1_prev, k1_viol = None, 0
    for policy in ("best", "k1"):
        for n in ns + [INF]:
            k = best_k[n] if policy == "best" else 1
            res = simulate(scn.replace(lookahead=k, servers=_servers(n)), "dsi", replications=eval_reps,
                           rng=ev(seed, 1))
            lat = _lat(res)
            if policy == "k1" and n != INF:
                if k1_prev is not None:
                    k1_viol += int(np.sum(lat > k1_prev * (1 + 1e-12)))
                k1_prev = lat
            rows[(policy, n)] = {
                "k": k, "lat": lat, "gpu": np.array([r.gpu_seconds for r in res.runs]),
                "peak": max(r.peak_servers_busy for r in res.runs),
                "mean_busy": float(np.mean([r.mean_servers_busy for r in res.runs])),
                "queue": float(np.mean([r.queueing_delay_ms for r in res.runs])),
                "waits": any(r.tasks_queued > 0 for r in res.runs),
                "wasted": float(np.mean([r.target_forwards_wasted for r in res.runs])),
            }
    si = simulate(scn.replace(lookahead=k_si), "si", replications=eval_reps, rng=ev(seed, 1))
    nonsi = simulate(scn, "nonsi", replications=eval_reps, rng=ev(seed, 1))
    return {
        "c": c, "a": a, "tokens": tokens, "rows": rows, "k_si": k_si, "si_lat": _lat(si),
        "si_gpu": np.array([r.gpu_seconds for r in si.runs]), "nonsi_lat": _lat(nonsi),
        "violations": violations + k1_viol, "comparisons": comparisons + (len(ns) - 1) * eval_reps,
        "simulated": simulated, "search_reps": search_reps, "eval_reps": eval_reps,
        "seconds": time.perf_counter() - t0,
    }


def run(tokens: int, search_reps: int, eval_reps: int, seed: int, workers: int) -> tuple[list[dict], float]:
    jobs = [(c, a, tokens, search_reps, eval_reps, seed) for c in C_VALUES for a in A_VALUES]  # slow ones first
    t0 = time.perf_counter()
    if workers > 1 and getattr(sys.modules.get(__name__), "scenario_job", None) is scenario_job:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            results = list(ex.map(scenario_job, jobs, chunksize=1))
    else:  # serial (also when this file was loaded without being importable by name)
        results = [scenario_job(j) for j in jobs]
    return results, time.perf_counter() - t0


def analyse(res: dict) -> dict:
    """Flattening points, closed-form counts and marginal gains of one scenario."""
    S, c = res["tokens"], res["c"]
    out = {}
    si_tok = res["si_lat"].mean() / S
    for policy in ("best", "k1"):
        lat = {n: r["lat"].mean() / S for (p, n), r in res["rows"].items() if p == policy}
        inf = lat[INF]
        ns = sorted(n for n in lat if n != INF)
        flat = next((n for n in ns if lat[n] <= inf * 1.01), None)
        k_inf = res["rows"][(policy, INF)]["k"]
        no_wait = next((n for n in ns if not res["rows"][(policy, n)]["waits"]
                        and res["rows"][(policy, n)]["k"] == k_inf), None)
        beats_si = next((n for n in ns if lat[n] < si_tok), None)
        out[policy] = {
            "lat": lat, "flat": flat, "no_wait": no_wait, "k_inf": k_inf,
            "formula": int(dsi_servers_needed(Scenario.from_ms(TARGET_MS, c * TARGET_MS, 0.5), k_inf)), "beats_si": beats_si,
            "gain": {n: lat[n - 1] - lat[n] for n in ns if n > 1},
        }
    return out


def write_outputs(results: list[dict], out: Path, png: bool, header: str, elapsed: float, workers: int,
                  numbers: dict | None = None) -> str:
    cols = ["c", "a", "tokens", "policy", "servers", "lookahead", "latency_per_token_ms", "latency_ci_low",
            "latency_ci_high", "speedup_vs_nonsi", "dsi_vs_si", "dsi_vs_si_ci_low", "dsi_vs_si_ci_high",
            "marginal_gain_ms_per_token", "gpu_seconds_per_token", "gpu_ci_low", "gpu_ci_high",
            "target_forwards_wasted", "peak_servers_busy", "mean_servers_busy", "mean_queueing_ms", "tasks_wait",
            "servers_needed_formula", "si_lookahead", "si_latency_per_token_ms", "si_gpu_seconds_per_token",
            "eval_reps"]
    rows = []
    an = {}
    for res in results:
        S = res["tokens"]
        a_ = an[(res["c"], res["a"])] = analyse(res)
        si_tok = res["si_lat"].mean() / S
        nonsi_tok = res["nonsi_lat"].mean() / S
        for (policy, n), r in sorted(res["rows"].items(), key=lambda kv: (kv[0][0], kv[0][1] or 10 ** 9)):
            le = Estimate.from_samples(r["lat"] / S)
            ge = Estimate.from_samples(r["gpu"] / S)
            vs = Estimate.ratio(res["si_lat"], r["lat"])
            rows.append([
                res["c"], res["a"], S, policy, "inf" if n == INF else n, r["k"], le.mean, le.low, le.high,
                nonsi_tok / le.mean, vs.mean, vs.low, vs.high, a_[policy]["gain"].get(n, ""), ge.mean, ge.low,
                ge.high, r["wasted"], r["peak"], r["mean_busy"], r["queue"], r["waits"],
                int(dsi_servers_needed(Scenario.from_ms(TARGET_MS, res["c"] * TARGET_MS, 0.5), r["k"])), res["k_si"], si_tok, res["si_gpu"].mean() / S,
                res["eval_reps"],
            ])
    write_csv(out / "servers.csv", cols, rows)
    write_numbers(out / "numbers.json", cols, rows, **(numbers or {}))

    S = results[0]["tokens"]
    L = [
        "# DSI: latency and GPU cost per token against the number of target servers",
        "",
        header,
        "",
        f"Target {TARGET_MS:g} ms per forward (non-SI: {TARGET_MS:g} ms per token), drafter c x {TARGET_MS:g} ms, "
        f"i.i.d. acceptance a, S = {S} tokens, no prefill, no overheads, FIFO queue. N counts every target server, "
        "the non-SI chain's included (N = 1: the chain alone, i.e. non-SI). Best k: lookahead in 1..20 chosen per N "
        f"on {results[0]['search_reps']} paired replications; all numbers below from {results[0]['eval_reps']} fresh "
        "paired replications (one seed for every N, k and algorithm).",
        "",
        "## Where the curve flattens",
        "",
        "flat at = smallest N within 1% of DSI with unlimited servers; no wait from = smallest N (at the unlimited-"
        "server k) where no task ever queued, i.e. runs identical to unlimited servers; formula = "
        "`dsi_servers_needed(c, k)` = ceil(1/(k c)) + 1 (the chain's server included); beats SI from = smallest N "
        "whose mean latency per token is below SI's at its best k.",
        "",
        "| c | a | non-SI ms/tok | SI ms/tok (k) | DSI, unlimited N: ms/tok (k) | best k: flat at | no wait from | "
        "formula | k = 1: flat at | no wait from | formula | best k beats SI from | GPU-s/tok at flat: DSI / SI |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        a_ = an[(res["c"], res["a"])]
        b, k1 = a_["best"], a_["k1"]
        nb = b["flat"] or N_MAX
        gpu_flat = f"{res['rows'][('best', nb)]['gpu'].mean() / S:.3f}" + ("" if b["flat"] else f" (N = {N_MAX})")
        f = lambda v, n_max=N_MAX: f"{v}" if v is not None else f"> {n_max}"
        L.append(
            f"| {res['c']:g} | {res['a']:g} | {res['nonsi_lat'].mean() / S:.2f} | "
            f"{res['si_lat'].mean() / S:.2f} ({res['k_si']}) | {b['lat'][INF]:.2f} ({b['k_inf']}) | {f(b['flat'])} | "
            f"{f(b['no_wait'])} | {b['formula']} | {f(k1['flat'])} | {f(k1['no_wait'])} | {k1['formula']} | "
            f"{f(b['beats_si'])} | {gpu_flat} / {res['si_gpu'].mean() / S:.3f} |"
        )
    for policy, title in (("best", "best k per N"), ("k1", "k = 1")):
        L += ["", f"## What each extra server buys ({title})", "",
              "Latency per token in ms at N servers, and in brackets the gain from the N-th server "
              "(ms per token less than with N - 1). The last column: unlimited servers." + (
                  " k per N in servers.csv." if policy == "best" else ""),
              "",
              "| c | a | " + " | ".join(f"N={n}" for n in range(1, 11)) + " | N=16 | inf |",
              "|---|---|" + "---|" * 12]
        for res in results:
            p = an[(res["c"], res["a"])][policy]
            cells = [f"{p['lat'][1]:.1f}"] + [f"{p['lat'][n]:.1f} ({p['gain'][n]:.1f})" for n in range(2, 11)]
            L.append(f"| {res['c']:g} | {res['a']:g} | " + " | ".join(cells)
                     + f" | {p['lat'][N_MAX]:.1f} | {p['lat'][INF]:.1f} |")
    viol = sum(r["violations"] for r in results)
    comp = sum(r["comparisons"] for r in results)
    L += ["", "## Checks", "",
          f"Run-by-run monotonicity in N (same replication, same k, N -> N + 1; search runs for every k, evaluation "
          f"runs for k = 1): {viol} slower runs in {comp} comparisons.",
          "",
          f"Configurations simulated in the search: {sum(r['simulated'] for r in results)} of "
          f"{len(results) * K_MAX * (N_MAX + 1)} (the rest never queue: identical to fewer servers).",
          "",
          f"Run time: {elapsed:.1f} s with {workers} worker(s)."]
    text = "\n".join(L) + "\n"
    atomic_write_text(out / "summary.md", text)
    if png:
        from simspec.plots import save_figure

        save_figure(figure(results, an), out / "servers.png")
    return text


def figure(results: list[dict], an: dict):
    """Latency (top) and GPU-seconds (bottom) per token against N, a column per acceptance rate.

    simspec's figure style: DSI in its vermillion and SI in its blue (``simspec.plots.ALGORITHM_COLOURS``),
    darker for a cheaper drafter; non-SI grey; every axis with its unit; 7 inches wide.
    """
    from matplotlib.figure import Figure

    from simspec.plots import ALGORITHM_COLOURS, shade

    S = results[0]["tokens"]
    fig = Figure(figsize=(7.0, 6.4), layout="constrained")
    axes = fig.subplots(2, len(A_VALUES), sharex=True, sharey="row")
    levels = dict(zip(C_VALUES, (0.0, 0.35, 0.6)))
    ns = np.arange(1, N_MAX + 1)
    for j, a in enumerate(A_VALUES):
        ax_l, ax_g = axes[0, j], axes[1, j]
        for res in (r for r in results if r["a"] == a):
            c = res["c"]
            dsi, si = shade(ALGORITHM_COLOURS["dsi"], levels[c]), shade(ALGORITHM_COLOURS["si"], levels[c])
            for policy, ls, lab in (("best", "-", "best k"), ("k1", "--", "k = 1")):
                lat = [res["rows"][(policy, n)]["lat"].mean() / S for n in ns]
                gpu = [res["rows"][(policy, n)]["gpu"].mean() / S for n in ns]
                ax_l.plot(ns, lat, ls, color=dsi, marker="o" if policy == "best" else None, ms=3,
                          label=f"DSI, c = {c:g}, {lab}")
                ax_g.plot(ns, gpu, ls, color=dsi, marker="o" if policy == "best" else None, ms=3)
            ax_l.axhline(res["si_lat"].mean() / S, color=si, ls=":", lw=1.4, label=f"SI, c = {c:g}, best k")
            ax_g.axhline(res["si_gpu"].mean() / S, color=si, ls=":", lw=1.4)
            nf = an[(c, a)]["k1"]["formula"]
            if nf <= N_MAX:  # closed-form count for k = 1: a triangle on the k = 1 curve
                ax_l.plot([nf], [res["rows"][("k1", nf)]["lat"].mean() / S], "v", color=dsi, ms=8, mfc="none",
                          mew=1.5)
        ax_l.axhline(TARGET_MS, color=ALGORITHM_COLOURS["nonsi"], lw=1, label="non-SI")
        ax_g.axhline(TARGET_MS / 1000, color=ALGORITHM_COLOURS["nonsi"], lw=1)
        ax_l.set_title(f"acceptance a = {a:g}", fontsize=9)
        ax_g.set_xlabel("target servers N, the chain's included (servers)", fontsize=8)
        for ax in (ax_l, ax_g):
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("latency per token (ms)", fontsize=8)
    axes[1, 0].set_ylabel("GPU-seconds per token (s)", fontsize=8)
    axes[1, 0].set_xticks(ns[::3])
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7)
    fig.suptitle(f"DSI against the number of target servers (target {TARGET_MS:g} ms, S = {S})\n"
                 "triangle: ceil(1/c) + 1, the closed-form count for k = 1", fontsize=9)
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the replications")
    p.add_argument("--quick", action="store_true", help="S = 100, 2 search and 4 evaluation replications (tests)")
    p.add_argument("--tokens", type=int, default=None, help="S (default 200)")
    p.add_argument("--search-reps", type=int, default=None, help="default 10")
    p.add_argument("--eval-reps", type=int, default=None, help="default 40")
    p.add_argument("--workers", type=int, default=None, help="processes (default: 1 with --quick, else min(2, CPUs))")
    p.add_argument("--no-png", action="store_true", help="skip the figure")
    add_reference_flag(p)
    args = p.parse_args(argv)
    check_reference_flag(args)
    q = args.quick
    tokens = args.tokens or (100 if q else 200)
    search_reps = args.search_reps or (2 if q else 10)
    eval_reps = args.eval_reps or (4 if q else 40)
    workers = args.workers or (1 if q else min(2, os.cpu_count() or 1))
    results, elapsed = run(tokens, search_reps, eval_reps, args.seed, workers)
    given = list(sys.argv[1:] if argv is None else argv)
    shown = " ".join(a for j, a in enumerate(given) if not a.startswith("--out") and not (j and given[j - 1] == "--out"))
    header = f"Generated by `python experiments/dsi_servers/run.py{' ' + shown if shown else ''}` (seed {args.seed})."
    numbers = dict(experiment="dsi_servers", mode="quick" if q else "full", seed=args.seed, tokens=tokens,
                   search_reps=search_reps, eval_reps=eval_reps)
    text = write_outputs(results, Path(args.out), not args.no_png, header, elapsed, workers, numbers)
    if args.reference:
        reference = Path(__file__).parent / "quick_reference.json"
        atomic_write_text(reference, (Path(args.out) / "numbers.json").read_text())
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
