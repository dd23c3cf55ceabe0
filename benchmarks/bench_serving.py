"""Serving engine speed: simulated requests per second of wall time, against a plain-simpy baseline (issue 11).

    python benchmarks/bench_serving.py [--requests 10000] [--max-batch 32] [--repeats 3] [--cpu N]

The baseline is the same scheduler written the way a simpy user would: one process per
request, which waits on an event per step the engine runs for it. It runs plain decoding
(non-SI), FIFO admission, prefill steps apart, no KV limit — the configuration both support.
Its finish times must equal the engine's (checked before timing). Both run in this process,
side by side, pinned to one core; the figure is the median over ``--repeats``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _machine  # noqa: F401  (one BLAS thread; import before numpy)
import numpy as np
import simpy

from simspec import AffineLatency, ConstantLatency, IIDAcceptance, StaticLookahead, TokenTree
from simspec.batch_latency import BatchedLatency
from simspec.deployment import Overheads
from simspec.des.tree import TreeSpec
from simspec.trees import PositionalTreeAcceptance
from simspec.serving import Batching, PoissonArrivals, UniformLengths, Workload
from simspec.serving.dsi import run_dsi_engine
from simspec.serving.engine import run_engine


def baseline(table, target: BatchedLatency, max_batch: int) -> np.ndarray:
    """Plain simpy: a process per request; the engine wakes each sequence's process every step."""
    env = simpy.Environment()
    waiting: list = []
    running: list = []
    finish = np.zeros(len(table))
    wake = [env.event()]

    def request(i):
        yield env.timeout(max(float(table.arrival_ms[i]) - env.now, 0.0))
        me = {"i": i, "left": int(table.output_len[i]), "prompt": int(table.prompt_len[i]), "pos": 0,
              "prefilled": False, "step": env.event()}
        waiting.append(me)
        if not wake[0].triggered:
            wake[0].succeed()
        while me["left"] > 0:
            yield me["step"]
            me["step"] = env.event()
        finish[i] = env.now

    def engine():
        while True:
            if not waiting and not running:
                wake[0] = env.event()
                yield wake[0]
                continue
            new = []
            while waiting and len(running) < max_batch:
                r = waiting.pop(0)
                running.append(r)
                new.append(r)
            if new:
                yield env.timeout(target.step_ms([r["prompt"] for r in new], [0] * len(new), "prefill"))
                for r in new:
                    r["prefilled"] = True
                continue
            yield env.timeout(target.step_ms([1] * len(running), [r["prompt"] + r["pos"] for r in running]))
            for r in list(running):
                r["pos"] += 1
                r["left"] -= 1
                if r["left"] == 0:
                    running.remove(r)
                r["step"].succeed()

    for i in range(len(table)):
        env.process(request(i))
    env.process(engine())
    while np.count_nonzero(finish) < len(table) and env._queue:
        env.step()
    return finish


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--rate", type=float, default=15.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=None)
    args = ap.parse_args(argv)
    print("pinning:", _machine.pin_one_core(args.cpu))
    w = Workload(PoissonArrivals(args.rate), prompt_len=UniformLengths(32, 512), output_len=UniformLengths(32, 256),
                 requests=args.requests)
    table = w.generate(np.random.default_rng(0))
    target = BatchedLatency(AffineLatency(tpot_ms=30.0, per_extra_token_ms=0.2, ttft_ms=60.0))
    drafter = BatchedLatency(ConstantLatency(3.0, ttft_ms=5.0))
    acc = IIDAcceptance(0.8)
    rng = np.random.default_rng(1)
    outcomes = [acc.draw(rng, int(s), 1).accepted[0] for s in table.output_len]
    cfg = Batching(max_batch=args.max_batch)

    tree = TreeSpec(TokenTree.k_ary([2, 2, 1, 1]), PositionalTreeAcceptance.from_chain_rate(0.8, sibling_rate=0.4))

    def engine(alg):
        return run_engine(table, outcomes, None, target, drafter, alg, StaticLookahead(4), cfg, Overheads(),
                          np.random.default_rng(0), tree, np.random.default_rng(2))

    eng = engine("nonsi")
    base = baseline(table, target, args.max_batch)
    np.testing.assert_allclose(base, [r.finish for r in eng.requests], rtol=1e-12)
    times = {"plain simpy (non-SI)": [], "simspec engine (non-SI)": [], "simspec engine (SI, k=4)": [],
             "simspec engine (tree SI, 14 nodes)": [], "simspec DSI engine (k=4, 2 servers)": []}
    dsi_cfg = Batching(max_batch=args.max_batch, replicas=2)
    for _ in range(args.repeats):
        t = time.perf_counter()
        baseline(table, target, args.max_batch)
        times["plain simpy (non-SI)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        engine("nonsi")
        times["simspec engine (non-SI)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        engine("si")
        times["simspec engine (SI, k=4)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        engine("tree")
        times["simspec engine (tree SI, 14 nodes)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        run_dsi_engine(table, outcomes, None, target, drafter, StaticLookahead(4), dsi_cfg, Overheads(),
                       np.random.default_rng(0))
        times["simspec DSI engine (k=4, 2 servers)"].append(time.perf_counter() - t)
    ref = statistics.median(times["plain simpy (non-SI)"])
    print(f"{args.requests} requests, max batch {args.max_batch}, Poisson {args.rate}/s; "
          f"median of {args.repeats}, one core")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:36s} {m:7.2f} s  {args.requests / m:9.0f} requests/s  {ref / m:5.2f}x the baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
