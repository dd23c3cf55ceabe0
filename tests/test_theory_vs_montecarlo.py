"""Closed forms of ``simspec.theory`` against the Monte Carlo engines and an event-by-event reference.

Every closed form is derived in ``theory/`` (index: ``theory/README.md``); each derivation names
the test here that checks it.

Units: the target's width-1 forward is the time unit (``ConstantLatency(1.0)``), so ms = time
units and a per-token latency of 1 is non-SI.  ``c`` is the drafter's forward, ``slope`` the
extra cost per extra token of a verification (``AffineLatency(1.0, slope)``, ``v = 1 + slope·k``).

Tolerance policy (stated once, used by ``_assert_close``).  A Monte Carlo estimate of the
per-token latency at finite ``S`` differs from the ``S → ∞`` closed form ``ℓ`` by
* statistical error: the mean of ``reps`` i.i.d. replications; we allow 5 standard errors of that
  mean (a false alarm for one check is ~6e-7 under normality; seeds are fixed anyway), and
* the finite-S end effect ``|E[time_S]/S − ℓ|``, bounded in the derivations:
    SI, static k        ≤ k·ℓ/S                       (theory/si.md, "finite S")
    oracle              = (a − c − slope)/S exactly   (theory/oracle.md)
    DSI with the chain  ≤ E[r]/S = 1/((1 − a) S)      (one epoch's expected length; theory/dsi_epoch_map.md)
    DSI without chain   ≤ ((2/(1 − a) + k) c + v)/S   (theory/dsi_epoch_map.md)
    repo model          ≤ max(1, k c)/((1 − a) S)     (theory/dsi_repo_model.md)
plus 1e-9 for floating point (deterministic cases such as a = 0 have zero variance).
Where the exact finite-S mean is computable (SI: backward recursion ``_si_exact_mean``; any epoch-sum
model: ``_epoch_exact_mean``; oracle: closed form) the MC is also compared with it within 5 standard
errors alone, and the exact finite-S mean is checked to lie within the stated bound of ``ℓ``.

Everything is seeded (``np.random.default_rng(SEED + i)``); the file runs in a few seconds.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from simspec import (
    AffineLatency,
    ConstantLatency,
    IIDAcceptance,
    InvalidParameterError,
    OracleLookahead,
    StaticLookahead,
    theory,
)
from simspec.montecarlo.dsi import dsi_epoch_table, dsi_run
from simspec.montecarlo.nonsi import nonsi_run
from simspec.montecarlo.positions import epoch_lengths
from simspec.montecarlo.si import si_run
from simspec.montecarlo.sweep import si_sweep

SEED = 20250517
S = 2000  # tokens per replication
REPS = 200  # replications per parameter point
FP = 1e-9  # floating-point slack


def _outcomes(a: float, seed_offset: int, tokens: int = S, reps: int = REPS) -> np.ndarray:
    """I.i.d. acceptance outcomes A (reps, tokens), drawn through simspec's own process."""
    return IIDAcceptance(a).sample(np.random.default_rng(SEED + seed_offset), tokens, reps)


def _target(slope: float):
    return AffineLatency(1.0, slope) if slope else ConstantLatency(1.0)


def _assert_close(samples, expected: float, bias_bound: float, what: str) -> None:
    """|mean − expected| ≤ 5 standard errors of the mean + the stated finite-S bound (+ FP)."""
    x = np.asarray(samples, dtype=float)
    mean = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(x.size))
    tol = 5.0 * se + bias_bound + FP
    assert abs(mean - expected) <= tol, (
        f"{what}: MC {mean:.6g} vs closed form {expected:.6g} (tol {tol:.3g}, se {se:.3g})"
    )


def _si_exact_mean(a: float, c: float, k: int, slope: float, tokens: int = S) -> float:
    """E[SI decode time] at finite S, exactly, by backward recursion over the emitted count.

    From ``pos`` emitted tokens a round drafts k' = min(k, S − pos − 1) (simspec's end cut), costs
    k'(c + slope) + 1 and emits n + 1 tokens, P(n = i) = (1 − a) a^i for i < k', P(n = k') = a^k'.
    """
    E = np.zeros(tokens + 1)
    for pos in range(tokens - 1, -1, -1):
        kk = min(k, tokens - pos - 1)
        i = np.arange(kk)
        E[pos] = kk * (c + slope) + 1 + float(np.sum((1 - a) * a**i * E[pos + 1 + i])) + a**kk * E[pos + kk + 1]
    return float(E[0])


