"""Run the discrete-event engine: one run, or replications in parallel, as records.

Each replication ``i`` gets its own ``SeedSequence`` child of the user's seed,
split into an acceptance stream and a latency stream: the outcomes ``A`` of
replication ``i`` are the same for non-SI, SI and DSI (paired runs) and do not
depend on the executor, the order replications finish in, or the latency model.
Replications run in any ``concurrent.futures.Executor`` (threads, processes,
Dask's ``Client.get_executor()``); without one they run in this process.
"""

from __future__ import annotations

import math
import sys
from concurrent.futures import Executor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import simpy

from .._checks import int_at_least
from ..errors import InvalidParameterError, UnsupportedScenarioError
from ..latency import sample_latency
from ..lookahead import LookaheadPolicy, StaticLookahead
from ..montecarlo.positions import next_rejection
from ..records import Estimate
from ..scenario import Scenario
from .config import Overheads, check_queue
from .dsi import DSIRun
from .si import nonsi_process, si_process
from .trace import EventLog

__all__ = ["Algorithm", "RunRecord", "SimulationResult", "run_once", "simulate"]

Algorithm = Literal["nonsi", "si", "dsi"]


@dataclass(frozen=True)
class RunRecord:
    """What one discrete-event run measured (times in ms).

    ``verifications``: target forwards whose result was used (a verification or
    chain forward that confirmed at least one position); ``tokens_per_verification``
    is ``tokens`` over that.  ``queueing_delay_ms``: total time tasks waited for
    a server before starting; ``tasks_queued``: tasks that found every server busy
    (0: the run is the same as with unlimited servers).  Busy times include each model's prefill.
    """

    algorithm: str
    latency_ms: float
    ttft_ms: float
    decode_ms: float
    tokens: int
    lookahead: int | str | None
    servers: int | None
    verifications: int
    target_forwards: int
    target_forwards_wasted: int
    drafter_forwards: int
    target_busy_ms: float
    drafter_busy_ms: float
    peak_servers_busy: int
    mean_servers_busy: float
    queueing_delay_ms: float
    rejections: int
    tasks_queued: int = 0

    @property
    def latency_per_token_ms(self) -> float:
        return self.decode_ms / self.tokens

    @property
    def gpu_seconds(self) -> float:
        return (self.target_busy_ms + self.drafter_busy_ms) / 1000.0

    @property
    def gpu_seconds_per_token(self) -> float:
        return self.gpu_seconds / self.tokens

    @property
    def tokens_per_verification(self) -> float:
        return self.tokens / self.verifications if self.verifications else math.nan

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(latency_per_token_ms=self.latency_per_token_ms, gpu_seconds=self.gpu_seconds,
                 gpu_seconds_per_token=self.gpu_seconds_per_token,
                 tokens_per_verification=self.tokens_per_verification)
        return d


_SUMMARY = (
    "latency_ms", "latency_per_token_ms", "ttft_ms", "target_forwards", "target_forwards_wasted",
    "drafter_forwards", "gpu_seconds", "gpu_seconds_per_token", "peak_servers_busy", "tasks_queued", "mean_servers_busy", "queueing_delay_ms",
    "tokens_per_verification",
)


@dataclass(frozen=True)
class SimulationResult:
    """Replications of one algorithm on one scenario, with 95% intervals over replications."""

    algorithm: str
    scenario: dict[str, Any]
    runs: tuple[RunRecord, ...]
    options: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def per_run_latency_ms(self) -> np.ndarray:
        """End-to-end latency of each replication: pair two results of the same seed with ``Estimate.ratio``."""
        return np.array([r.latency_ms for r in self.runs])

    def estimate(self, name: str) -> Estimate:
        x = np.array([getattr(r, name) for r in self.runs], dtype=float)
        return Estimate.from_samples(x) if x.size > 1 else Estimate.exact(float(x[0]))

    def __getattr__(self, name: str) -> Estimate:
        if name in _SUMMARY:
            return self.estimate(name)
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        """Means, intervals (``<name>_ci``) and the scenario; JSON-ready."""
        out: dict[str, Any] = {"algorithm": self.algorithm, "replications": len(self.runs)}
        for name in _SUMMARY:
            e = self.estimate(name)
            out[name] = e.mean
            if e.n > 1:
                out[name + "_ci"] = [e.low, e.high]
        out["tokens"] = self.runs[0].tokens
        out["lookahead"] = self.runs[0].lookahead
        out["servers"] = self.runs[0].servers
        out["options"] = dict(self.options)
        out["scenario"] = dict(self.scenario)
        return out

    def to_records(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.runs]

    def to_frame(self):
        from ..records import to_frame

        return to_frame(self.to_records())


