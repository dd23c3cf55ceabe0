#!/usr/bin/env python
"""Benchmark the Monte Carlo engines per configuration, and their memory at many replications.

Measured side by side, in one process pinned to ONE core, with BLAS/OpenMP
limited to one thread, alternating the measurements within each configuration
(so that a slow spell of a noisy machine hits all of them alike):

(a) the reference: a scalar, pure-Python re-implementation of the DSI
    authors' offline simulators (``bench_heatmap.baseline_si`` and
    ``baseline_dsi``; one SI run and one DSI run per repeat, ``S`` tokens,
    numpy's legacy ``np.random.geometric`` drawn ``S`` at a time);
(b) simspec's engines on the same ``(c, a, k)``: ``si_run`` (static ``k``),
    ``dsi_run`` and ``nonsi_run`` on one draw of ``reps`` rows of outcomes
    (the draw is timed separately: ``draw``);
(c) ``simspec.compare(scenario, "montecarlo", reps=reps)``, the whole call
    (draw, lookahead checks, the three engines, records).

Configurations are a random subset of the reference repo's heatmap grid
(``bench_heatmap.repo_configurations``).  Each is measured ``--repeats`` times
and the best of each measurement is kept; the figures are means per
configuration and the ratios reference / simspec.

Memory (``--mem-reps``, default 100,000 replications of ``S`` tokens, one
configuration): wall time and peak of the engines' own allocations
(``tracemalloc``: numpy reports its buffers to it), the outcomes array
excluded, for ``si_run``, ``dsi_run`` and ``nonsi_run`` on all replications at
once and, where the tree has it, in chunks from
``simspec.montecarlo.chunks.rep_chunks``.  ``--mem-compare`` also measures
``compare(..., reps=--mem-reps)`` (slow, and its peak includes the draw).

``--tree PATH`` imports simspec from another checkout (say, an export of the
previous commit) so that before and after can be run with the same script;
``--before-tree PATH`` runs that in a subprocess in the same invocation and
prints both.  Speed is measured here and only here; no test asserts it.

Usage::

    python benchmarks/bench_montecarlo.py                       # 100 configurations, 100k-rep memory
    python benchmarks/bench_montecarlo.py --quick               # 20 configurations, 10k-rep memory
    python benchmarks/bench_montecarlo.py --before-tree /tmp/old --json out.json
"""

from __future__ import annotations

import os
import sys

import _machine  # first: one BLAS thread, set before numpy is imported (directly or by simspec)

import argparse
import gc
import json
import platform
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPS_KW = "reps"  # compare()'s keyword for replications: set in measure() from its signature


def _reps_keyword() -> str:
    import inspect

    from simspec import compare

    return "replications" if "replications" in inspect.signature(compare).parameters else "reps"


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def per_config(configs, reps: int, S: int, repeats: int, seed: int) -> dict:
    """Per-configuration best times (s) of the reference, the draw, each engine and compare()."""
    import numpy as np

    from bench_heatmap import baseline_dsi, baseline_si
    from simspec import ConstantLatency, Scenario, StaticLookahead, compare
    from simspec.montecarlo.dsi import dsi_run
    from simspec.montecarlo.nonsi import nonsi_run
    from simspec.montecarlo.si import si_run

    names = ("reference", "draw", "si_run", "dsi_run", "nonsi_run", "engines", "compare")
    times: dict[str, list[float]] = {n: [] for n in names}
    np.random.seed(seed)
    for i, (c, a, k) in enumerate(configs):
        T, D = ConstantLatency(1.0), ConstantLatency(c)
        pol = StaticLookahead(k)
        rng = np.random.default_rng([seed, i])
        ref, _ = _best(lambda: ([baseline_si(c, a, k, S) for _ in range(reps)],
                                [baseline_dsi(c, a, k, S) for _ in range(reps)]), repeats)
        draw, A = _best(lambda: rng.random((reps, S)) < a, repeats)
        t_si, _ = _best(lambda: si_run(A, pol, T, D), repeats)
        t_dsi, _ = _best(lambda: dsi_run(A, k, T, D), repeats)
        t_non, _ = _best(lambda: nonsi_run(T, S, reps), repeats)
        t_eng, _ = _best(lambda: (si_run(A, pol, T, D), dsi_run(A, k, T, D), nonsi_run(T, S, reps)), repeats)
        s = Scenario.from_ms(1.0, c, a, lookahead=k, tokens=S)
        t_cmp, _ = _best(lambda: compare(s, "montecarlo", rng=i, **{REPS_KW: reps}), repeats)
        for n, t in zip(names, (ref, draw, t_si, t_dsi, t_non, t_eng, t_cmp)):
            times[n].append(t)
    mean = {n: statistics.fmean(v) for n, v in times.items()}
    return {
        "mean_per_config_s": mean,
        "ratio_reference_over": {n: mean["reference"] / mean[n] for n in names if n != "reference"},
        "ratio_reference_over_engines_plus_draw": mean["reference"] / (mean["engines"] + mean["draw"]),
    }