def _epoch_exact_mean(D, a: float, tokens: int = S) -> float:
    """E[Σ_epochs D(r)] at finite S, exactly, for i.i.d. acceptance and any per-epoch cost D.

    A complete epoch of length r starts at position s (s = 1, or s − 1 rejected: probability 1 or
    1 − a) and ends at s + r − 1 ≤ S (probability (1 − a) a^(r−1)); so the expected number of
    complete epochs of length r is (1 − a) a^(r−1) (1 + (S − r)(1 − a)).  The unfinished tail has
    length m ≥ 1 with probability a^m (1 − a) for m < S and a^S for m = S.
    """
    r = np.arange(1, tokens + 1)
    Dr = np.asarray(D(r), dtype=float)
    complete = (1 - a) * a ** (r - 1) * (1 + (tokens - r) * (1 - a))
    tail = a**r * np.where(r < tokens, 1 - a, 1.0)
    return float(np.sum(Dr * (complete + tail)))


# --------------------------------------------------------------------------------------------
# SI
# --------------------------------------------------------------------------------------------

SI_POINTS = [  # (a, c, k, slope)
    (0.8, 0.1, 5, 0.0),
    (0.6, 0.5, 3, 0.0),
    (0.3, 0.5, 2, 0.0),  # a < c: slower than non-SI
    (0.0, 0.2, 3, 0.0),  # a = 0: deterministic, every round emits one token
    (0.9, 0.05, 8, 0.1),  # affine verification
    (0.7, 1.5, 2, 0.0),  # drafter slower than the target
    (0.8, 0.3, 4, 0.05),
]


@pytest.mark.parametrize("i,point", list(enumerate(SI_POINTS)))
def test_si_closed_form(i, point):
    a, c, k, slope = point
    A = _outcomes(a, 100 + i)
    res = si_run(A, StaticLookahead(k), _target(slope), ConstantLatency(c))
    mu = float(theory.si_expected_tokens_per_iteration(a, k))
    ell = float(theory.si_latency_per_token(a, c, k, slope))
    assert mu == pytest.approx((1 - a ** (k + 1)) / (1 - a), rel=1e-12)
    assert ell == pytest.approx((k * c + 1 + slope * k) * (1 - a) / (1 - a ** (k + 1)), rel=1e-12)
    # the verification slope acts exactly like a slower drafter: ℓ(c, slope) = ℓ(c + slope, 0)
    assert ell == pytest.approx(float(theory.si_latency_per_token(a, c + slope, k)), rel=1e-12)
    assert float(theory.si_speedup(a, c, k, slope)) == pytest.approx(1 / ell, rel=1e-12)
    if slope == 0:
        speedup = (1 - a ** (k + 1)) / ((1 - a) * (k * c + 1))
        assert float(theory.si_speedup(a, c, k)) == pytest.approx(speedup, rel=1e-12)
    # latency per token; end effect ≤ k ℓ / S (Wald on the uncut rounds, theory/si.md)
    _assert_close(res["decode_ms"] / S, ell, k * ell / S, f"SI latency {point}")
    # tighter: the exact finite-S mean (5 standard errors only), which obeys the stated bound
    exact = _si_exact_mean(a, c, k, slope) / S
    _assert_close(res["decode_ms"] / S, exact, 0.0, f"SI latency, exact finite S {point}")
    assert abs(exact - ell) <= k * ell / S + FP
    # rounds: cut and uncut runs have the same rounds, E[rounds] ∈ [S/μ, (S + k)/μ] (Wald)
    _assert_close(res["rounds"], S / mu, k / mu, f"SI rounds {point}")


