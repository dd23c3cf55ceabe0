"""The lookahead planner: the best static lookahead for an algorithm on a scenario — the one rule.

Every engine, command and experiment that resolves ``lookahead="best"`` calls
:func:`best_lookahead`.  It scores each candidate ``k`` by latency per token and
GPU-seconds per token, on the scenario's deployment, and picks by ``objective``:

* ``"latency"``: the lowest latency per token; ties (within a relative 1e-9)
  go to the fewest target servers, then the fewest GPU-seconds, then the
  smallest ``k``;
* ``"cost"``: the fewest GPU-seconds per token; ties go to the lowest latency,
  then the fewest servers, then the smallest ``k``.

Methods (``method="auto"`` picks the first that applies):

* ``"theory"`` — closed forms, ``S → ∞``: i.i.d. acceptance, deterministic
  context-free latencies, no overheads; DSI among the lookaheads whose tasks
  never wait (:func:`simspec.deployment.dsi_lookahead_options`);
* ``"montecarlo"`` — the same, on acceptance outcomes (``accepted``, or a pilot
  draw of :data:`PILOT_REPLICATIONS` replications with seed 0) for any
  acceptance process;
* ``"des"`` — the discrete-event engine on pilot replications (seed 0, common
  outcomes across candidates), for what the other two cannot model: queueing
  (no lookahead fits the servers), overheads, stochastic or context-dependent
  latencies.  Candidates: ``1..12`` and a geometric grid up to ``k_max``, then
  every ``k`` between the best grid point's neighbours.

>>> from simspec import Scenario
>>> from simspec.planner import best_lookahead
>>> s = Scenario.from_ms(30.0, 3.0, 0.8)
>>> best_lookahead(s, "si").k, best_lookahead(s, "dsi").k
(6, 1)
>>> zero = Scenario.from_ms(30.0, 3.0, 0.0)        # nothing is ever accepted: all DSI lookaheads tie
>>> choice = best_lookahead(zero, "dsi")
>>> choice.k, choice.servers                         # the fewest servers: the chain and one more
(10, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from . import theory
from .deployment import dsi_lookahead_options
from .errors import InvalidParameterError, UnsupportedScenarioError
from .latency import is_deterministic
from .scenario import Scenario

__all__ = ["LookaheadChoice", "best_lookahead", "PILOT_REPLICATIONS", "Objective", "PlanMethod",
           "closed_form_applies", "verify_ms"]

Objective = Literal["latency", "cost"]
PlanMethod = Literal["auto", "theory", "montecarlo", "des"]

#: What a DSI result says when the chain takes the only target server.
CHAIN_ONLY_NOTE = ("the non-SI chain takes the only target server, so no verification task can run: DSI is "
                   "non-SI here; give more servers or run without the chain")

#: Replications a search that needs a draw looks at (seed 0).
PILOT_REPLICATIONS = 32
_DES_PILOT = 6
_TIE = 1e-9
_ENDLESS = 10**6  # with a = 1 there is one endless epoch: its per-token cost at this length is the S -> inf limit


@dataclass(frozen=True)
class LookaheadChoice:
    """The chosen lookahead and how every candidate scored (``candidates``: arrays over ``k``)."""

    algorithm: str
    k: int
    servers: int
    latency_per_token_ms: float
    gpu_seconds_per_token: float
    objective: str
    method: str
    note: str = ""
    candidates: dict = field(default_factory=dict, repr=False, compare=False)


def verify_ms(s: Scenario, k) -> np.ndarray:
    """The target's verification forward of ``k`` drafts (width ``k + 1``), in ms."""
    return np.asarray(s.target.forward(np.asarray(k) + 1, s.prompt_len), dtype=float)


def _slope(s: Scenario, k) -> np.ndarray:
    """Per-k verification slope such that ``v = 1 + slope·k`` reproduces the latency model exactly."""
    return (verify_ms(s, k) / s.target.tpot_ms - 1.0) / np.asarray(k)


def closed_form_applies(s: Scenario) -> str | None:
    """Why the closed forms / Monte Carlo cannot model ``s`` (None if they can)."""
    for name in ("target", "drafter"):
        model = getattr(s, name)
        if model.context_dependent:
            return f"the {name} latency depends on context length"
        if not is_deterministic(model):
            return f"the {name} latency is stochastic"
    ov = s.deployment.overheads
    if not ov.zero:
        named = [name for name in ("message_ms", "sync_ms", "startup_ms", "per_round_ms", "per_draft_token_ms",
                                   "per_drafter_forward_ms", "per_emitted_token_ms") if getattr(ov, name)]
        return f"the deployment has overheads ({', '.join(named)})"
    return None