def memory(reps: int, S: int, with_compare: bool, seed: int) -> dict:
    """Wall time and tracemalloc peak (outcomes excluded) of each engine on ``reps`` replications."""
    import numpy as np

    from simspec import ConstantLatency, Scenario, StaticLookahead, compare
    from simspec.montecarlo.dsi import dsi_run
    from simspec.montecarlo.nonsi import nonsi_run
    from simspec.montecarlo.si import si_run

    try:
        from simspec.montecarlo.chunks import rep_chunks
    except ImportError:
        rep_chunks = None
    c, a, k = 0.1, 0.8, 5
    T, D = ConstantLatency(1.0), ConstantLatency(c)
    pol = StaticLookahead(k)
    rng = np.random.default_rng(seed)
    A = np.empty((reps, S), dtype=bool)
    for lo in range(0, reps, 1000):  # drawn in slices: no (reps, S) float temporary
        A[lo:lo + 1000] = rng.random((min(1000, reps - lo), S)) < a
    runs = {
        "si_run": lambda X: si_run(X, pol, T, D),
        "dsi_run": lambda X: dsi_run(X, k, T, D),
        "nonsi_run": lambda X: nonsi_run(T, S, X.shape[0]),
    }
    out: dict = {"reps": reps, "tokens": S, "config": {"c": c, "a": a, "k": k}, "outcomes_bytes": A.nbytes}
    tracemalloc.start()
    for name, fn in runs.items():
        gc.collect()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        res = fn(A)
        wall = time.perf_counter() - t0
        out[name] = {"wall_s": wall, "peak_bytes": tracemalloc.get_traced_memory()[1] - base}
        decode = res["decode_ms"]
        if rep_chunks is not None:
            del res
            gc.collect()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            t0 = time.perf_counter()
            parts = [fn(A[lo:hi])["decode_ms"] for lo, hi in rep_chunks(reps, S)]
            wall = time.perf_counter() - t0
            out[name + "_chunked"] = {"wall_s": wall, "peak_bytes": tracemalloc.get_traced_memory()[1] - base,
                                      "chunks": len(parts), "same_result": bool(np.array_equal(np.concatenate(parts), decode))}
        del decode
    if with_compare:
        del A
        gc.collect()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        compare(Scenario.from_ms(1.0, c, a, lookahead=k, tokens=S), "montecarlo", rng=seed, **{REPS_KW: reps})
        out["compare"] = {"wall_s": time.perf_counter() - t0, "peak_bytes": tracemalloc.get_traced_memory()[1] - base}
    tracemalloc.stop()
    import resource

    out["ru_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def measure(args) -> dict:
    global REPS_KW
    machine = _machine.pin_one_core(args.cpu)
    REPS_KW = _reps_keyword()

    import numpy as np

    import simspec
    from bench_heatmap import repo_configurations

    machine.update({"cpu_model": _machine.cpu_model(), "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "simspec": _machine.simspec_version(simspec), "simspec_path": str(Path(simspec.__file__).parent),
                    "blas": _machine.blas_info(),
                    "loadavg_before": os.getloadavg() if hasattr(os, "getloadavg") else None})
    configs = repo_configurations()
    pick = sorted(np.random.default_rng(args.seed).choice(len(configs), size=min(args.configs, len(configs)),
                                                          replace=False).tolist())
    sample = [configs[i] for i in pick]
    result = {"configs": len(sample), "reps": args.reps, "tokens": args.tokens, "repeats": args.repeats,
              "speed": per_config(sample, args.reps, args.tokens, args.repeats, args.seed)}
    if args.mem_reps:
        result["memory"] = memory(args.mem_reps, args.tokens, args.mem_compare, args.seed)
    machine["loadavg_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    result["machine"] = machine
    return result


def report(label: str, r: dict) -> None:
    sp = r["speed"]
    m = sp["mean_per_config_s"]
    print(f"[{label}] simspec from {r['machine']['simspec_path']}; {r['configs']} configurations x {r['reps']} reps"
          f" x {r['tokens']} tokens, best of {r['repeats']}")
    print(f"  {'per configuration':<34} {'mean ms':>9} {'reference /':>12}")
    for n in ("reference", "draw", "si_run", "dsi_run", "nonsi_run", "engines", "compare"):
        ratio = "" if n == "reference" else f"{sp['ratio_reference_over'][n]:>11.1f}x"
        print(f"  {n:<34} {1e3 * m[n]:>9.3f} {ratio:>12}")
    print(f"  {'engines + draw':<34} {1e3 * (m['engines'] + m['draw']):>9.3f} "
          f"{sp['ratio_reference_over_engines_plus_draw']:>11.1f}x")
    mem = r.get("memory")
    if mem:
        print(f"  memory: {mem['reps']} reps x {mem['tokens']} tokens (outcomes {mem['outcomes_bytes'] / 1e6:.0f} MB,"
              f" excluded), config {mem['config']}")
        for n, v in mem.items():
            if isinstance(v, dict) and "peak_bytes" in v:
                extra = f", {v['chunks']} chunks, same result: {v['same_result']}" if "chunks" in v else ""
                print(f"    {n:<20} {v['wall_s']:>8.2f} s   peak {v['peak_bytes'] / 1e6:>9.1f} MB{extra}")
        print(f"    process max RSS {mem['ru_maxrss_bytes'] / 1e9:.2f} GB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20 configurations, 10,000 replications for memory")
    p.add_argument("--configs", type=int, default=None, help="configurations timed (default 100; quick 20)")
    p.add_argument("--reps", type=int, default=5, help="replications per configuration (repo: 5)")
    p.add_argument("--tokens", type=int, default=1000, help="tokens per run, S (repo: 1000)")
    p.add_argument("--repeats", type=int, default=3, help="measurements per configuration, best kept (default 3)")
    p.add_argument("--mem-reps", type=int, default=None, help="replications of the memory test (default 100000; quick 10000; 0: skip)")
    p.add_argument("--mem-compare", action="store_true", help="also measure compare() at --mem-reps (slow)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    p.add_argument("--tree", type=Path, default=None, help="import simspec from this checkout")
    p.add_argument("--before-tree", type=Path, default=None,
                   help="also run the same measurement with simspec from this checkout, in a subprocess, and print both")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    args.configs = args.configs or (20 if args.quick else 100)
    if args.mem_reps is None:
        args.mem_reps = 10_000 if args.quick else 100_000
    if args.tree is not None:
        sys.path.insert(0, str(args.tree.resolve()))

    results: dict = {}
    if args.before_tree is not None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "before.json"
            cmd = [sys.executable, __file__, "--tree", str(args.before_tree), "--json", str(out),
                   "--configs", str(args.configs), "--reps", str(args.reps), "--tokens", str(args.tokens),
                   "--repeats", str(args.repeats), "--mem-reps", str(args.mem_reps), "--seed", str(args.seed)]
            cmd += ["--mem-compare"] if args.mem_compare else []
            cmd += ["--cpu", str(args.cpu)] if args.cpu is not None else []
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(args.before_tree)})
            results["before"] = json.loads(out.read_text())
    results["this"] = measure(args)
    for label, r in results.items():
        report(label, r)
    if "before" in results:
        b, a = results["before"]["speed"]["mean_per_config_s"], results["this"]["speed"]["mean_per_config_s"]
        print("  before / this (each normalised by its own reference run, so machine drift cancels):")
        rb, ra = results["before"]["speed"]["ratio_reference_over"], results["this"]["speed"]["ratio_reference_over"]
        for n in ("si_run", "dsi_run", "nonsi_run", "engines", "compare"):
            print(f"    {n:<20} {ra[n] / rb[n]:>8.1f}x faster (raw mean times {1e3 * b[n]:.3f} -> {1e3 * a[n]:.3f} ms)")
        results["speedup_vs_before"] = {n: ra[n] / rb[n] for n in ("si_run", "dsi_run", "nonsi_run", "engines", "compare")}
    if args.json is not None:
        from simspec.io import write_json

        write_json(args.json, results if len(results) > 1 else results["this"])
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
