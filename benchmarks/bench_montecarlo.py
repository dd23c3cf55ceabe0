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
and the best of each measurement is kept, in wall time and in process-CPU time
(steadier on a shared machine); the figures are means per configuration and
the ratios reference / simspec.

Memory (``--mem-reps``, default 100,000 replications of ``S`` tokens, one
configuration): wall time and peak of the engines' own allocations
(``tracemalloc``: numpy reports its buffers to it), the outcomes array
excluded, for ``si_run``, ``dsi_run`` and ``nonsi_run`` on all replications at
once and, where the tree has it, in chunks from
``simspec.montecarlo.chunks.rep_chunks``.  ``--mem-compare`` also measures
``compare(..., reps=--mem-reps)`` (slow, and its peak includes the draw).

``--trace-tokens`` (default 10**6): CPU time and maximum RSS of one
discrete-event DSI run (``Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5,
servers=8)``) without a trace, traced in memory then written with
``write_jsonl``, and streamed with ``EventLog(path=...)``, each in a fresh
subprocess.

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


def _best(fn, repeats: int) -> tuple[float, float, object]:
    """Best wall time and best process-CPU time of ``repeats`` calls, and the last result."""
    wall = cpu = float("inf")
    out = None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, out


NAMES = ("reference", "draw", "si_run", "dsi_run", "nonsi_run", "engines", "compare")


def per_config(configs, reps: int, S: int, repeats: int, seed: int) -> dict:
    """Per-configuration best times (s, wall and CPU) of the reference, the draw, each engine and compare()."""
    import numpy as np

    from bench_heatmap import baseline_dsi, baseline_si
    from simspec import ConstantLatency, Scenario, StaticLookahead, compare
    from simspec.montecarlo.dsi import dsi_run
    from simspec.montecarlo.nonsi import nonsi_run
    from simspec.montecarlo.si import si_run

    times: dict[str, dict[str, list[float]]] = {"wall": {n: [] for n in NAMES}, "cpu": {n: [] for n in NAMES}}
    np.random.seed(seed)
    for i, (c, a, k) in enumerate(configs):
        T, D = ConstantLatency(1.0), ConstantLatency(c)
        pol = StaticLookahead(k)
        rng = np.random.default_rng([seed, i])
        s = Scenario.from_ms(1.0, c, a, lookahead=k, tokens=S)
        A = rng.random((reps, S)) < a
        calls = {
            "reference": lambda: ([baseline_si(c, a, k, S) for _ in range(reps)],
                                  [baseline_dsi(c, a, k, S) for _ in range(reps)]),
            "draw": lambda: rng.random((reps, S)) < a,
            "si_run": lambda: si_run(A, pol, T, D),
            "dsi_run": lambda: dsi_run(A, k, T, D),
            "nonsi_run": lambda: nonsi_run(T, S, reps),
            "engines": lambda: (si_run(A, pol, T, D), dsi_run(A, k, T, D), nonsi_run(T, S, reps)),
            "compare": lambda: compare(s, "montecarlo", rng=i, **{REPS_KW: reps}),
        }
        for n in NAMES:
            wall, cpu, _ = _best(calls[n], repeats)
            times["wall"][n].append(wall)
            times["cpu"][n].append(cpu)
    out: dict = {}
    for clock, t in times.items():
        mean = {n: statistics.fmean(v) for n, v in t.items()}
        out[clock] = {
            "mean_per_config_s": mean,
            "ratio_reference_over": {n: mean["reference"] / mean[n] for n in NAMES if n != "reference"},
            "ratio_reference_over_engines_plus_draw": mean["reference"] / (mean["engines"] + mean["draw"]),
        }
    return out


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


_TRACE_CHILD = r"""
import sys, time
import numpy as np
from simspec import Scenario
from simspec.des import EventLog, run_once, write_jsonl
S, mode, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, servers=8, tokens=S)
row = s.acceptance.draw(np.random.default_rng(0), S, 1).accepted[0]
c0 = time.process_time()
if mode == "none":
    run_once(s, "dsi", row)
elif mode == "memory":
    log = EventLog()
    run_once(s, "dsi", row, log=log)
    write_jsonl(path, log.events)
else:
    with EventLog(path=path) as log:
        run_once(s, "dsi", row, log=log)
cpu = time.process_time() - c0
# VmHWM: this process image's peak RSS (ru_maxrss may carry the parent's peak across fork and exec)
hwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
import simspec
print(cpu, hwm, simspec.__file__)
"""