def test_best_lookahead():
    k_max = 200
    # 1. the grid argmin equals a brute-force scan, ties to the smaller k; the curve is unimodal;
    #    the optimum lies below the bound k̄ = ((1 + c')/(1 − a²) − 1)/c' (c' = c + slope).
    for a in (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99):
        for c in (0.01, 0.02, 0.05, 0.1, 0.3, 0.5, 0.9, 1.5):
            for slope in (0.0, 0.05):
                k_best, lat_best = theory.best_si_lookahead(a, c, k_max, slope)
                lat = [float(theory.si_latency_per_token(a, c, k, slope)) for k in range(1, k_max + 1)]
                brute_k = 1 + min(range(k_max), key=lambda i: (lat[i], i))
                assert int(k_best) == brute_k
                assert float(lat_best) == pytest.approx(lat[brute_k - 1], rel=1e-12)
                d = np.diff(lat)
                rising = np.flatnonzero(d > 1e-12 * max(lat))
                if rising.size:  # quasi-convex: once it rises it never falls again
                    assert np.all(d[rising[0] :] >= -1e-12 * max(lat)), (a, c, slope)
                cp = c + slope
                k_bar = ((1 + cp) / (1 - a * a) - 1) / cp
                assert int(k_best) <= max(1.0, k_bar) + 1e-9
    # vectorised over a and c
    ks, lats = theory.best_si_lookahead(np.array([0.8, 0.9]), np.array([[0.1], [0.05]]))
    assert ks.shape == (2, 2) and int(ks[0, 0]) == int(theory.best_si_lookahead(0.8, 0.1)[0])

    # 2. Monte Carlo: the best k of a paired sweep is optimal within error.  Cost of a run with
    #    lookahead k: drafts·(c + slope) + rounds (each round's verification is 1 + slope·k').
    for j, (a, c, slope) in enumerate([(0.8, 0.1, 0.0), (0.9, 0.05, 0.02), (0.6, 0.2, 0.0)]):
        ks = np.arange(1, 16)
        A = _outcomes(a, 200 + j)
        rounds, drafts = si_sweep(A, ks)
        per_tok = (drafts * (c + slope) + rounds) / S  # (reps, len(ks))
        k_star, ell_star = theory.best_si_lookahead(a, c, k_max, slope)
        k_star = int(k_star)
        assert k_star in ks
        i_star = k_star - 1
        i_mc = int(np.argmin(per_tok.mean(axis=0)))
        ell = theory.si_latency_per_token(a, c, ks, slope)
        for i in (i_star, i_mc):  # per-k agreement at both candidates
            _assert_close(per_tok[:, i], float(ell[i]), ks[i] * ell[i] / S, f"SI k={ks[i]} at {(a, c, slope)}")
        # paired difference MC(k*) − MC(k_mc) ≥ 0 by construction; it must be within error,
        # and the MC's choice must be near-optimal in truth.
        diff = per_tok[:, i_star] - per_tok[:, i_mc]
        se = diff.std(ddof=1) / math.sqrt(diff.size)
        bias = (ks[i_star] * ell[i_star] + ks[i_mc] * ell[i_mc]) / S
        assert diff.mean() <= 5 * se + bias + FP
        assert float(ell[i_mc]) - float(ell_star) <= 5 * se + bias + FP


def test_si_pays_iff_a_gt_c():
    ks = np.arange(1, 201)
    grid = np.linspace(0.0, 1.0, 41)
    for a in grid[:-1]:  # a = 1 excluded (division by 1 − a); the claim is about a < 1
        for c in np.concatenate([grid, [1.2, 1.5, 3.0]]):
            best = float(np.max(theory.si_speedup(a, c, ks)))
            possible = bool(theory.si_speedup_possible(a, c))
            assert possible == (a > c)
            if possible:
                assert best > 1 + 1e-12
                assert float(theory.si_speedup(a, c, 1)) == pytest.approx((1 + a) / (1 + c), rel=1e-12)
                assert float(theory.si_speedup(a, c, 1)) > 1
            else:
                assert best <= 1 + 1e-12, (a, c, best)
            # with an affine verification the threshold is a > c + slope
            for slope in (0.05, 0.2):
                best_s = float(np.max(theory.si_speedup(a, c, ks, slope)))
                if a > c + slope + 1e-12:
                    assert best_s > 1
                elif a < c + slope - 1e-12:
                    assert best_s <= 1 + 1e-12
    # Monte Carlo on each side of the threshold
    A = _outcomes(0.5, 300)
    fast = si_run(A, StaticLookahead(1), ConstantLatency(1.0), ConstantLatency(0.3))["decode_ms"] / S
    ell = float(theory.si_latency_per_token(0.5, 0.3, 1))
    _assert_close(fast, ell, ell / S, "SI a=0.5 c=0.3 k=1")
    assert fast.mean() + 5 * fast.std(ddof=1) / math.sqrt(fast.size) + ell / S < 1.0  # pays
    A = _outcomes(0.3, 301)
    for k in range(1, 9):
        slow = si_run(A, StaticLookahead(k), ConstantLatency(1.0), ConstantLatency(0.5))["decode_ms"] / S
        ell = float(theory.si_latency_per_token(0.3, 0.5, k))
        assert slow.mean() - 5 * slow.std(ddof=1) / math.sqrt(slow.size) - k * ell / S > 1.0  # never pays


