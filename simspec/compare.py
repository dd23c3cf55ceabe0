"""Compare non-SI, SI and DSI on one scenario, by closed form or Monte Carlo.

The closed forms (``method="theory"``) need i.i.d. acceptance and constant (or
affine) latencies and describe ``S → ∞``; the Monte Carlo
(``method="montecarlo"``) runs any acceptance process on finite ``S``, drawing
the outcomes ``A`` once per replication and feeding the same ``A`` to all three
algorithms, so every speedup is paired.  Both assume what the DSI paper assumes:
servers enough that no verification waits, and no communication overhead.

>>> from simspec import Scenario, compare
>>> s = Scenario.from_ms(target_ms=30.0, drafter_ms=3.0, acceptance=0.8, lookahead="best")
>>> cmp = compare(s, method="theory")
>>> cmp.si.lookahead, round(cmp.speedup["si_vs_nonsi"].mean, 3)
(6, 2.47)
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from . import theory
from ._checks import int_at_least
from .errors import InvalidParameterError, UnsupportedScenarioError
from .latency import is_deterministic
from .lookahead import LookaheadPolicy, StaticLookahead
from .montecarlo.dsi import dsi_epoch_table, dsi_run
from .montecarlo.nonsi import nonsi_run
from .montecarlo.positions import epoch_lengths
from .montecarlo.si import si_run
from .montecarlo.sweep import si_sweep
from .records import AlgorithmResult, Comparison, Estimate
from .scenario import Scenario

__all__ = ["compare", "Method"]

Method = Literal["theory", "montecarlo"]


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _verify_ms(s: Scenario, k) -> np.ndarray:
    return np.asarray(s.target.forward(np.asarray(k) + 1, s.prompt_len), dtype=float)


def _slope(s: Scenario, k) -> np.ndarray:
    """Per-k verification slope such that ``v = 1 + slope·k`` reproduces the latency model exactly."""
    t1 = s.target.tpot_ms
    return (_verify_ms(s, k) / t1 - 1.0) / np.asarray(k)


def _check_mc_latency(s: Scenario) -> None:
    for name in ("target", "drafter"):
        model = getattr(s, name)
        if model.context_dependent:
            raise UnsupportedScenarioError(
                f"the {name} latency depends on context length; the closed forms and the Monte Carlo "
                "assume it does not — use the discrete-event engine (simspec.simulate)"
            )
        if not is_deterministic(model):
            raise UnsupportedScenarioError(
                f"the {name} latency is stochastic; the closed forms and the Monte Carlo assume deterministic "
                "(constant or affine) latencies — use the discrete-event engine (simspec.simulate)"
            )


def _dsi_candidates(s: Scenario) -> np.ndarray:
    ks = np.arange(1, s.k_max + 1)
    if s.servers is None:
        return ks
    need = np.array([theory.dsi_servers_needed(s.c, k, float(_slope(s, k))) for k in ks])
    ok = ks[need <= s.servers]
    if ok.size == 0:
        raise UnsupportedScenarioError(
            f"DSI with {s.servers} target server(s) cannot avoid queueing for any lookahead <= {s.k_max} "
            f"(k={s.k_max} needs {int(need[-1])}); give more servers or a larger k_max. "
            "Queueing is modelled only by the discrete-event engine"
        )
    return ok


def _fixed_dsi_k(s: Scenario, k: int) -> int:
    if s.servers is not None:
        need = int(theory.dsi_servers_needed(s.c, k, float(_slope(s, k))))
        if need > s.servers:
            raise UnsupportedScenarioError(
                f"DSI with lookahead {k} needs {need} target servers (speculative tasks plus the non-SI chain) "
                f"so that no task waits, but servers={s.servers}; raise the servers, raise the lookahead, "
                "or use lookahead='best'. Queueing is modelled only by the discrete-event engine"
            )
    return k


_ENDLESS = 10**6  # with a = 1 there is one endless epoch: its per-token cost at this length is the S -> inf limit
_PILOT = 32  # replications a non-i.i.d. SI lookahead search looks at


def _best_si_k(s: Scenario, A: np.ndarray | None, a: float | None) -> int:
    """Best static SI lookahead in ``1..k_max``.

    I.i.d. acceptance: the closed-form optimum (``S → ∞``).  Otherwise a search
    on the first ``_PILOT`` replications of the draw (each candidate costs a
    round loop); choosing on the draw that is then reported favours the chosen
    ``k`` by less than its confidence interval.
    """
    ks = np.arange(1, s.k_max + 1)
    if a is not None:
        return int(ks[np.argmin(theory.si_latency_per_token(a, s.c, ks, _slope(s, ks)))])
    rounds, drafts = si_sweep(A[:_PILOT], ks)
    cost = drafts * s.drafter.tpot_ms + rounds * _verify_ms(s, ks)[None, :]
    return int(ks[np.argmin(cost.mean(axis=0))])


def _best_dsi_k(s: Scenario, A: np.ndarray | None, a: float | None, chain: bool) -> int:
    """Best static DSI lookahead among those whose servers fit (closed form, or epoch tables on the draw)."""
    cand = _dsi_candidates(s)
    if a is not None:
        lat = [theory.dsi_latency_per_token(a, s.c, k, float(_slope(s, k)), chain) for k in cand]
    else:
        t1, d = s.target.tpot_ms, s.drafter.tpot_ms
        rows, r = epoch_lengths(A)
        uniq, inv = np.unique(r, return_inverse=True)
        lat = [dsi_epoch_table(uniq, int(k), d, float(_verify_ms(s, k)), t1, chain)["duration_ms"][inv].sum() for k in cand]
    return int(cand[int(np.argmin(lat))])


def _result(algorithm, method, per_rep, s: Scenario, ttft, lookahead, servers, notes="") -> AlgorithmResult:
    """Build a record from per-replication arrays (theory passes one exact 'replication')."""
    est = Estimate.from_samples if method == "montecarlo" else (lambda x: Estimate.exact(np.mean(x)))
    S = s.tokens
    decode = np.asarray(per_rep["decode_ms"], dtype=float)
    prefill_busy = s.target.ttft_ms + (s.drafter.ttft_ms if algorithm != "nonsi" else 0.0)
    gpu_s = (np.asarray(per_rep["target_busy_ms"]) + np.asarray(per_rep["drafter_busy_ms"]) + prefill_busy) / 1000.0
    return AlgorithmResult(
        algorithm=algorithm,
        method=method,
        latency_per_token_ms=est(decode / S),
        latency_ms=est(ttft + decode),
        ttft_ms=float(ttft),
        tokens=S,
        lookahead=lookahead,
        target_servers=int(servers),
        target_forwards=est(per_rep["target_forwards"]),
        target_forwards_wasted=est(per_rep["target_forwards_wasted"]),
        drafter_forwards=est(per_rep["drafter_forwards"]),
        gpu_seconds=est(gpu_s),
        gpu_seconds_per_token=est(gpu_s / S),
        notes=notes,
        per_run_latency_ms=(ttft + decode) if method == "montecarlo" else np.empty(0),
    )


def _speedups(nonsi, si, dsi, paired: bool) -> dict[str, Estimate]:
    base = np.minimum(si, nonsi)
    pairs = {"si_vs_nonsi": (nonsi, si), "dsi_vs_si": (si, dsi), "dsi_vs_nonsi": (nonsi, dsi), "dsi_vs_baseline": (base, dsi)}
    if paired:
        return {k: Estimate.ratio(n, d) for k, (n, d) in pairs.items()}
    return {k: Estimate.exact(float(np.mean(n) / np.mean(d))) for k, (n, d) in pairs.items()}


def compare(
    scenario: Scenario,
    method: Method = "theory",
    *,
    reps: int = 200,
    rng: int | np.random.Generator | None = None,
    chain: bool = True,
) -> Comparison:
    """Latency and cost of non-SI, SI and DSI on ``scenario``.

    ``method="theory"`` uses the closed forms (i.i.d. acceptance only);
    ``"montecarlo"`` simulates ``reps`` paired replications with generator
    ``rng`` (an int seed or a ``numpy.random.Generator``).  ``chain=False``
    runs the DSI variant without the non-SI chain.
    """
    s = scenario
    _check_mc_latency(s)
    t1, d = s.target.tpot_ms, s.drafter.tpot_ms
    ttft_nonsi = s.target.ttft_ms
    ttft_spec = max(s.target.ttft_ms, s.drafter.ttft_ms)
    la = s.lookahead
    if method == "theory":
        a = s.acceptance.iid_rate
        if a is None:
            raise UnsupportedScenarioError(
                f"the closed forms need i.i.d. acceptance, but the scenario has {s.acceptance!r}; "
                "use method='montecarlo'"
            )
        if isinstance(la, LookaheadPolicy) and la.static_k is None:
            raise UnsupportedScenarioError(
                f"the closed forms cover static lookaheads only, not {la.name}; use method='montecarlo'"
            )
        if la == "best":
            k_si, k_dsi = _best_si_k(s, None, a), _best_dsi_k(s, None, a, chain)
        else:
            k_si = la.static_k
            k_dsi = _fixed_dsi_k(s, la.static_k)
        S = s.tokens
        nonsi = nonsi_run(s.target, S, 1, s.prompt_len)
        tok_per_round = float(theory.si_expected_tokens_per_iteration(a, k_si))
        v_si = float(_verify_ms(s, k_si))
        rounds = S / tok_per_round
        si = {
            "decode_ms": [S * float(theory.si_latency_per_token(a, s.c, k_si, float(_slope(s, k_si)))) * t1],
            "target_forwards": [rounds],
            "target_forwards_wasted": [0.0],
            "drafter_forwards": [rounds * k_si],
            "target_busy_ms": [rounds * v_si],
            "drafter_busy_ms": [rounds * k_si * d],
        }
        v_dsi = float(_verify_ms(s, k_dsi))
        costs = {
            name: S * theory.iid_epoch_ratio(lambda r, n=name: dsi_epoch_table(r, k_dsi, d, v_dsi, t1, chain)[n], a, _ENDLESS if a == 1 else None)
            for name in ("target_forwards", "target_forwards_wasted", "drafter_forwards", "target_busy_ms", "drafter_busy_ms")
        }
        costs["decode_ms"] = S * t1 * float(theory.dsi_latency_per_token(a, s.c, k_dsi, float(_slope(s, k_dsi)), chain))
        dsi = {k: [v] for k, v in costs.items()}
        paired = False
        si_note = "closed form, S -> infinity"
        dsi_note = ""
    elif method == "montecarlo":
        reps = int_at_least("reps", reps, 2, "confidence intervals need at least two replications")
        gen = _rng(rng)
        draw = s.acceptance.draw(gen, s.tokens, reps)
        A = draw.accepted
        a = s.acceptance.iid_rate
        dsi_note = ""
        if la == "best":
            k_si = _best_si_k(s, A, a)
            k_dsi = _best_dsi_k(s, A, a, chain)
            pol = StaticLookahead(k_si)
        elif la.static_k is None:  # a dynamic policy drives SI; DSI runs a static lookahead
            pol, k_si = la, la.name
            k_dsi = _best_dsi_k(s, A, a, chain)
            dsi_note = f"best static k (DSI cannot run {la.name}); "
        else:
            pol, k_si = la, la.static_k
            k_dsi = _fixed_dsi_k(s, la.static_k)
        nonsi = nonsi_run(s.target, s.tokens, reps, s.prompt_len)
        si = si_run(A, pol, s.target, s.drafter, s.prompt_len, draw.signals)
        dsi = dsi_run(A, k_dsi, s.target, s.drafter, s.prompt_len, chain)
        paired = True
        si_note = ""
    else:
        raise InvalidParameterError(f"method must be 'theory' or 'montecarlo', got {method!r}")

    servers = int(theory.dsi_servers_needed(s.c, k_dsi, float(_slope(s, k_dsi)), chain))
    dsi_note += "non-SI chain" if chain else "no non-SI chain"
    res_nonsi = _result("nonsi", method, nonsi, s, ttft_nonsi, None, 1)
    res_si = _result("si", method, si, s, ttft_spec, k_si, 1, si_note)
    res_dsi = _result("dsi", method, dsi, s, ttft_spec, k_dsi, servers, dsi_note)
    lat = [np.asarray(x["decode_ms"], dtype=float) + t for x, t in ((nonsi, ttft_nonsi), (si, ttft_spec), (dsi, ttft_spec))]
    speed = _speedups(*lat, paired=paired)
    desc = s.describe() | {"method": method, "reps": reps if method == "montecarlo" else None}
    return Comparison(desc, res_nonsi, res_si, res_dsi, speed)