def _resolve_dsi_k(s: Scenario, chain: bool) -> int:
    la = s.lookahead
    if isinstance(la, LookaheadPolicy):
        if la.static_k is None:
            raise UnsupportedScenarioError(f"DSI runs a static lookahead; {la.name} is dynamic")
        return la.static_k
    from ..compare import _best_dsi_k  # "best": the Monte Carlo's choice, servers permitting

    a = s.acceptance.iid_rate
    try:
        return _best_dsi_k(s, None, a, chain) if a is not None else _best_dsi_k(
            s, s.acceptance.sample(np.random.default_rng(0), s.tokens, 32), None, chain)
    except UnsupportedScenarioError:
        # No lookahead keeps every task from waiting: take the one that submits the fewest tasks;
        # the DES then shows the queueing instead of refusing the scenario.
        return s.k_max


def _resolve_si_policy(s: Scenario) -> LookaheadPolicy:
    la = s.lookahead
    if isinstance(la, LookaheadPolicy):
        return la
    from ..compare import _best_si_k

    a = s.acceptance.iid_rate
    A = None if a is not None else s.acceptance.sample(np.random.default_rng(0), s.tokens, 32)
    return StaticLookahead(_best_si_k(s, A, a))


def run_once(
    scenario: Scenario,
    algorithm: Algorithm,
    accepted: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    lookahead: LookaheadPolicy | int | None = None,
    queue: str = "fifo",
    chain: bool = True,
    overheads: Overheads = Overheads(),
    signals=None,
    log: EventLog | None = None,
) -> RunRecord:
    """One run of ``algorithm`` on the outcomes ``accepted`` (1-D bool of length ``scenario.tokens``).

    ``rng`` draws stochastic latencies (unused when latencies are constant).
    ``lookahead`` overrides the scenario's (``"best"`` is resolved by the caller).
    """
    s = scenario
    A = np.asarray(accepted, dtype=bool)
    if A.shape != (s.tokens,):
        raise InvalidParameterError(f"accepted must have shape ({s.tokens},), got {A.shape}")
    rng = rng if rng is not None else np.random.default_rng(0)
    log = log if log is not None else EventLog(False)
    queue = check_queue(queue)
    env = simpy.Environment()
    nxt = next_rejection(A[None, :])[0]
    # prefills: the target's, and for SI/DSI the drafter's on its own device at the same time
    target_prefill = sample_latency(s.target, rng, 1, s.prompt_len, "prefill")
    drafter_prefill = 0.0 if algorithm == "nonsi" else sample_latency(s.drafter, rng, 1, s.prompt_len, "prefill")
    ttft = max(target_prefill, drafter_prefill)
    if ttft:
        log(0.0, "prefill_start", "prefill")
        env.run(until=ttft)
        log(ttft, "prefill_end", "prefill")
    if algorithm == "dsi":
        k = lookahead if lookahead is not None else _resolve_dsi_k(s, chain)
        k = k.static_k if isinstance(k, LookaheadPolicy) else int_at_least("lookahead", k, 1)
        run = DSIRun(env, A, nxt.tolist(), k, s.target, s.drafter, rng, s.servers, queue, chain, overheads,
                     s.prompt_len, log)
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
            queueing_delay_ms=pool.queue_delay, rejections=run.rejections, tasks_queued=pool.queued,
        )
    stats = {"target_busy": 0.0, "drafter_busy": 0.0, "rounds": 0, "drafts": 0, "rejections": 0, "peak": 0}
    if algorithm == "si":
        pol = lookahead if lookahead is not None else _resolve_si_policy(s)
        pol = StaticLookahead(pol) if isinstance(pol, int) else pol
        env.process(si_process(env, A, nxt, pol, s.target, s.drafter, rng, overheads, s.prompt_len,
                               signals or {}, log, stats))
        env.run()
        forwards, la = stats["rounds"], (pol.static_k if pol.static_k is not None else pol.name)
    elif algorithm == "nonsi":
        env.process(nonsi_process(env, s.tokens, s.target, rng, s.prompt_len, log, stats))
        env.run()
        forwards, la = s.tokens, None
    else:
        raise InvalidParameterError(f"algorithm must be 'nonsi', 'si' or 'dsi', got {algorithm!r}")
    end = env.now
    return RunRecord(
        algorithm, end, ttft, end - ttft, s.tokens, la, 1, verifications=stats["rounds"] or s.tokens,
        target_forwards=forwards, target_forwards_wasted=0, drafter_forwards=stats["drafts"],
        target_busy_ms=stats["target_busy"] + target_prefill, drafter_busy_ms=stats["drafter_busy"] + drafter_prefill,
        peak_servers_busy=stats["peak"], mean_servers_busy=stats["target_busy"] / max(end - ttft, 1e-300),
        queueing_delay_ms=0.0, rejections=stats["rejections"],
    )