def _pick(k, servers, lat, gpu, objective: str) -> int:
    """Index of the winner under ``objective`` with the documented tie-break.

    ``gpu``: GPU-seconds per token over the candidates, or a function of
    candidate indices (computed only where a tie needs it).
    """
    k, servers, lat = np.asarray(k), np.asarray(servers), np.asarray(lat, dtype=float)

    def g(idx):
        return np.asarray(gpu(idx) if callable(gpu) else np.asarray(gpu)[idx], dtype=float)

    def near_min(values, idx):
        m = values.min()
        return idx[values <= m + _TIE * abs(m) + 1e-15]

    idx = np.arange(k.size)
    if objective == "latency":
        idx = near_min(lat[idx], idx)
        if idx.size > 1:
            idx = idx[servers[idx] == servers[idx].min()]
        if idx.size > 1:
            idx = near_min(g(idx), idx)
    else:
        idx = near_min(g(idx), idx)
        if idx.size > 1:
            idx = near_min(lat[idx], idx)
        if idx.size > 1:
            idx = idx[servers[idx] == servers[idx].min()]
    return int(idx[np.argmin(k[idx])])


def best_lookahead(
    scenario: Scenario,
    algorithm: str,
    *,
    method: PlanMethod = "auto",
    objective: Objective = "latency",
    accepted: np.ndarray | None = None,
) -> LookaheadChoice:
    """The best static lookahead in ``1..scenario.k_max`` for ``algorithm`` (``"si"`` or ``"dsi"``).

    ``accepted``: acceptance outcomes ``(reps, S)`` to score candidates on
    (Monte Carlo); by default a pilot draw.  See the module docstring for the
    methods and the tie-break.
    """
    s = scenario
    if algorithm not in ("si", "dsi"):
        raise InvalidParameterError(f"algorithm must be 'si' or 'dsi' (non-SI has no lookahead), got {algorithm!r}")
    if objective not in ("latency", "cost"):
        raise InvalidParameterError(f"objective must be 'latency' or 'cost', got {objective!r}")
    if method not in ("auto", "theory", "montecarlo", "des"):
        raise InvalidParameterError(f"method must be 'auto', 'theory', 'montecarlo' or 'des', got {method!r}")
    why_not = closed_form_applies(s)
    a = s.acceptance.iid_rate
    if algorithm == "dsi" and s.deployment.speculation_servers == 0:
        k = best_lookahead(s.replace(servers=None), "dsi").k  # any k is as good: none can run
        lat = s.target.tpot_ms
        return LookaheadChoice("dsi", k, 1, lat, lat / 1000.0, objective, "none", CHAIN_ONLY_NOTE)
    options = dsi_lookahead_options(s) if algorithm == "dsi" else None
    if method == "auto":
        if why_not is not None or (options is not None and not options.any_feasible):
            method = "des"
        elif a is not None:  # i.i.d.: the closed form's optimum, whatever draw is at hand
            method = "theory"
        else:
            method = "montecarlo"
    if method in ("theory", "montecarlo") and why_not is not None:
        raise UnsupportedScenarioError(f"{why_not}; the closed forms and the Monte Carlo cannot model it — "
                                       "plan with method='des'")
    if method == "theory" and a is None:
        raise UnsupportedScenarioError(f"the closed forms need i.i.d. acceptance, but the scenario has "
                                       f"{s.acceptance!r}; plan with method='montecarlo'")
    if method == "des":
        return _plan_des(s, algorithm, objective, options)
    if algorithm == "si":
        return _plan_si(s, method, objective, accepted)
    if not options.any_feasible:
        need = int(options.servers[-1])
        raise UnsupportedScenarioError(
            f"DSI with {s.servers} target server(s) cannot avoid queueing for any lookahead <= {s.k_max} "
            f"(k={s.k_max} needs {need}); give more servers or a larger k_max. "
            "Queueing is modelled only by the discrete-event engine (simulate, or plan with method='des')"
        )
    return _plan_dsi(s, method, objective, accepted, options)


def _pilot(s: Scenario) -> np.ndarray:
    return s.acceptance.sample(np.random.default_rng(0), s.tokens, PILOT_REPLICATIONS)


def _plan_si(s: Scenario, method: str, objective: str, accepted) -> LookaheadChoice:
    from .montecarlo.sweep import si_sweep

    ks = np.arange(1, s.k_max + 1)
    t1, d = s.target.tpot_ms, s.drafter.tpot_ms
    if method == "theory":
        lat = t1 * theory.si_latency_per_token(s.acceptance.iid_rate, s.c, ks, _slope(s, ks))
    else:
        A = accepted if accepted is not None else _pilot(s)
        rounds, drafts = si_sweep(A[:PILOT_REPLICATIONS], ks)
        lat = (drafts * d + rounds * verify_ms(s, ks)[None, :]).mean(axis=0) / s.tokens
    gpu = lat / 1000.0  # SI is sequential: every ms of decoding is one GPU busy
    servers = np.ones(ks.size, dtype=np.int64)
    i = _pick(ks, servers, lat, gpu, objective)
    return LookaheadChoice("si", int(ks[i]), 1, float(lat[i]), float(gpu[i]), objective, method,
                           candidates={"k": ks, "servers": servers, "latency_per_token_ms": lat,
                                       "gpu_seconds_per_token": gpu})


