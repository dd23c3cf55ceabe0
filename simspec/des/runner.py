"""Run the discrete-event engine: one run, or replications in parallel, as records.

Each replication ``i`` gets its own ``SeedSequence`` child of the user's seed,
split into an acceptance stream and a latency stream: the outcomes ``A`` of
replication ``i`` are the same for non-SI, SI and DSI (paired runs) and do not
depend on the executor, the order replications finish in, or the latency model.
Replications run in any ``concurrent.futures.Executor`` (threads, processes,
Dask's ``Client.get_executor()``); without one they run in this process.
"""

from __future__ import annotations

import sys
from concurrent.futures import Executor, as_completed
from dataclasses import asdict
from typing import Literal

import numpy as np
import simpy

from .._checks import check_des_work, check_rng, int_at_least
from ..errors import InvalidParameterError, UnsupportedScenarioError
from ..latency import prefill_ms
from ..lookahead import LookaheadPolicy, StaticLookahead, across_rounds
from ..montecarlo.positions import next_rejection
from ..deployment import Overheads, check_queue, dsi_servers_needed
from ..planner import CHAIN_ONLY_NOTE, best_lookahead
from ..records import RunRecord, SimulationResult
from ..scenario import Scenario
from .dsi import DSIRun
from .overlap import pearl_process, pearl_window, pipeline_process
from .tree import TreeDSIRun, TreeSpec, tree_process, tree_spec
from .si import nonsi_process, si_process
from .trace import EventLog

__all__ = ["Algorithm", "RunRecord", "SimulationResult", "run_once", "simulate"]

Algorithm = Literal["nonsi", "si", "dsi", "pearl", "pipeline", "tree"]
ALGORITHMS = ("nonsi", "si", "dsi", "pearl", "pipeline", "tree")


def _resolve_dsi(s: Scenario) -> tuple[int | LookaheadPolicy, str]:
    """DSI's lookahead on ``s`` (the planner's choice for "best"; a stop rule as given) and a note on the choice."""
    la = s.lookahead
    if isinstance(la, LookaheadPolicy):
        if la.static_k is None:
            return _dsi_policy(la), ""
        return la.static_k, ""
    choice = best_lookahead(s, "dsi")
    return choice.k, choice.note


def _dsi_policy(policy: LookaheadPolicy) -> LookaheadPolicy:
    if across_rounds(policy) and not hasattr(policy.start(1), "observe_task"):
        raise UnsupportedScenarioError(
            f"DSI runs {policy.name} only if its controller learns from one verification at a time "
            "(observe_task): the coordinator applies DSI's verifications in position order")
    return policy


def _resolve_si(s: Scenario) -> tuple[LookaheadPolicy, str]:
    la = s.lookahead
    if isinstance(la, LookaheadPolicy):
        return la, ""
    choice = best_lookahead(s, "si")
    return StaticLookahead(choice.k), choice.note


def _overlap_lookahead(s: Scenario, algorithm: str) -> int:
    """PEARL's window or the pipeline's cap: the scenario's static k, or for "best" the rule of the method."""
    la = s.lookahead
    if isinstance(la, LookaheadPolicy):
        if la.static_k is None:
            raise UnsupportedScenarioError(f"{algorithm} takes a static lookahead (its window), not {la.name}")
        return la.static_k
    return pearl_window(s.target, s.drafter) if algorithm == "pearl" else s.k_max


def _deployment(s: Scenario, queue, chain, overheads) -> Scenario:
    """``s`` with the keyword overrides of simulate/run_once applied to its deployment."""
    changes = {k: v for k, v in (("queue", queue), ("chain", chain), ("overheads", overheads)) if v is not None}
    return s.replace(**changes) if changes else s


def _outcomes(accepted, tokens: int) -> np.ndarray:
    """``accepted`` as a 1-D bool array of length ``tokens``: bools, or numbers that are exactly 0 or 1.

    ``np.asarray(x, dtype=bool)`` would read 0.3 as accepted; outcomes are not probabilities.
    """
    arr = np.asarray(accepted)
    if arr.shape != (tokens,):
        raise InvalidParameterError(f"accepted must have shape ({tokens},), got {arr.shape}")
    if arr.dtype != bool:
        if arr.dtype.kind not in "iuf" or not np.all((arr == 0) | (arr == 1)):
            bad = (arr.ravel()[np.flatnonzero(~((arr == 0) | (arr == 1)))[0]].item() if arr.dtype.kind in "iuf"
                   else f"an array of dtype {arr.dtype}")
            raise InvalidParameterError(
                f"accepted must hold outcomes, bool or 0/1 (1 = the draft was accepted), got {bad}; to draw "
                "outcomes from acceptance probabilities use an acceptance process, e.g. "
                "IIDAcceptance(a).sample(rng, tokens)[0]"
            )
    check_des_work(tokens, 1, ("scenario.tokens", "replications"))
    return arr.astype(bool)


