"""Sweep throughput: rows per second in this process, on 1 and 2 worker processes, and on a Dask
LocalCluster of 1 and 2 workers (issue 10).

    python benchmarks/bench_sweep.py [--rows-per-side 8] [--method montecarlo] [--replications 100]
                                     [--tokens 500] [--batch 4] [--repeats 3]

Every configuration runs the same grid (``acceptance`` × ``drafter_ms``, compare's Monte Carlo, or
its closed forms with ``--method theory``: small rows that measure the per-task overhead) in one
run, side by side, and checks that the rows are identical. Each executor runs a small warm-up sweep
first (workers started, simspec imported), outside the timing; the grid then runs ``--repeats``
times on the same workers and the best time counts (a shared machine's load only ever slows a
run down). Scaling efficiency = (rows/s with N workers) / (N × rows/s with 1 worker of the same
kind). Dask workers are processes with one thread each (``LocalCluster(n_workers=N,
threads_per_worker=1)``); the Dask rows are skipped when ``dask.distributed`` is not installed
(the ``cluster`` extra).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from simspec.sweeps import Grid, sweep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows-per-side", type=int, default=8)
    ap.add_argument("--method", choices=("montecarlo", "theory"), default="montecarlo")
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    n = args.rows_per_side
    grid = Grid(product={"acceptance": list(np.round(np.linspace(0.55, 0.95, n), 3)),
                         "drafter_ms": list(np.round(np.linspace(1.0, 9.0, n), 2))},
                fixed={"target_ms": 30.0, "tokens": args.tokens})
    warm = Grid(product={"acceptance": [0.6, 0.7, 0.8, 0.9]}, fixed={"target_ms": 30.0, "drafter_ms": 3.0,
                                                                      "tokens": 50})
    kw = {"method": args.method, "rng": 0, "batch": args.batch}
    if args.method == "montecarlo":
        kw["replications"] = args.replications
    timings, rows = {}, {}

    def timed(name, executor=None):
        sweep(warm, method="theory", executor=executor, batch=1)  # start workers, import simspec
        best = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            rows[name] = sweep(grid, executor=executor, **kw).rows
            best = min(best, time.perf_counter() - t)
        timings[name] = best

    timed("in-process")
    for workers in (1, 2):
        with ProcessPoolExecutor(workers) as ex:
            timed(f"{workers} process(es)", ex)
    try:
        import logging

        from dask.distributed import Client, LocalCluster
    except ImportError:
        print("dask.distributed is not installed (the cluster extra): no Dask rows")
    else:
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
                timed(f"Dask, {workers} worker(s)", client)
    same = all(r == rows["in-process"] for r in rows.values())
    what = (f"{args.replications} replications x {args.tokens} tokens" if args.method == "montecarlo"
            else "closed forms")
    print(f"{len(grid)} rows, compare {args.method}, {what}, batch {args.batch}, best of {args.repeats}; "
          f"identical rows everywhere: {same}")
    for name, s in timings.items():
        print(f"  {name:<20} {s:7.2f} s   {len(grid) / s:8.1f} rows/s")
    for kind in ("{} process(es)", "Dask, {} worker(s)"):
        one, two = kind.format(1), kind.format(2)
        if one in timings:
            print(f"  scaling efficiency, {two}: {timings[one] / (2 * timings[two]):.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
