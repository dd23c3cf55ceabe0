#!/usr/bin/env python
"""Benchmark the discrete-event engine against raw simpy on one core.

Measured side by side, in one process pinned to ONE core, with BLAS/OpenMP
limited to one thread, alternating the measurements within each repeat (so
that a slow spell of a noisy machine hits all of them alike):

(a) raw simpy: one process yielding ``env.timeout(1)`` ``--raw-events`` times
    (default: the same count as ``--tokens``) — timeouts per second, the
    ceiling any simpy engine works against;
(b) ``simspec.des.run_once`` on
    ``Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, servers=8, tokens=S)``
    (target 30 ms, drafter 3 ms, a = 0.8, k = 5, N = 8) for DSI, SI and
    non-SI, on one fixed acceptance row (seeded), S = 10**6 by default —
    simulated tokens per second (S / wall time of the call);
(c) the ratios tokens/s ÷ raw timeouts/s.  The requirement (the issue): DSI at
    >= 25 % of the raw rate.

Best and median over ``--repeats`` are reported.  An extra, untimed pass
counts the simpy events each algorithm schedules per token (on at most 10**5
tokens), which says how far an engine is from "one event per token".  Speed is
measured here and only here; no test asserts it (machines differ and are noisy).

Usage::

    python benchmarks/bench_des.py                    # S = 10**6, 3 repeats
    python benchmarks/bench_des.py --quick            # S = 10**5
    python benchmarks/bench_des.py --json out.json    # also write the figures as JSON
"""

from __future__ import annotations

import os

import _machine  # first: one BLAS thread, set before numpy is imported (directly or by simspec)

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

TARGET_RATIO = 0.25  # the requirement: DSI tokens/s >= 25 % of raw simpy timeouts/s
ALGORITHMS = ("dsi", "si", "nonsi")
EVENT_COUNT_TOKENS = 10**5  # the untimed event-count pass runs on at most this many tokens


# --------------------------------------------------------------------------------------------
# the measurements
# --------------------------------------------------------------------------------------------


def raw_simpy(n: int) -> tuple[float, float]:
    """Wall and CPU time of ``n`` bare ``env.timeout(1)`` yields in one simpy process."""
    import simpy

    def proc(env):
        for _ in range(n):
            yield env.timeout(1)

    env = simpy.Environment()
    env.process(proc(env))
    t0, c0 = time.perf_counter(), time.process_time()
    env.run()
    return time.perf_counter() - t0, time.process_time() - c0


def engine_call(scenario, algorithm: str, row):
    """Wall and CPU time of one ``run_once``, and its record."""
    from simspec.des import run_once

    t0, c0 = time.perf_counter(), time.process_time()
    rec = run_once(scenario, algorithm, row)
    return time.perf_counter() - t0, time.process_time() - c0, rec


def count_events(scenario, algorithm: str, row) -> int:
    """simpy events ``run_once`` schedules (untimed: the counting itself costs time)."""
    import simpy

    count = 0
    orig = simpy.Environment.schedule

    def schedule(self, event, priority=1, delay=0):
        nonlocal count
        count += 1
        return orig(self, event, priority, delay)

    simpy.Environment.schedule = schedule
    try:
        from simspec.des import run_once

        run_once(scenario, algorithm, row)
    finally:
        simpy.Environment.schedule = orig
    return count