def run_once(
    scenario: Scenario,
    algorithm: Algorithm,
    accepted: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    lookahead: LookaheadPolicy | int | None = None,
    queue: str | None = None,
    chain: bool | None = None,
    overheads: Overheads | None = None,
    signals=None,
    log: EventLog | None = None,
    unit: int | None = None,
) -> RunRecord:
    """One run of ``algorithm`` on the outcomes ``accepted`` (1-D bool of length ``scenario.tokens``).

    ``rng`` draws stochastic latencies (unused when latencies are constant).
    ``lookahead`` overrides the scenario's (``"best"`` is resolved by the planner);
    ``queue``, ``chain`` and ``overheads`` override the scenario's deployment.
    ``unit``: the independent unit the outcomes came from (recorded in the run).
    """
    s = _deployment(scenario, queue, chain, overheads)
    dep = s.deployment
    queue, chain, overheads = dep.queue, dep.chain, dep.overheads
    A = _outcomes(accepted, s.tokens)
    rng = rng if rng is not None else np.random.default_rng(0)
    log = log if log is not None else EventLog(False)
    queue = check_queue(queue)
    env = simpy.Environment()
    nxt = next_rejection(A[None, :])[0]
    # prefills: the target's, and for SI/DSI the drafter's on its own device at the same time; a prefill
    # forward processes the prompt's tokens on an empty cache (a prompt length of 0: unknown, the model's TTFT)
    target_prefill = prefill_ms(s.target, s.prompt_len, rng)
    drafter_prefill = 0.0 if algorithm == "nonsi" else prefill_ms(s.drafter, s.prompt_len, rng)
    ttft = max(target_prefill, drafter_prefill)
    if ttft:
        log(0.0, "prefill_start", "prefill")
        env.run(until=ttft)
        log(ttft, "prefill_end", "prefill")
    if algorithm == "dsi" and isinstance(lookahead, TreeSpec):
        run = TreeDSIRun(env, A, nxt.tolist(), lookahead.tree.depth, s.target, s.drafter, rng, s.servers, queue,
                         chain, overheads, s.prompt_len, log, signals, spec=lookahead)
        k = lookahead.label
    elif algorithm == "dsi":
        k = lookahead if lookahead is not None else _resolve_dsi(s)[0]
        if isinstance(k, LookaheadPolicy):
            k = k.static_k if k.static_k is not None else _dsi_policy(k)
        else:
            k = int_at_least("lookahead", k, 1)
        rule = k.start(1) if isinstance(k, LookaheadPolicy) else k
        run = DSIRun(env, A, nxt.tolist(), rule, s.target, s.drafter, rng, s.servers, queue, chain, overheads,
                     s.prompt_len, log, signals)
        k = k.name if isinstance(k, LookaheadPolicy) else k
    if algorithm == "dsi":
        run.start()
        env.run(until=run.done)
        end = run.end_time
        pool = run.pool
        started = pool.started + run.chain_started
        useful = run.useful_tasks + run.chain_useful
        return RunRecord(
            "dsi", end, ttft, end - ttft, s.tokens, k, s.servers,
            verifications=useful, target_forwards=started, target_forwards_wasted=started - useful,
            drafter_forwards=run.drafter_forwards, target_busy_ms=pool.busy_time + run.chain_busy + target_prefill,
            drafter_busy_ms=run.drafter_busy + drafter_prefill, peak_servers_busy=run.meter.peak,
            mean_servers_busy=run.meter.area(end) / max(end - ttft, 1e-300),
            queueing_delay_ms=pool.queue_delay, rejections=run.rejections, tasks_queued=pool.queued, unit=unit,
        )
    stats = {"target_busy": 0.0, "drafter_busy": 0.0, "rounds": 0, "drafts": 0, "rejections": 0, "peak": 0}
    if algorithm == "si":
        pol = lookahead if lookahead is not None else _resolve_si(s)[0]
        pol = StaticLookahead(pol) if isinstance(pol, int) else pol
        env.process(si_process(env, A, nxt, pol, s.target, s.drafter, rng, overheads, s.prompt_len,
                               signals or {}, log, stats))
        env.run()
        forwards, la = stats["rounds"], (pol.static_k if pol.static_k is not None else pol.name)
    elif algorithm == "nonsi":
        env.process(nonsi_process(env, s.tokens, s.target, rng, s.prompt_len, log, stats,
                                  overheads.per_emitted_token_ms))
        env.run()
        forwards, la = s.tokens, None
    elif algorithm == "tree":
        spec = lookahead if isinstance(lookahead, TreeSpec) else tree_spec(s)[0]
        env.process(tree_process(env, A, spec.parents, spec.hazards, s.target, s.drafter, rng, s.prompt_len, stats,
                                 overheads, log))
        env.run()
        forwards, la = stats["rounds"], spec.label
        stats["peak"] = 1
    elif algorithm in ("pearl", "pipeline"):
        la = lookahead if lookahead is not None else _overlap_lookahead(s, algorithm)
        la = la.static_k if isinstance(la, LookaheadPolicy) else int_at_least("lookahead", la, 1)
        if la is None:
            raise UnsupportedScenarioError(f"{algorithm} takes a static lookahead (its window), not a dynamic policy")
        proc = pearl_process if algorithm == "pearl" else pipeline_process
        if algorithm == "pearl" and la < 2:
            raise InvalidParameterError("PEARL's window must hold at least 2 drafts (lookahead >= 2)")
        env.process(proc(env, A, la, s.target, s.drafter, rng, s.prompt_len, stats, overheads, log))
        env.run()
        forwards = stats["rounds"]
        stats["peak"] = 1
    else:
        raise InvalidParameterError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    end = env.now
    return RunRecord(
        algorithm, end, ttft, end - ttft, s.tokens, la, 1, verifications=stats["rounds"] or s.tokens,
        target_forwards=forwards, target_forwards_wasted=0, drafter_forwards=stats["drafts"],
        target_busy_ms=stats["target_busy"] + target_prefill, drafter_busy_ms=stats["drafter_busy"] + drafter_prefill,
        peak_servers_busy=stats["peak"], mean_servers_busy=stats["target_busy"] / max(end - ttft, 1e-300),
        queueing_delay_ms=0.0, rejections=stats["rejections"], unit=unit,
    )


