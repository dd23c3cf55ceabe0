"""Closed forms for non-SI, SI and DSI under i.i.d. acceptance.

Time is in units of the target's decode forward (``t = 1``); ``c`` is the
drafter/target latency ratio, ``a`` the acceptance rate, ``k`` the lookahead.
``slope`` is the extra cost of each extra token in a verification forward, in
target TPOTs, so that verifying ``k`` drafts costs ``v = 1 + slope·k`` (0 in the
papers).  Every function is vectorised: arguments broadcast like numpy arrays.

Each formula is derived in ``theory/`` (the file is named in its docstring)
and checked against the Monte Carlo engine by the test named there.

Sources: Leviathan, Kalman & Matias 2023 (SI); Timor et al. 2025, arXiv
2405.14105 (DSI, Prop. 1); ``docs/model.md`` §4–5.

>>> from simspec import theory
>>> float(theory.si_speedup(a=0.8, c=0.1, k=5))
2.459...
>>> float(theory.dsi_latency_per_token(a=0.8, c=0.1, k=1))  # = a c + 1 - a
0.28
"""

from __future__ import annotations

import numpy as np

from ._checks import MAX_SERVERS, check_lookahead_size, check_work, int_at_least
from .errors import InvalidParameterError

__all__ = [
    "si_expected_tokens_per_iteration",
    "si_acceptance_rate_from_tokens",
    "si_latency_per_token",
    "si_speedup",
    "best_si_lookahead",
    "si_speedup_possible",
    "oracle_latency_per_token",
    "dsi_prop1_latency_per_token",
    "dsi_epoch_duration",
    "dsi_latency_per_token",
    "dsi_repo_latency_per_token",
    "dsi_servers_needed",
    "iid_epoch_ratio",
    "pearl_latency_per_token",
]

_EPS = 1e-9


def _a(a):
    a = np.asarray(a, dtype=float)
    if np.any((a < 0) | (a > 1)) or np.any(np.isnan(a)):
        raise InvalidParameterError("acceptance rate a must lie in [0, 1]")
    return a


def _c(c):
    c = np.asarray(c, dtype=float)
    if np.any(c < 0) or not np.all(np.isfinite(c)):
        raise InvalidParameterError("latency ratio c = drafter/target must be a finite number >= 0")
    return c


def _slope(slope, k=None):
    """``slope`` checked: finite, and a verification forward of positive time (``1 + slope·k > 0``; ``> −1`` when
    no ``k`` is given); a float if scalar.  Negative slopes are allowed: measured profiles are not monotone in
    width (a width-4 forward can be faster than a width-2 one), so a wider verification can cost less."""
    s = np.asarray(slope, dtype=float)
    if isinstance(k, str):  # "unbounded": rounds of any length (the oracle), so 1 + slope·k > 0 for every k
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise InvalidParameterError(
                f"slope must be a finite number >= 0 here (rounds of any length: a negative slope would make "
                f"long verifications take negative time), got {slope!r}"
            )
        return float(s) if s.ndim == 0 else s
    try:
        v = 1.0 + s * (1 if k is None else np.asarray(k, dtype=float))
    except ValueError:
        raise InvalidParameterError(
            f"slope has shape {s.shape}, which does not match the lookaheads' {np.shape(k)}: give one slope, "
            "or one per lookahead"
        ) from None
    if not np.all(np.isfinite(s)) or not np.all(v > 0):
        flat = np.broadcast_to(s, np.broadcast_shapes(s.shape, np.shape(v))).ravel()
        bad = float(flat[np.flatnonzero(~(np.isfinite(flat) & (np.ravel(np.broadcast_to(v, flat.shape)) > 0)))[0]])
        raise InvalidParameterError(
            f"slope (extra verification cost per extra token, in target TPOTs) must be finite and leave the "
            f"verification of k + 1 tokens a positive time (1 + slope·k > 0), got {bad!r}; give 0 for the papers' "
            "model"
        )
    return float(s) if s.ndim == 0 else s


