"""Sweep throughput: rows per second on this process, and on 1 and 2 worker processes (issue 10, item 2).

    python benchmarks/bench_sweep.py [--rows-per-side 8] [--replications 100] [--tokens 500]

Every configuration runs the same grid (``acceptance`` × ``drafter_ms``, compare's Monte Carlo)
in one run, side by side, and checks that the rows are identical. Scaling efficiency =
(rows/s with N workers) / (N × rows/s with 1 worker). Small rows travel in batches (``--batch``).
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
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args(argv)
    n = args.rows_per_side
    grid = Grid(product={"acceptance": list(np.round(np.linspace(0.55, 0.95, n), 3)),
                         "drafter_ms": list(np.round(np.linspace(1.0, 9.0, n), 2))},
                fixed={"target_ms": 30.0, "tokens": args.tokens})
    kw = {"replications": args.replications, "rng": 0, "batch": args.batch}
    timings, rows = {}, {}
    t = time.perf_counter()
    rows["in-process"] = sweep(grid, **kw).rows
    timings["in-process"] = time.perf_counter() - t
    for workers in (1, 2):
        with ProcessPoolExecutor(workers) as ex:
            ex.submit(int, 0).result()  # start the pool outside the timing
            t = time.perf_counter()
            rows[f"{workers} process(es)"] = sweep(grid, executor=ex, **kw).rows
            timings[f"{workers} process(es)"] = time.perf_counter() - t
    same = all(r == rows["in-process"] for r in rows.values())
    print(f"{len(grid)} rows, compare montecarlo, {args.replications} replications x {args.tokens} tokens, "
          f"batch {args.batch}; identical rows everywhere: {same}")
    for name, s in timings.items():
        print(f"  {name:<14} {s:7.2f} s   {len(grid) / s:7.1f} rows/s")
    eff = timings["1 process(es)"] / (2 * timings["2 process(es)"])
    print(f"  scaling efficiency on 2 workers: {eff:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