def _replicate(scenario, algorithm, lookahead, seed, opts, trace):
    acc_seed, lat_seed = seed.spawn(2)
    draw = scenario.acceptance.draw(np.random.default_rng(acc_seed), scenario.tokens, 1)
    log = EventLog(trace)
    rec = run_once(scenario, algorithm, draw.accepted[0], np.random.default_rng(lat_seed), lookahead=lookahead,
                   signals={k: v for k, v in draw.signals.items()}, log=log, **opts)
    return rec, log.events


def simulate(
    scenario: Scenario,
    algorithm: Algorithm = "dsi",
    *,
    replications: int = 20,
    rng: int | np.random.SeedSequence | np.random.Generator | None = None,
    queue: str = "fifo",
    chain: bool = True,
    overheads: Overheads = Overheads(),
    executor: Executor | None = None,
    progress: bool = False,
    trace: bool = False,
) -> SimulationResult:
    """Replications of ``algorithm`` on ``scenario`` in virtual time.

    ``rng``: an int seed, a ``SeedSequence`` or a ``Generator`` (replication
    ``i`` uses the ``i``-th spawned ``SeedSequence`` child, so results do not
    depend on ``executor``);
    ``queue``: ``"fifo"`` or ``"lifo"`` for verification tasks waiting for a
    server; ``chain=False``: DSI without the non-SI chain; ``trace=True`` keeps
    the event log of the first replication in ``result.events``;
    ``progress=True`` draws a progress bar on stderr.  ``lookahead="best"`` in the
    scenario is resolved as the Monte Carlo resolves it (constant latencies, no
    overheads, no queue; DSI among the lookaheads whose tasks never wait for
    the servers, else ``k_max``) — to find the best lookahead under queueing or
    overheads, simulate the candidates.

    >>> from simspec import Scenario
    >>> from simspec.des import simulate
    >>> s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, servers=4, tokens=200)
    >>> res = simulate(s, "dsi", replications=4, rng=1)
    >>> res.peak_servers_busy.mean <= 4, res.latency_per_token_ms.mean < 30.0
    (True, True)
    """
    reps = int_at_least("replications", replications, 1)
    algorithm = algorithm.lower()  # type: ignore[assignment]
    if algorithm not in ("nonsi", "si", "dsi"):
        raise InvalidParameterError(f"algorithm must be 'nonsi', 'si' or 'dsi', got {algorithm!r}")
    check_queue(queue)
    if isinstance(rng, np.random.Generator):  # a generator advances: two calls draw different runs
        seeds = rng.bit_generator.seed_seq.spawn(reps)
    else:
        # a seed does not: children are derived without mutating the caller's SeedSequence, so the
        # same seed gives every algorithm and configuration the same outcomes (paired runs)
        ss = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
        seeds = [np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (i,), pool_size=ss.pool_size)
                 for i in range(reps)]
    if algorithm == "dsi":
        lookahead = _resolve_dsi_k(scenario, chain)
    elif algorithm == "si":
        lookahead = _resolve_si_policy(scenario)
    else:
        lookahead = None
    opts = {"queue": queue, "chain": chain, "overheads": overheads}
    results: list = [None] * reps
    bar = _Progress(reps, f"simspec {algorithm}") if progress else None
    if executor is None:
        for i, seed in enumerate(seeds):
            results[i] = _replicate(scenario, algorithm, lookahead, seed, opts, trace and i == 0)
            bar and bar.step()
    else:
        futures = {executor.submit(_replicate, scenario, algorithm, lookahead, seed, opts, trace and i == 0): i
                   for i, seed in enumerate(seeds)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            bar and bar.step()
    bar and bar.close()
    runs = tuple(r for r, _ in results)
    options = {"queue": queue, "chain": chain, **{k: v for k, v in asdict(overheads).items()}}
    return SimulationResult(algorithm, scenario.describe(), runs, options, results[0][1])


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