def _plan_dsi(s: Scenario, method: str, objective: str, accepted, options) -> LookaheadChoice:
    from .montecarlo.dsi import dsi_epoch_table
    from .montecarlo.positions import epoch_lengths

    ks, need = options.k[options.feasible], options.servers[options.feasible]
    t1, d = s.target.tpot_ms, s.drafter.tpot_ms
    chain = s.deployment.chain
    a = s.acceptance.iid_rate
    slopes = _slope(s, ks)
    if method == "theory":
        if np.allclose(slopes, slopes[0], rtol=0, atol=1e-15):
            lat = t1 * np.asarray(theory.dsi_latency_per_token(a, s.c, ks, float(slopes[0]), chain), dtype=float)
        else:
            lat = t1 * np.array([float(theory.dsi_latency_per_token(a, s.c, int(k), float(sl), chain))
                                 for k, sl in zip(ks, slopes)])

        def cost(idx):
            out = []
            for i in np.atleast_1d(idx):
                k, v = int(ks[i]), float(verify_ms(s, ks[i]))

                def busy(r, k=k, v=v):
                    tab = dsi_epoch_table(r, k, d, v, t1, chain)
                    return tab["target_busy_ms"] + tab["drafter_busy_ms"]

                out.append(theory.iid_epoch_ratio(busy, a, _ENDLESS if a == 1 else None) / 1000.0)
            return np.array(out)
    else:
        A = accepted if accepted is not None else _pilot(s)
        rows, r = epoch_lengths(A)
        uniq, inv = np.unique(r, return_inverse=True)
        total = A.shape[0] * A.shape[1]
        tables = {}

        def table(i):
            if i not in tables:
                tables[i] = dsi_epoch_table(uniq, int(ks[i]), d, float(verify_ms(s, ks[i])), t1, chain)
            return tables[i]

        lat = np.array([table(i)["duration_ms"][inv].sum() / total for i in range(ks.size)])

        def cost(idx):
            return np.array([(table(i)["target_busy_ms"][inv].sum() + table(i)["drafter_busy_ms"][inv].sum())
                             / total / 1000.0 for i in np.atleast_1d(idx)])

    gpu = cost(np.arange(ks.size)) if objective == "cost" else None
    i = _pick(ks, need, lat, gpu if gpu is not None else cost, objective)
    g = float(cost(i)[0]) if gpu is None else float(gpu[i])
    cands = {"k": ks, "servers": need, "latency_per_token_ms": lat}
    if gpu is not None:
        cands["gpu_seconds_per_token"] = gpu
    return LookaheadChoice("dsi", int(ks[i]), int(need[i]), float(lat[i]), g, objective, method, candidates=cands)


def des_candidates(k_max: int) -> np.ndarray:
    """The discrete-event search's coarse grid: ``1..12`` and a geometric grid up to ``k_max``."""
    grid = set(range(1, min(12, k_max) + 1))
    if k_max > 12:
        grid.update(int(round(x)) for x in np.geomspace(12, k_max, 10))
    return np.array(sorted(grid))


def _plan_des(s: Scenario, algorithm: str, objective: str, options) -> LookaheadChoice:
    from .des.runner import simulate

    scored: dict[int, tuple[float, float]] = {}
    servers_of = (lambda k: int(options.servers[k - 1]) if s.servers is None else int(s.servers)) \
        if algorithm == "dsi" else (lambda k: 1)

    def score(ks):
        for k in ks:
            k = int(k)
            if k not in scored:
                res = simulate(s.replace(lookahead=k), algorithm, replications=_DES_PILOT, rng=0)
                scored[k] = (res.latency_per_token_ms.mean, res.gpu_seconds_per_token.mean)

    def winner():
        ks = np.array(sorted(scored))
        lat = np.array([scored[k][0] for k in ks])
        gpu = np.array([scored[k][1] for k in ks])
        servers = np.array([servers_of(k) for k in ks])
        return ks, servers, lat, gpu, _pick(ks, servers, lat, gpu, objective)

    grid = des_candidates(s.k_max)
    score(grid)
    ks, *_, i = winner()
    pos = int(np.searchsorted(grid, ks[i]))
    lo = grid[max(pos - 1, 0)]
    hi = grid[min(pos + 1, grid.size - 1)]
    score(range(int(lo), int(hi) + 1))
    ks, servers, lat, gpu, i = winner()
    why = closed_form_applies(s) or "no lookahead keeps every verification task from waiting for a server"
    note = (f"lookahead chosen by simulating {ks.size} candidates ({_DES_PILOT} pilot replications, seed 0), "
            f"because {why}")
    return LookaheadChoice(algorithm, int(ks[i]), int(servers[i]), float(lat[i]), float(gpu[i]), objective, "des",
                           note, {"k": ks, "servers": servers, "latency_per_token_ms": lat,
                                  "gpu_seconds_per_token": gpu})