def _replicate(scenario, algorithm, lookahead, seed, index, trace, trace_path=None):
    acc_seed, lat_seed = seed.spawn(2)
    draw = scenario.acceptance.draw(np.random.default_rng(acc_seed), scenario.tokens, 1)
    # a replayed trace is one independent unit however often it is replayed
    unit = index if draw.units is None else -1 - int(np.asarray(draw.units)[0])
    log = EventLog(trace or trace_path is not None, path=trace_path, keep=trace)
    try:
        rec = run_once(scenario, algorithm, draw.accepted[0], np.random.default_rng(lat_seed), lookahead=lookahead,
                       signals={k: v for k, v in draw.signals.items()}, log=log, unit=unit)
    except BaseException:
        log.abort()
        raise
    if trace_path is not None:
        log.close()
    return rec, log.events


def simulate(
    scenario: Scenario,
    algorithm: Algorithm = "dsi",
    *,
    replications: int = 20,
    rng: int | np.random.SeedSequence | np.random.Generator | None = None,
    queue: str | None = None,
    chain: bool | None = None,
    overheads: Overheads | None = None,
    executor: Executor | None = None,
    progress: bool = False,
    trace: bool = False,
    trace_path: str | None = None,
    tree=None,
    tree_acceptance=None,
) -> SimulationResult:
    """Replications of ``algorithm`` on ``scenario`` in virtual time.

    ``rng``: an int seed, a ``SeedSequence`` or a ``Generator`` (replication
    ``i`` uses the ``i``-th spawned ``SeedSequence`` child, so results do not
    depend on ``executor``); the servers, queue discipline (``"fifo"`` or
    ``"lifo"``), chain and overheads come from ``scenario.deployment``, and
    ``queue``, ``chain`` and ``overheads`` override them; ``trace=True`` keeps
    the event log of the first replication in ``result.events``; ``trace_path``
    streams it to that file as JSON lines while it runs (written atomically;
    memory stays flat however long the run);
    ``progress=True`` draws a progress bar on stderr.  ``tree`` and ``tree_acceptance`` (a
    :class:`~simspec.TokenTree` and a tree law) set the ``"tree"`` algorithm's tree; by default
    the law comes from the acceptance rate and the tree is :func:`simspec.best_tree`'s.  ``lookahead="best"`` is
    resolved by the planner (:func:`simspec.planner.best_lookahead`): by the
    closed forms or the Monte Carlo where they apply, and by simulating
    candidate lookaheads under queueing (no lookahead fits the servers),
    overheads, or stochastic or context-dependent latencies — the result's
    ``notes`` say which.

    >>> from simspec import Scenario
    >>> from simspec.des import simulate
    >>> s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, servers=4, tokens=200)
    >>> res = simulate(s, "dsi", replications=4, rng=1)
    >>> res.peak_servers_busy.mean <= 4, res.latency_per_token_ms.mean < 30.0
    (True, True)
    """
    reps = int_at_least("replications", replications, 1)
    check_rng(rng)
    check_des_work(scenario.tokens, reps, ("scenario.tokens", "replications"))
    algorithm = algorithm.lower()  # type: ignore[assignment]
    if algorithm not in ALGORITHMS:
        raise InvalidParameterError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if (tree is not None or tree_acceptance is not None) and algorithm not in ("tree", "dsi"):
        raise InvalidParameterError(f"tree and tree_acceptance set the tree of 'tree' (tree SI) or 'dsi' (tree "
                                    f"tasks), not {algorithm!r}'s")
    scenario = _deployment(scenario, queue, chain, overheads)
    if isinstance(rng, np.random.Generator):  # a generator advances: two calls draw different runs
        seeds = rng.bit_generator.seed_seq.spawn(reps)
    else:
        # a seed does not: children are derived without mutating the caller's SeedSequence, so the
        # same seed gives every algorithm and configuration the same outcomes (paired runs)
        ss = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
        seeds = [np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (i,), pool_size=ss.pool_size)
                 for i in range(reps)]
    note = ""
    target_servers = 1
    if algorithm == "dsi" and (tree is not None or tree_acceptance is not None):
        if tree is None:
            raise InvalidParameterError("DSI with tree tasks needs tree=TokenTree(...) (its depth is the lookahead)")
        lookahead, note = tree_spec(scenario, tree, tree_acceptance)
        note = (note + "; " if note else "") + "verification tasks are trees; the drafter follows the rank-1 path"
        target_servers = scenario.servers
    elif algorithm == "dsi":
        lookahead, note = _resolve_dsi(scenario)
        # a stop rule's blocks vary: without a server count, it uses what its tasks need (the runs' peak)
        target_servers = scenario.servers or (int(dsi_servers_needed(scenario, lookahead))
                                              if isinstance(lookahead, int) else None)
        if scenario.deployment.speculation_servers == 0:
            note = CHAIN_ONLY_NOTE
    elif algorithm == "si":
        lookahead, note = _resolve_si(scenario)
    elif algorithm == "tree":
        lookahead, note = tree_spec(scenario, tree, tree_acceptance)
        note = (note + "; " if note else "") + ("the rank-1 child follows the scenario's outcomes, later "
                                                "siblings the tree law's conditional rates")
    elif algorithm in ("pearl", "pipeline"):
        lookahead = _overlap_lookahead(scenario, algorithm)
        if scenario.lookahead == "best":
            note = (f"{algorithm}'s window: the drafts that fit in one target forward, max(2, round(T/d)) = "
                    f"{lookahead}" if algorithm == "pearl" else
                    f"pipeline: each verification takes every draft made since the confirmed prefix, at most "
                    f"k_max = {lookahead}")
    else:
        lookahead = None
    results: list = [None] * reps
    bar = _Progress(reps, f"simspec {algorithm}") if progress else None
    if executor is None:
        for i, seed in enumerate(seeds):
            results[i] = _replicate(scenario, algorithm, lookahead, seed, i, trace and i == 0,
                                    trace_path if i == 0 else None)
            bar and bar.step()
    else:
        futures = {executor.submit(_replicate, scenario, algorithm, lookahead, seed, i, trace and i == 0,
                                   trace_path if i == 0 else None): i
                   for i, seed in enumerate(seeds)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            bar and bar.step()
    bar and bar.close()
    runs = tuple(r for r, _ in results)
    if target_servers is None:
        target_servers = max(r.peak_servers_busy for r in runs)  # the chain's server is counted in the peak
    dep = scenario.deployment
    options = {"queue": dep.queue, "chain": dep.chain, **{k: v for k, v in asdict(dep.overheads).items()}}
    return SimulationResult(algorithm, scenario.describe(), runs, options, results[0][1], target_servers, note)


class _Progress:
    """A dependency-free progress bar on stderr (only when stderr is a terminal or asked for)."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self._draw()

    def _draw(self) -> None:
        width = 30
        filled = int(width * self.done / self.total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
        sys.stderr.flush()

    def step(self) -> None:
        self.done += 1
        self._draw()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()