def trace_costs(tokens: int, tree: Path | None) -> dict:
    """CPU time and peak RSS (Linux ``VmHWM``) of one DES DSI run of ``tokens``: no trace, traced in memory, streamed."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out: dict = {"tokens": tokens}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("none", "memory", "stream"):
            try:
                # cwd: the temporary folder, so that ``python -c`` does not import simspec from the cwd
                res = subprocess.run([sys.executable, "-c", _TRACE_CHILD, str(tokens), mode, str(Path(tmp) / f"{mode}.jsonl")],
                                     capture_output=True, text=True, env=env, check=True, cwd=tmp)
            except subprocess.CalledProcessError as exc:  # an engine without streaming
                out[mode] = {"error": exc.stderr.strip().splitlines()[-1]}
                continue
            cpu, rss, where = res.stdout.split()
            out[mode] = {"cpu_s": float(cpu), "max_rss_bytes": int(rss), "simspec": where}
        a, b = Path(tmp) / "memory.jsonl", Path(tmp) / "stream.jsonl"
        if a.exists() and b.exists():
            out["same_file"] = a.read_bytes() == b.read_bytes()
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
    if args.trace_tokens:
        result["trace"] = trace_costs(args.trace_tokens, args.tree)
    machine["loadavg_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    result["machine"] = machine
    return result


def report(label: str, r: dict) -> None:
    print(f"[{label}] simspec from {r['machine']['simspec_path']}; {r['configs']} configurations x {r['reps']} reps"
          f" x {r['tokens']} tokens, best of {r['repeats']}; load average {r['machine']['loadavg_before']}")
    w, c = r["speed"]["wall"], r["speed"]["cpu"]
    print(f"  {'per configuration':<22} {'wall ms':>9} {'ref / x':>9} {'CPU ms':>9} {'ref / x':>9}")
    for n in NAMES:
        rw = "" if n == "reference" else f"{w['ratio_reference_over'][n]:>8.1f}x"
        rc = "" if n == "reference" else f"{c['ratio_reference_over'][n]:>8.1f}x"
        print(f"  {n:<22} {1e3 * w['mean_per_config_s'][n]:>9.3f} {rw:>9} {1e3 * c['mean_per_config_s'][n]:>9.3f} {rc:>9}")
    print(f"  {'engines + draw':<22} {1e3 * (w['mean_per_config_s']['engines'] + w['mean_per_config_s']['draw']):>9.3f}"
          f" {w['ratio_reference_over_engines_plus_draw']:>8.1f}x"
          f" {1e3 * (c['mean_per_config_s']['engines'] + c['mean_per_config_s']['draw']):>9.3f}"
          f" {c['ratio_reference_over_engines_plus_draw']:>8.1f}x")
    mem = r.get("memory")
    if mem:
        print(f"  memory: {mem['reps']} reps x {mem['tokens']} tokens (outcomes {mem['outcomes_bytes'] / 1e6:.0f} MB,"
              f" excluded), config {mem['config']}")
        for n, v in mem.items():
            if isinstance(v, dict) and "peak_bytes" in v:
                extra = f", {v['chunks']} chunks, same result: {v['same_result']}" if "chunks" in v else ""
                print(f"    {n:<20} {v['wall_s']:>8.2f} s   peak {v['peak_bytes'] / 1e6:>9.1f} MB{extra}")
        print(f"    process max RSS {mem['ru_maxrss_bytes'] / 1e9:.2f} GB")
    tr = r.get("trace")
    if tr:
        print(f"  DES DSI run of {tr['tokens']} tokens (subprocesses):")
        for mode, label in (("none", "no trace"), ("memory", "EventLog() + write_jsonl"), ("stream", "EventLog(path=...)")):
            v = tr.get(mode, {})
            if "cpu_s" in v:
                print(f"    {label:<26} CPU {v['cpu_s']:>7.2f} s   max RSS {v['max_rss_bytes'] / 1e6:>7.0f} MB")
            else:
                print(f"    {label:<26} {v.get('error', 'not run')}")
        if "same_file" in tr:
            print(f"    streamed file == written file, byte for byte: {tr['same_file']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20 configurations, 10,000 replications for memory")
    p.add_argument("--configs", type=int, default=None, help="configurations timed (default 100; quick 20)")
    p.add_argument("--reps", type=int, default=5, help="replications per configuration (repo: 5)")
    p.add_argument("--tokens", type=int, default=1000, help="tokens per run, S (repo: 1000)")
    p.add_argument("--repeats", type=int, default=5, help="measurements per configuration, best kept (default 5)")
    p.add_argument("--mem-reps", type=int, default=None, help="replications of the memory test (default 100000; quick 10000; 0: skip)")
    p.add_argument("--mem-compare", action="store_true", help="also measure compare() at --mem-reps (slow)")
    p.add_argument("--trace-tokens", type=int, default=None,
                   help="tokens of the DES trace measurement (default 10**6; quick 10**5; 0: skip)")
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
    if args.trace_tokens is None:
        args.trace_tokens = 10**5 if args.quick else 10**6
    if args.tree is not None:
        sys.path.insert(0, str(args.tree.resolve()))

    results: dict = {}
    if args.before_tree is not None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "before.json"
            cmd = [sys.executable, __file__, "--tree", str(args.before_tree), "--json", str(out),
                   "--configs", str(args.configs), "--reps", str(args.reps), "--tokens", str(args.tokens),
                   "--repeats", str(args.repeats), "--mem-reps", str(args.mem_reps), "--seed", str(args.seed),
                   "--trace-tokens", str(args.trace_tokens)]
            cmd += ["--mem-compare"] if args.mem_compare else []
            cmd += ["--cpu", str(args.cpu)] if args.cpu is not None else []
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(args.before_tree)})
            results["before"] = json.loads(out.read_text())
    results["this"] = measure(args)
    for label, r in results.items():
        report(label, r)
    if "before" in results:
        print("  this vs before (each side's ratio to its own reference run, so machine drift cancels):")
        results["speedup_vs_before"] = {}
        for clock in ("wall", "cpu"):
            rb = results["before"]["speed"][clock]["ratio_reference_over"]
            ra = results["this"]["speed"][clock]["ratio_reference_over"]
            results["speedup_vs_before"][clock] = {n: ra[n] / rb[n] for n in NAMES if n != "reference"}
        for n in ("si_run", "dsi_run", "nonsi_run", "engines", "compare"):
            sw, sc = results["speedup_vs_before"]["wall"][n], results["speedup_vs_before"]["cpu"][n]
            print(f"    {n:<20} {sw:>7.1f}x (wall)  {sc:>7.1f}x (CPU)")
        mb, ma = results["before"].get("memory", {}), results["this"].get("memory", {})
        for n in ("si_run", "dsi_run", "compare"):
            if n in mb and n in ma:
                print(f"    {n:<20} at {ma['reps']} reps: peak {mb[n]['peak_bytes'] / 1e6:.0f} -> {ma[n]['peak_bytes'] / 1e6:.0f} MB,"
                      f" {mb[n]['wall_s']:.2f} -> {ma[n]['wall_s']:.2f} s")
        tb, ta = results["before"].get("trace", {}), results["this"].get("trace", {})
        if "cpu_s" in tb.get("memory", {}) and "cpu_s" in ta.get("stream", {}):
            print(f"    trace of {ta['tokens']} tokens: before in memory {tb['memory']['cpu_s']:.1f} s CPU,"
                  f" {tb['memory']['max_rss_bytes'] / 1e6:.0f} MB -> after streamed {ta['stream']['cpu_s']:.1f} s CPU,"
                  f" {ta['stream']['max_rss_bytes'] / 1e6:.0f} MB (untraced run: {ta['none']['cpu_s']:.1f} s CPU)")
    if args.json is not None:
        from simspec.io import write_json

        write_json(args.json, results if len(results) > 1 else results["this"])
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