def _k(k):
    k = np.asarray(k)
    if np.any(k < 1) or np.any(np.asarray(k, dtype=float) % 1 != 0):
        raise InvalidParameterError("lookahead k must be an integer >= 1")
    return k.astype(np.int64)


def _geometric_sum(a, n):
    """``1 + a + ... + a^(n-1) = (1 - a^n)/(1 - a)``, continuous at ``a = 1``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (1.0 - a**n) / (1.0 - a)
    return np.where(a == 1.0, n * 1.0, out)


def si_expected_tokens_per_iteration(a, k):
    """Expected tokens one SI iteration emits: ``(1 − a^{k+1})/(1 − a)``.

    Derivation: ``theory/si.md``; test ``tests/test_theory_vs_montecarlo.py::test_si_closed_form``.
    """
    return _geometric_sum(_a(a), _k(k) + 1)


def si_acceptance_rate_from_tokens(tokens_per_iteration, k):
    """The i.i.d. rate ``a`` at which SI with lookahead ``k`` emits ``tokens_per_iteration`` tokens per round.

    The inverse of :func:`si_expected_tokens_per_iteration` in ``a`` (bisection to
    machine precision; the map ``a -> (1 − a^{k+1})/(1 − a)`` is increasing from 1
    to ``k + 1``).  Serving engines log the mean acceptance length (tokens per
    round, bonus included) but not always ``k``: the lookahead must be given.

    >>> round(float(si_acceptance_rate_from_tokens(si_expected_tokens_per_iteration(0.8, 4), 4)), 12)
    0.8
    >>> float(si_acceptance_rate_from_tokens(5.0, 4))
    1.0
    """
    k = _k(k)
    tau = np.asarray(tokens_per_iteration, dtype=float)
    if not np.all(np.isfinite(tau)) or np.any(tau < 1) or np.any(tau > k + 1 + 1e-12):
        raise InvalidParameterError(
            f"tokens per iteration must lie in [1, k + 1] (one token per round at a = 0, k + 1 at a = 1), "
            f"got {tokens_per_iteration!r} with k = {k.tolist()!r}; check that k is the lookahead the server ran with"
        )
    tau, k = np.broadcast_arrays(np.minimum(tau, k + 1.0), k)
    lo, hi = np.zeros(tau.shape), np.ones(tau.shape)
    for _ in range(64):  # 2^-64 < machine precision on [0, 1]
        mid = 0.5 * (lo + hi)
        low = _geometric_sum(mid, k + 1) < tau
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    out = np.where(tau >= k + 1, 1.0, np.where(tau <= 1, 0.0, 0.5 * (lo + hi)))
    return float(out) if out.ndim == 0 else out


def si_latency_per_token(a, c, k, slope=0.0):
    """SI latency per token ``(k c + v)(1 − a)/(1 − a^{k+1})`` with ``v = 1 + slope·k``.

    Derivation: ``theory/si.md``.
    """
    k = _k(k)
    return (k * _c(c) + 1.0 + _slope(slope, k) * k) / si_expected_tokens_per_iteration(a, k)


def si_speedup(a, c, k, slope=0.0):
    """SI speedup over non-SI: ``(1 − a^{k+1}) / ((1 − a)(k c + 1))`` when ``slope = 0``."""
    return 1.0 / si_latency_per_token(a, c, k, slope)


def best_si_lookahead(a, c, k_max=200, slope=0.0):
    """The static lookahead in ``1..k_max`` that minimises SI latency per token.

    Returns ``(k, latency_per_token)``, arrays broadcast over ``a`` and ``c``.
    Ties go to the smaller ``k``.  Derivation: ``theory/best_lookahead.md``.
    """
    a, c = np.broadcast_arrays(_a(a), _c(c))
    k_max = check_lookahead_size("k_max", int_at_least("k_max", k_max, 1, "the search needs at least k = 1"))
    check_work(f"best_si_lookahead's table ({a.size} cells × k_max {k_max})", float(a.size) * k_max, 10**8,
               "evaluate fewer (a, c) cells per call or lower k_max", unit="entries")
    ks = np.arange(1, k_max + 1)
    lat = si_latency_per_token(a[..., None], c[..., None], ks, slope)
    best = np.argmin(lat, axis=-1)
    return ks[best], np.take_along_axis(lat, best[..., None], axis=-1)[..., 0]


def si_speedup_possible(a, c):
    """Some static lookahead makes SI faster than non-SI iff ``a > c`` (constant latencies).

    Derivation: ``theory/si.md`` (section "when SI pays").
    """
    return _a(a) > _c(c)


def oracle_latency_per_token(a, c, slope=0.0):
    """Oracle dynamic lookahead (draft until the first rejection, inclusive): ``c + slope + 1 − a``.

    Derivation: ``theory/oracle.md``.
    """
    return _c(c) + _slope(slope, "unbounded") + 1.0 - _a(a)


def dsi_prop1_latency_per_token(a, c):
    """DSI with ``k = 1`` and enough servers (Prop. 1 of the DSI paper): ``a c + 1 − a``."""
    return _a(a) * _c(c) + 1.0 - _a(a)


def dsi_epoch_duration(r, k, c, slope=0.0, chain=True):
    """Duration ``D(r)`` of a DSI epoch whose first rejection is its ``r``-th position.

    Unlimited servers, constant latencies, zero overheads (``docs/model.md`` §4,
    corrected in ``theory/dsi_epoch_map.md``).  Equivalently, ``D(r)`` is when
    the epoch's ``r``-th token is confirmed, accepted or not.  With the non-SI
    chain, ``D(r) = min(T_B, min_{0≤b<B} T_b + r − F_b)`` where
    ``B = ⌈(r−1)/k⌉``, ``T_b = b k c + v``, ``F_b = b k + 1``, ``T_0 = F_0 = 0``.
    Without the chain, ``D(r) = T_{max(B,1)}``.
    """
    r = np.asarray(r)
    if np.any(r < 1):
        raise InvalidParameterError("epoch length r must be >= 1")
    k = _k(k)
    return epoch_duration_unchecked(r, k, _c(c), _slope(slope, k), chain)


def epoch_duration_unchecked(r, k, c, slope, chain):
    """:func:`dsi_epoch_duration` on parameters already checked (the engines' inner loop: no validation passes)."""
    v = 1.0 + slope * k
    B = -(-(r - 1) // k)  # ceil((r-1)/k)
    if not chain:
        return np.maximum(B, 1) * k * c + v
    t_b = B * k * c + v
    # chain restarted at block b reaches r at T_b + (r - F_b): linear in b, so the
    # minimum over 1 <= b <= B-1 sits at b = 1 or b = B - 1.
    def chain_from(b):
        return b * k * c + v + (r - b * k - 1)

    via_chain = np.minimum(r * 1.0, np.where(B >= 2, np.minimum(chain_from(1), chain_from(np.maximum(B - 1, 1))), np.inf))
    return np.where(r == 1, np.minimum(1.0, t_b), np.minimum(t_b, via_chain))


def _series_length(a: float) -> int:
    """Epoch lengths to sum so that the geometric tail left out weighs < e^-40 (capped)."""
    if a <= 0:
        return 2
    return int(min(200_000, max(100, np.ceil(40.0 / max(1e-12, -np.log(a))))))


def iid_epoch_ratio(epoch_fn, a: float, r_max: int | None = None) -> float:
    """Renewal-reward ratio ``E[f(r)] / E[r]`` for epoch lengths ``r ~ Geometric(1 − a)`` on ``1, 2, ...``.

    Summed over ``r ≤ r_max`` (default: the tail left out weighs < e^-40, at most
    200,000 terms).  This is the long-run cost per token of any per-epoch cost
    ``f``.  ``a = 1`` has no epochs: pass ``r_max`` and read the result as the
    cost of one epoch of ``r_max`` tokens per token.
    """
    if a >= 1.0:
        if r_max is None:
            raise InvalidParameterError("with a = 1 there is one endless epoch: give r_max (the tokens)")
        return float(np.asarray(epoch_fn(np.array([r_max])))[0]) / r_max
    r = np.arange(1, (r_max or _series_length(a)) + 1)
    w = (1.0 - a) * a ** (r - 1)
    return float((w * epoch_fn(r)).sum() / (w * r).sum())


def dsi_latency_per_token(a, c, k, slope=0.0, chain=True):
    """Exact DSI latency per token under i.i.d. acceptance, unlimited servers, ``S → ∞``.

    For ``slope = 0`` and ``c ≤ 1`` in closed form:
    ``(1 − a)·[1 + k c a^{k+1}/(1 − a^k) + g/(1 − a^k)]`` with
    ``g = Σ_{j=1..k} (1 − a) a^j min(k c, j)``, which is
    ``(1 − a)(1 + a k c/(1 − a^k))`` when ``k c ≤ 1`` and Prop. 1 at ``k = 1``.
    For ``c ≥ 1`` DSI is non-SI (latency 1).  Other cases sum the epoch map.
    Derivation: ``theory/dsi_epoch_map.md``.
    """
    a, c, k = np.broadcast_arrays(_a(a), _c(c), _k(k))
    slope = _slope(slope, k)
    check_lookahead_size("lookahead k", int(k.max(initial=1)))
    if slope != 0.0 or not chain:
        out = np.empty(a.shape)
        for idx in np.ndindex(a.shape):
            ai, ci, ki = a[idx], c[idx], k[idx]
            if ai == 1.0:
                out[idx] = min(ci, 1.0) if chain else ci
                continue
            out[idx] = iid_epoch_ratio(lambda r: dsi_epoch_duration(r, ki, ci, slope, chain), ai)
        return out
    kc = k * c
    j = np.arange(1, int(k.max(initial=1)) + 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        terms = (1 - a[..., None]) * a[..., None] ** j * np.minimum(kc[..., None], j)
        g = np.where(j <= k[..., None], terms, 0.0).sum(axis=-1)
        ak = a**k
        per_epoch = 1.0 + kc * a * ak / (1.0 - ak) + g / (1.0 - ak)
        lat = (1.0 - a) * per_epoch
    lat = np.where(a == 1.0, c, lat)
    return np.where(c >= 1.0, 1.0, lat)


def dsi_repo_latency_per_token(a, c, k):
    """DSI as the reference repo's offline simulator models it, ``S → ∞``.

    The repo charges each epoch ``min(⌈r/k⌉ k c + 1, r)``: the drafter's blocks
    race one non-SI run from the epoch start, and the bonus position of a fully
    accepted block is not used.  For ``k c ≤ 1`` this is
    ``(1 − a)·[1 + k c/(1 − a^k) − (1 − a) k c]`` (``docs/model.md`` §5) — for ``k = 1``
    only while ``c ≤ 1/2`` as well; otherwise the epoch sum.  Derivation: ``theory/dsi_repo_model.md``.
    """
    a, c, k = np.broadcast_arrays(_a(a), _c(c), _k(k))
    kc = k * c
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = (1 - a) * (1 + kc / (1 - a**k) - (1 - a) * kc)
    closed = np.where(a == 1.0, np.minimum(c, 1.0), closed)
    out = np.array(closed, dtype=float)
    for idx in np.ndindex(a.shape):
        # the closed form drops every saving but the first block's n = 0, which needs
        # k c <= 1 and, at k = 1, also c <= 1/2 (theory/dsi_repo_model.md)
        if not ((kc[idx] > 1 or c[idx] > 0.5) and a[idx] < 1):
            continue
        ai, ci, ki = a[idx], c[idx], k[idx]
        out[idx] = iid_epoch_ratio(lambda r: np.minimum(-(-r // ki) * ki * ci + 1.0, r), ai)
    return out


def dsi_servers_needed(c, k, slope=0.0, chain=True):
    """Target servers DSI needs so that no verification task waits: ``⌈v/(k c)⌉``, plus one for the chain.

    ``v = 1 + slope·k``; the DSI paper's count is ``⌈1/(k c)⌉`` (``chain=False``).
    Derivation: ``theory/servers.md``.
    """
    c = _c(c)
    k = _k(k)
    if np.any(c == 0):
        raise InvalidParameterError("a drafter with zero latency needs unboundedly many servers; give c > 0")
    v = 1.0 + _slope(slope, k) * k
    with np.errstate(over="ignore"):
        need = v / (k * c)
    if np.any(need > MAX_SERVERS):  # the int64 cast below would wrap around to a negative count
        cb, kb, vb, nb = (x.ravel() for x in np.broadcast_arrays(c, k, v, need))
        i = int(np.argmax(nb))
        raise InvalidParameterError(
            f"DSI would need about {nb[i]:.3g} target servers (c = {cb[i]:.3g}, lookahead {int(kb[i])}), more than "
            f"any deployment holds or an int64 can count; give a larger c (drafter/target latency ratio; at "
            f"least {vb[i] / (kb[i] * MAX_SERVERS):.3g} here)"
        )
    spec = np.ceil(need - _EPS).astype(np.int64)
    return spec + (1 if chain else 0)


def pearl_latency_per_token(a, c, gamma, slope=0.0):
    """PEARL's latency per token for S -> infinity (window ``gamma`` >= 2; scalar arguments).

    A Markov chain over three kinds of round — pre-verify, post-verify of the ``gamma − 1``
    drafts left after a pre-verify, post-verify of a full window of ``gamma`` — with the round
    times ``max(1, gamma·c)`` and ``max(1 + slope·w, gamma·c)``; the latency per token is the
    stationary mean round time over the stationary mean tokens per round (renewal reward).
    The rules are those of :mod:`simspec.des.overlap`; derivation: ``theory/overlap.md``.

    >>> round(pearl_latency_per_token(0.8, 0.1, 10), 4)      # SI's best at (0.8, 0.1) is 0.4049
    0.3841
    >>> pearl_latency_per_token(0.0, 0.1, 10)                # every round pre-verifies one token
    1.0
    """
    a = float(_a(a))
    c = float(_c(c))
    g = int(_k(gamma))
    if g < 2:
        raise InvalidParameterError("PEARL's window gamma must hold at least 2 drafts")
    s = float(_slope(slope, g))
    return _pearl_rates(a, c, g, 1.0 + s * (g - 1), 1.0 + s * g)["latency"]


def _pearl_rates(a: float, c: float, g: int, v_short: float, v_full: float) -> dict[str, float]:
    """PEARL's long-run rates per token: ``latency``, ``rounds``, ``drafts``, ``target_busy``, ``drafter_busy``.

    Times in target forwards; ``v_short`` and ``v_full``: the verification forwards of a window of
    ``g − 1`` and of ``g`` drafts (``1 + slope·w`` for an affine target, any values for a measured
    one).  Every round drafts ``g`` tokens (``S → ∞``: no window is cut).
    """
    draft = g * c
    # states: 0 = pre-verify, 1 = post-verify of gamma - 1 drafts, 2 = post-verify of gamma drafts
    busy = np.array([1.0, v_short, v_full])
    time = np.maximum(busy, draft)
    tokens = np.zeros(3)
    P = np.zeros((3, 3))
    P[0, 1], P[0, 0], tokens[0] = a, 1.0 - a, 1.0
    for state, w in ((1, g - 1), (2, g)):
        full = a ** w
        j = np.arange(w)
        tokens[state] = w * full + float(np.sum((j + 1) * a ** j * (1.0 - a)))
        P[state, 2], P[state, 0] = full, 1.0 - full
    # stationary distribution: pi P = pi, sum(pi) = 1
    A = np.vstack([P.T - np.eye(3), np.ones(3)])
    pi = np.linalg.lstsq(A, np.array([0.0, 0.0, 0.0, 1.0]), rcond=None)[0]
    per_round = float(pi @ tokens)
    return {"latency": float(pi @ time) / per_round, "rounds": 1.0 / per_round, "drafts": g / per_round,
            "target_busy": float(pi @ busy) / per_round, "drafter_busy": draft / per_round}