# --------------------------------------------------------------------------------------------
# Oracle lookahead
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "i,point",
    list(enumerate([(0.8, 0.1, 0.0), (0.5, 0.3, 0.05), (0.0, 0.2, 0.0), (0.7, 1.5, 0.0), (0.95, 0.02, 0.0)])),
)
def test_oracle_closed_form(i, point):
    a, c, slope = point
    ell = float(theory.oracle_latency_per_token(a, c, slope))
    assert ell == pytest.approx(c + slope + 1 - a, rel=1e-12)
    A = _outcomes(a, 400 + i)
    per_tok = si_run(A, OracleLookahead(), _target(slope), ConstantLatency(c))["decode_ms"] / S
    # finite S, exactly: E[time_S] = S ℓ + a − c − slope (theory/oracle.md), so no bias term
    _assert_close(per_tok, ell + (a - c - slope) / S, 0.0, f"oracle {point}")


# --------------------------------------------------------------------------------------------
# DSI: Prop. 1, the epoch map, the event reference
# --------------------------------------------------------------------------------------------


def test_dsi_prop1():
    for a in (0.0, 0.2, 0.5, 0.8, 0.95):
        for c in (0.02, 0.1, 0.5, 0.9, 1.0):
            # Prop. 1 is the epoch map at k = 1 (c ≤ 1)
            assert float(theory.dsi_prop1_latency_per_token(a, c)) == pytest.approx(a * c + 1 - a, rel=1e-12)
            assert float(theory.dsi_latency_per_token(a, c, 1)) == pytest.approx(a * c + 1 - a, rel=1e-12, abs=1e-15)
        # c > 1: DSI is non-SI (latency 1), Prop. 1's a c + 1 − a is only an upper bound
        assert float(theory.dsi_latency_per_token(a, 1.5, 1)) == 1.0
        assert float(theory.dsi_prop1_latency_per_token(a, 1.5)) >= 1.0
    r = np.arange(1, 60)
    for c in (0.05, 0.5, 0.9, 1.0, 1.5):
        assert np.allclose(theory.dsi_epoch_duration(r, 1, c), np.minimum(r, 1 + (r - 1) * c), rtol=0, atol=1e-12)
    for j, (a, c) in enumerate([(0.8, 0.1), (0.6, 0.5), (0.9, 0.9)]):
        A = _outcomes(a, 500 + j)
        per_tok = dsi_run(A, 1, ConstantLatency(1.0), ConstantLatency(c))["decode_ms"] / S
        _assert_close(per_tok, float(theory.dsi_prop1_latency_per_token(a, c)), 1 / ((1 - a) * S), f"Prop. 1 {a, c}")


def _expected_D_no_chain_bound(a, c, k, v):
    """Bound on max(E[D], E[D(r_{N+1})]) without the chain: D(r) ≤ (r + k)c + v, E[r_{N+1}] ≤ 2/(1 − a)."""
    return (2 / (1 - a) + k) * c + v


DSI_POINTS = [  # (a, c, k, slope, chain)
    (0.8, 0.1, 5, 0.0, True),  # k c ≤ 1
    (0.8, 0.3, 5, 0.0, True),  # k c > 1, c < 1
    (0.9, 0.05, 8, 0.1, True),  # affine verification (series path)
    (0.6, 1.5, 3, 0.0, True),  # c > 1: DSI = non-SI
    (0.0, 0.2, 4, 0.0, True),  # a = 0
    (0.85, 0.95, 2, 0.05, True),
    (0.7, 0.2, 3, 0.0, False),  # without the chain
    (0.9, 0.3, 4, 0.1, False),
]


@pytest.mark.parametrize("i,point", list(enumerate(DSI_POINTS)))
def test_dsi_epoch_map_closed_form(i, point):
    a, c, k, slope, chain = point
    v = 1 + slope * k
    ell = float(theory.dsi_latency_per_token(a, c, k, slope, chain))
    if chain and slope == 0:  # analytic closed form = the epoch series, forced with a tiny slope
        assert ell == pytest.approx(float(theory.dsi_latency_per_token(a, c, k, 1e-13)), rel=1e-8, abs=1e-12)
    A = _outcomes(a, 600 + i)
    per_tok = dsi_run(A, k, _target(slope), ConstantLatency(c), chain=chain)["decode_ms"] / S
    bias = 1 / ((1 - a) * S) if chain else _expected_D_no_chain_bound(a, c, k, v) / S
    _assert_close(per_tok, ell, bias, f"DSI {point}")
    # tighter: the exact finite-S mean of the epoch sum (5 standard errors only), within the bound
    exact = _epoch_exact_mean(lambda r: theory.dsi_epoch_duration(r, k, c, slope, chain), a) / S
    _assert_close(per_tok, exact, 0.0, f"DSI exact finite S {point}")
    assert abs(exact - ell) <= bias + FP
    if chain and c >= 1:
        assert ell == 1.0 and np.all(np.abs(per_tok - 1.0) <= FP)  # DSI = non-SI, run by run