def _stats(times: list[tuple[float, float]], work: int) -> dict:
    wall, cpu = [w for w, _ in times], [c for _, c in times]
    best, med, cpu_best = min(wall), statistics.median(wall), min(cpu)
    return {"best_s": best, "median_s": med, "all_s": wall, "cpu_best_s": cpu_best, "cpu_all_s": cpu,
            "rate_best_per_s": work / best, "rate_median_per_s": work / med, "rate_cpu_best_per_s": work / cpu_best}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=None, help="tokens per run, S (default 10**6; --quick 10**5)")
    p.add_argument("--quick", action="store_true", help="S = 10**5 (unless --tokens is given)")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats, best and median taken (default 3)")
    p.add_argument("--raw-events", type=int, default=None, help="timeouts in the raw simpy loop (default: S)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed acceptance row")
    p.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    p.add_argument("--no-event-count", action="store_true", help="skip the untimed event-count pass")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON to this path")
    args = p.parse_args(argv)
    S = args.tokens or (10**5 if args.quick else 10**6)
    n_raw = args.raw_events or S

    machine = _machine.pin_one_core(args.cpu)

    import numpy as np
    import simpy

    import simspec
    from simspec import Scenario

    machine.update({"cpu_model": _machine.cpu_model(), "platform": platform.platform(), "python": platform.python_version(),
                    "numpy": np.__version__, "simpy": simpy.__version__, "simspec": _machine.simspec_version(simspec),
                    "loadavg_before": os.getloadavg() if hasattr(os, "getloadavg") else None})

    scenario = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, servers=8, tokens=S)
    row = scenario.acceptance.draw(np.random.default_rng(args.seed), S, 1).accepted[0]

    times: dict[str, list[tuple[float, float]]] = {"raw": [], **{a: [] for a in ALGORITHMS}}
    records: dict = {}
    for _ in range(args.repeats):
        # alternate: one of each per repeat; collect garbage outside the timed calls
        gc.collect()
        times["raw"].append(raw_simpy(n_raw))
        for alg in ALGORITHMS:
            gc.collect()
            wall, cpu, rec = engine_call(scenario, alg, row)
            times[alg].append((wall, cpu))
            records[alg] = rec.to_dict()

    raw = _stats(times["raw"], n_raw)
    algs = {a: _stats(times[a], S) for a in ALGORITHMS}
    for a in ALGORITHMS:
        algs[a]["ratio_best"] = algs[a]["rate_best_per_s"] / raw["rate_best_per_s"]
        algs[a]["ratio_median"] = algs[a]["rate_median_per_s"] / raw["rate_median_per_s"]
        algs[a]["ratio_cpu_best"] = algs[a]["rate_cpu_best_per_s"] / raw["rate_cpu_best_per_s"]
    if not args.no_event_count:
        s_ev = min(S, EVENT_COUNT_TOKENS)
        sc_ev = scenario.replace(tokens=s_ev)
        for a in ALGORITHMS:
            algs[a]["events_per_token"] = count_events(sc_ev, a, row[:s_ev]) / s_ev
    machine["loadavg_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    result = {
        "tokens": S, "raw_timeouts": n_raw, "repeats": args.repeats, "seed": args.seed,
        "scenario": "Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, servers=8, tokens=S)",
        "raw_simpy": raw, "algorithms": algs, "target_ratio_dsi": TARGET_RATIO,
        "dsi_meets_target": algs["dsi"]["ratio_best"] >= TARGET_RATIO,
        "ratio_definition": "simulated tokens/s of run_once / raw simpy timeouts/s, same process, alternating repeats;"
        " ratio_best/ratio_median from wall time, ratio_cpu_best from process CPU time (steadier on a shared machine)",
        "records": records, "machine": machine,
    }

    print(f"machine: {machine['cpu_model']}, os.cpu_count()={machine['cpu_count']}, pinned to CPU "
          f"{machine.get('pinned')}; python {machine['python']}, numpy {machine['numpy']}, simpy {machine['simpy']}")
    print(f"S = {S} tokens, target 30 ms, drafter 3 ms, a = 0.8, k = 5, N = 8; {args.repeats} alternating repeats")
    print()
    hdr = (f"{'measurement':<22} {'best /s':>11} {'median /s':>11} {'ratio best':>11} {'ratio med':>10} "
           f"{'ratio CPU':>10} {'events/tok':>11}")
    print(hdr)
    print("-" * len(hdr))
    print(f"{'raw simpy timeouts':<22} {raw['rate_best_per_s']:>11,.0f} {raw['rate_median_per_s']:>11,.0f} "
          f"{1.0:>11.3f} {1.0:>10.3f} {1.0:>10.3f} {'1':>11}")
    for a in ALGORITHMS:
        r = algs[a]
        ev = f"{r['events_per_token']:.3f}" if "events_per_token" in r else "-"
        print(f"{a + ' tokens':<22} {r['rate_best_per_s']:>11,.0f} {r['rate_median_per_s']:>11,.0f} "
              f"{r['ratio_best']:>11.3f} {r['ratio_median']:>10.3f} {r['ratio_cpu_best']:>10.3f} {ev:>11}")
    print()
    print(f"DSI at {100 * algs['dsi']['ratio_best']:.1f} % of the raw rate (best; median "
          f"{100 * algs['dsi']['ratio_median']:.1f} %, CPU time {100 * algs['dsi']['ratio_cpu_best']:.1f} %), "
          f"target >= {100 * TARGET_RATIO:.0f} %: "
          f"{'met' if result['dsi_meets_target'] else 'NOT met'}")
    print("decode ms per token (the results, unchanged by speed work): "
          + ", ".join(f"{a} {records[a]['latency_per_token_ms']:.6f}" for a in ALGORITHMS))
    print(f"load average before/after: {machine['loadavg_before']} / {machine['loadavg_after']}")

    if args.json is not None:
        from simspec.io import write_json  # atomic: temporary file + rename

        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