def test_dsi_epoch_map_analytic_vs_series():
    """Closed form (slope = 0) against the series Σ P(r) D(r) (forced with a tiny slope) and the simplifications."""
    ks = (1, 2, 3, 5, 8, 13)
    for a in (0.0, 0.3, 0.6, 0.8, 0.9, 0.97):
        for c in (0.02, 0.1, 0.3, 0.5, 0.9, 0.99, 1.0, 1.5):
            for k in ks:
                closed = float(theory.dsi_latency_per_token(a, c, k))
                series = float(theory.dsi_latency_per_token(a, c, k, slope=1e-13))
                assert closed == pytest.approx(series, rel=1e-8, abs=1e-12), (a, c, k)
                # the formula written out (c ≤ 1), independent of the code's vectorisation
                if c <= 1 and a < 1:
                    j = np.arange(1, k + 1)
                    g = float(np.sum((1 - a) * a**j * np.minimum(k * c, j)))
                    ak = a**k
                    mine = (1 - a) * (1 + k * c * a ** (k + 1) / (1 - ak) + g / (1 - ak))
                    assert closed == pytest.approx(mine, rel=1e-10, abs=1e-15)
                    if k * c <= 1:
                        assert closed == pytest.approx((1 - a) * (1 + a * k * c / (1 - ak)), rel=1e-10, abs=1e-15)
                else:
                    assert closed == 1.0
    # the spec's simplification D(r) = ⌈(r−1)/k⌉ k c + 1 (k c ≤ 1, slope 0, r ≥ 2)
    r = np.arange(2, 200)
    for k in ks:
        for c in (0.01, 0.05, 0.1, 1.0 / k):
            if k * c > 1:
                continue
            B = -(-(r - 1) // k)
            assert np.allclose(theory.dsi_epoch_duration(r, k, c), B * k * c + 1, rtol=0, atol=1e-12)


def reference_epoch(r: int, k: int, c: float, slope: float = 0.0, chain: bool = True, eps: float = 1e-9) -> dict:
    """One DSI epoch simulated event by event, unlimited servers, time unit = one width-1 target forward.

    Written from the rules in docs/model.md §4, independently of simspec: the drafter finishes draft j
    at j·c; block b (drafts (b−1)k+1..bk) is submitted at b·k·c and its width-(k+1) verification
    ends at b·k·c + v, yielding the target's tokens at positions (b−1)k+1..bk+1, which count once
    every position ≤ (b−1)k is confirmed (results wait otherwise).  Position p's target token
    confirms p; it equals the draft iff p < r (the epoch's first rejection is its r-th position).
    The chain runs one width-1 forward on the newest verified prefix; a verification that moves
    the frontier past the chain's position cancels and restarts it.  The epoch ends when position
    r is confirmed.  Ties at one instant: the chain's completion is applied first (a verification
    reaching the same frontier is then no jump); at the final instant a verification that also
    reaches r counts as useful (dsi_epoch_table's convention).  With the chain and c > 1 the chain
    overtakes the drafter at every step and the drafter restarts there (it never submits a block).  Costs count forwards started
    strictly before the end.  Also returns ``confirmed[p]`` = time position p was confirmed.
    """
    v = 1.0 + slope * k
    V = 0
    confirmed = {}
    chain_end = 1.0 if chain else math.inf
    chain_started = 1 if chain else 0
    chain_useful = 0
    spec_useful = 0
    b = 1
    pending: list[int] = []
    while True:
        t = min(chain_end, b * k * c + v)
        chain_done = chain and chain_end <= t + eps
        if chain_done:
            V += 1
            confirmed[V] = t
            chain_useful += 1
        while b * k * c + v <= t + eps:
            pending.append(b)
            b += 1
        jumped, progressed = False, True
        while progressed:
            progressed = False
            for bb in sorted(pending):
                if V >= (bb - 1) * k:
                    pending.remove(bb)
                    reach = min(bb * k + 1, r)
                    if reach > V:
                        for p in range(V + 1, reach + 1):
                            confirmed[p] = t
                        V = reach
                        spec_useful += 1
                        jumped = progressed = True
                    elif V >= r and reach >= r:
                        spec_useful += 1  # final-instant tie with the chain
        if V >= r:
            dur = t
            break
        if chain and (chain_done or jumped):
            chain_end = t + 1.0
            chain_started += 1
    n_sub, spec_busy = 0, 0.0
    while (n_sub + 1) * k * c < dur - eps:
        n_sub += 1
        spec_busy += min(v, dur - n_sub * k * c)
    drafts = 0
    while drafts * c < dur - eps:
        drafts += 1
    if chain and c > 1 + eps:
        # A drafter slower than the target is overtaken by the chain at every step; it restarts at
        # the new frontier each time (one draft started per chain forward) and never submits a block.
        n_sub, spec_busy, spec_useful, drafts = 0, 0.0, 0, chain_started
    started = chain_started + n_sub
    return {
        "duration_ms": dur,
        "target_forwards": started,
        "target_forwards_wasted": started - chain_useful - spec_useful,
        "target_busy_ms": (dur if chain else 0.0) + spec_busy,
        "drafter_forwards": drafts,
        "drafter_busy_ms": dur,
        "confirmed": confirmed,
    }


REF_GRID = [
    (k, c, slope, chain)
    for k in (1, 2, 3, 5, 8)
    for c in (0.05, 0.1, 0.3, 0.5, 0.9, 1.0, 1.5)
    for slope in (0.0, 0.1)
    for chain in (True, False)
]
R_MAX = 40


def _spec_formula(r: int, k: int, c: float, v: float = 1.0) -> float:
    """The specification's first epoch map (docs/model.md §4, theory/dsi_epoch_map.md §5): D(r) = min(T_B, T_{B−1} + r − F_{B−1}), T_0 = F_0 = 0, D(1) = 1."""
    if r == 1:
        return 1.0
    B = -(-(r - 1) // k)
    T = lambda b: 0.0 if b == 0 else b * k * c + v  # noqa: E731
    F = lambda b: 0 if b == 0 else b * k + 1  # noqa: E731
    return min(T(B), T(B - 1) + r - F(B - 1))


def test_dsi_epoch_map_vs_event_reference():
    r = np.arange(1, R_MAX + 1)
    for k, c, slope, chain in REF_GRID:
        D = theory.dsi_epoch_duration(r, k, c, slope, chain)
        for ri in r:
            ref = reference_epoch(int(ri), k, c, slope, chain)
            case = (k, c, slope, chain, int(ri), ref["duration_ms"], D[ri - 1])
            assert abs(ref["duration_ms"] - D[ri - 1]) <= 1e-9, case
            # D(r) is the time the epoch's r-th token is confirmed: the same time when draft r is
            # accepted (r-th position of a longer epoch), which is what the unfinished last epoch costs
            if ri < R_MAX:
                longer = reference_epoch(R_MAX, k, c, slope, chain)
                assert abs(longer["confirmed"][int(ri)] - D[ri - 1]) <= 1e-9
    # the spec's formula is right for c ≤ 1 and slope 0, and wrong outside: counterexamples
    for k in (1, 2, 3, 5, 8):
        for c in (0.05, 0.3, 0.9, 1.0):
            for ri in range(1, R_MAX):
                assert abs(_spec_formula(ri, k, c) - reference_epoch(ri, k, c)["duration_ms"]) <= 1e-9
    assert _spec_formula(3, 1, 1.5) == 3.5 and reference_epoch(3, 1, 1.5)["duration_ms"] == 3.0  # c > 1: D = r
    # slope > 0: the chain from the epoch start (b = 0) wins
    assert _spec_formula(3, 1, 0.9, v=2.0) == pytest.approx(3.8)
    assert reference_epoch(3, 1, 0.9, slope=1.0)["duration_ms"] == 3.0


def test_dsi_epoch_table_vs_event_reference():
    """Costs of dsi_epoch_table (forwards started, wasted, busy time, drafts) against the reference."""
    r = np.arange(1, R_MAX + 1)
    for k, c, slope, chain in REF_GRID:
        table = dsi_epoch_table(r, k, c, 1 + slope * k, 1.0, chain)
        for ri in r:
            ref = reference_epoch(int(ri), k, c, slope, chain)
            for name, got in table.items():
                case = (name, k, c, slope, chain, int(ri), ref[name], got[ri - 1])
                assert abs(ref[name] - got[ri - 1]) <= 1e-6 * (1 + abs(ref[name])), case
    # time scale: the table in ms is the table in time units times the target's forward
    t1 = 30.0
    tab_ms = dsi_epoch_table(r, 3, 0.3 * t1, 1.3 * t1, t1)
    tab_1 = dsi_epoch_table(r, 3, 0.3, 1.3, 1.0)
    for name in ("duration_ms", "target_busy_ms", "drafter_busy_ms"):
        assert np.allclose(tab_ms[name], t1 * tab_1[name])
    for name in ("target_forwards", "target_forwards_wasted", "drafter_forwards"):
        assert np.array_equal(tab_ms[name], tab_1[name])


# --------------------------------------------------------------------------------------------
# The reference repo's offline model
# --------------------------------------------------------------------------------------------


def _repo_epoch(r, k, c):
    """The DSI authors' offline charge per epoch: min(⌈r/k⌉ k c + 1, r)."""
    r = np.asarray(r)
    return np.minimum(-(-r // k) * k * c + 1.0, r)


def _repo_series(a, c, k, r_max=20000):
    r = np.arange(1, r_max + 1)
    w = (1 - a) * a ** (r - 1)
    return float((1 - a) * np.sum(w * _repo_epoch(r, k, c)))


REPO_POINTS = [(0.8, 0.1, 5), (0.8, 0.2, 3), (0.6, 0.4, 1), (0.9, 0.3, 5), (0.7, 0.5, 2), (0.5, 1.5, 2)]


def test_dsi_repo_model():
    # closed form (1 − a)[1 + k c/(1 − a^k) − (1 − a) k c] = the repo's epoch series where it is valid
    # (k c ≤ 1 and c ≤ 1/2, theory/dsi_repo_model.md); the code sums the series for k c > 1
    for a in (0.0, 0.3, 0.6, 0.8, 0.9, 0.97):
        for k in (1, 2, 3, 5, 8):
            for c in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.9, 1.5):
                got = float(theory.dsi_repo_latency_per_token(np.array([a]), c, k)[0])
                if k * c <= 1 and c <= 0.5:
                    closed = (1 - a) * (1 + k * c / (1 - a**k) - (1 - a) * k * c)
                    assert got == pytest.approx(closed, rel=1e-10, abs=1e-15)
                assert got == pytest.approx(_repo_series(a, c, k), rel=1e-9, abs=1e-15), (a, c, k)
    # per epoch: exact D(r) ≤ repo's charge (so the repo model is pessimistic for DSI)
    r = np.arange(1, 300)
    for k in (1, 2, 3, 5, 8, 13):
        for c in (0.02, 0.1, 0.3, 0.5, 0.9, 1.0, 1.5):
            assert np.all(theory.dsi_epoch_duration(r, k, c) <= _repo_epoch(r, k, c) + FP)
    # scalar and broadcast arguments
    assert float(theory.dsi_repo_latency_per_token(0.8, 0.1, 5)) == pytest.approx(_repo_series(0.8, 0.1, 5), rel=1e-9)
    assert theory.dsi_repo_latency_per_token(np.array([0.6, 0.9]), 0.3, np.array([[2], [5]])).shape == (2, 2)
    # Monte Carlo of the repo's rule on the same outcomes as the exact DSI
    for j, (a, c, k) in enumerate(REPO_POINTS):
        A = _outcomes(a, 700 + j)
        rows, lengths = epoch_lengths(A)
        repo_run = np.bincount(rows, weights=_repo_epoch(lengths, k, c), minlength=A.shape[0])
        ell = float(theory.dsi_repo_latency_per_token(np.array([a]), c, k)[0])
        bias = max(1.0, k * c) / ((1 - a) * S)
        _assert_close(repo_run / S, ell, bias, f"repo model {(a, c, k)}")
        exact = _epoch_exact_mean(lambda r: _repo_epoch(r, k, c), a) / S
        _assert_close(repo_run / S, exact, 0.0, f"repo model, exact finite S {(a, c, k)}")
        assert abs(exact - ell) <= bias + FP
        exact_run = dsi_run(A, k, ConstantLatency(1.0), ConstantLatency(c))["decode_ms"]
        assert np.all(exact_run <= repo_run + FP)


def test_dsi_repo_model_k1_slow_drafter():
    """Regression: at k = 1 the closed form holds only for c <= 1/2 (it once gave 1.064 here)."""
    a, c, k = 0.8, 0.9, 1
    got = float(theory.dsi_repo_latency_per_token(np.array([a]), c, k)[0])
    assert got == pytest.approx(_repo_series(a, c, k), rel=1e-9)


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def _max_overlap(c: Fraction, k: int, v: Fraction, blocks: int) -> int:
    """Most speculative tasks running at once: intervals [b k c, b k c + v), b = 1..blocks, exact arithmetic.

    Half-open: a task ending at t frees its server for a task submitted at t (ends sorted first).
    """
    events = []
    for b in range(1, blocks + 1):
        events.append((b * k * c, 1))
        events.append((b * k * c + v, 0))
    events.sort()
    busy = peak = 0
    for _, kind in events:
        busy += 1 if kind else -1
        peak = max(peak, busy)
    return peak


def test_servers_needed():
    for c_txt in ("0.05", "0.1", "0.125", "0.2", "0.25", "0.3", "0.5", "0.9", "1", "1.5"):
        for k in (1, 2, 3, 5, 8):
            for slope_txt in ("0", "0.1", "0.25"):
                c, slope = Fraction(c_txt), Fraction(slope_txt)
                v = 1 + slope * k
                blocks = int(math.ceil(v / (k * c))) + 5  # long enough for the steady state
                direct = _max_overlap(c, k, v, blocks)
                assert direct == math.ceil(v / (k * c))
                spec_only = int(theory.dsi_servers_needed(float(c), k, float(slope), chain=False))
                assert spec_only == direct, (c_txt, k, slope_txt)
                assert int(theory.dsi_servers_needed(float(c), k, float(slope))) == direct + 1
                if slope == 0:  # the paper's count
                    assert int(theory.dsi_servers_needed(float(c), k, chain=False)) == math.ceil(1 / (k * c))
    # inside a real epoch every task still running is cancelled at the epoch's end, so the peak
    # over an epoch is at most the count (exact arithmetic; D(r) from the closed form)
    for k, c_txt, slope_txt in ((1, "0.1", "0"), (3, "0.3", "0.1"), (2, "0.05", "0.25")):
        c, slope = Fraction(c_txt), Fraction(slope_txt)
        v = 1 + slope * k
        need = int(theory.dsi_servers_needed(float(c), k, float(slope), chain=False))
        for ri in (1, 5, 40):
            dur = Fraction(float(theory.dsi_epoch_duration(ri, k, float(c), float(slope)))).limit_denominator(10**6)
            subs = [b * k * c for b in range(1, 10_000) if b * k * c < dur]
            peak = max([sum(1 for s in subs if s <= t < min(s + v, dur)) for t in subs] or [0])
            assert peak <= need
    with pytest.raises(InvalidParameterError):
        theory.dsi_servers_needed(0.0, 3)


# --------------------------------------------------------------------------------------------
# Never slower
# --------------------------------------------------------------------------------------------


def test_dsi_never_slower_paired():
    # run by run, DSI (with the chain) ≤ non-SI on the same outcomes: D(r) ≤ r, any c, any slope
    points = [(0.8, 0.1, 5, 0.0), (0.0, 0.2, 4, 0.0), (0.6, 1.5, 3, 0.0), (0.9, 0.3, 8, 0.2), (0.5, 0.9, 2, 0.1)]
    for j, (a, c, k, slope) in enumerate(points):
        A = _outcomes(a, 800 + j)
        dsi = dsi_run(A, k, _target(slope), ConstantLatency(c))["decode_ms"]
        nonsi = nonsi_run(_target(slope), S, A.shape[0])["decode_ms"]
        assert np.all(dsi <= nonsi + FP)
    # under the paper's assumptions (constant latencies, c < 1, enough servers): mean DSI ≤ mean SI,
    # same static k, same outcomes; also in the closed forms, for every k
    for j, (a, c, ks) in enumerate([(0.8, 0.1, (1, 3, 5, 10)), (0.5, 0.4, (1, 2, 4)), (0.95, 0.05, (8, 20))]):
        A = _outcomes(a, 900 + j)
        for k in ks:
            si = si_run(A, StaticLookahead(k), ConstantLatency(1.0), ConstantLatency(c))["decode_ms"]
            dsi = dsi_run(A, k, ConstantLatency(1.0), ConstantLatency(c))["decode_ms"]
            assert dsi.mean() <= si.mean(), (a, c, k)
    for a in (0.0, 0.3, 0.6, 0.8, 0.9, 0.97):
        for c in (0.02, 0.1, 0.3, 0.5, 0.9, 1.0, 1.5):
            for k in (1, 2, 3, 5, 8, 13, 40):
                dsi = float(theory.dsi_latency_per_token(a, c, k))
                assert dsi <= float(theory.si_latency_per_token(a, c, k)) + 1e-12
                assert dsi <= 1.0 + 1e-12
