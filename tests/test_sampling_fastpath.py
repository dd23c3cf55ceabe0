"""The fast verification path of ``simspec.sampling.core``: exact draws, the same random stream, checks once.

``core`` draws by inverse CDF; above ``core._SMALL`` entries it sums blocks first and runs ``cumsum``
over one block only (``np.cumsum`` is several times slower per entry than a sum).  These tests pin
that this is the *same rule* as one ``cumsum`` over everything (index for index, for every uniform
away from a rounding boundary), that an entry of probability 0 is never drawn, that a single step
consumes the random stream exactly as the mechanism reads (proposal, coin, residual only when
rejected), that the checked public path raises the same named errors as ``check_distribution``,
and — statistically, with a power check — that every path (one step, ``n`` steps, batched rows
vectorised and row by row) emits ``p``.  Speed is measured in ``benchmarks/``, never asserted here.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simspec.errors import DistributionError, VocabularyError
from simspec.sampling import core, slrs, std

ALPHA = 1e-3  # false-alarm rate of each chi-square test (fixed seeds: deterministic)


class FixedU:
    """A generator stand-in that returns prescribed uniforms, in order."""

    def __init__(self, us):
        self.us = list(us)

    def random(self, size=None):
        if size is None:
            return self.us.pop(0)
        out = np.array([self.us.pop(0) for _ in range(size)])
        return out


def ref_index(w: np.ndarray, u: float, c: np.ndarray) -> int | None:
    """One cumsum ``c`` over everything, the textbook rule (past the end: the last entry of positive
    weight); ``None`` where ``u·W`` is within rounding of a boundary, so either neighbour is right."""
    t = u * c[-1]
    if np.min(np.abs(c - t)) <= 1e-12 * c[-1]:
        return None
    i = int(np.searchsorted(c, t, side="right"))
    return i if i < w.size else int(np.flatnonzero(w)[-1])


def weights(v: int, seed: int) -> np.ndarray:
    """Random weights with exact zeros: scattered, a whole zero block, and leading and trailing zeros."""
    rng = np.random.default_rng(seed)
    w = rng.random(v) ** 3
    w[rng.random(v) < 0.3] = 0.0
    w[: min(5, v - 1)] = 0.0
    if v > 200:
        w[v // 3: v // 3 + 100] = 0.0
    w[-min(7, v - 1):] = 0.0
    if w.sum() == 0:
        w[v // 2] = 1.0
    return w / w.sum()


UNIFORMS = np.concatenate([np.linspace(0.0, 1.0, 1001, endpoint=False), [1.0 - 2.0**-53, 2.0**-60]])
SIZES = [1, 6, 700, 768, 769, 1000, 4096, 4097, 5000, 20_000]


@pytest.mark.parametrize("v", SIZES)
def test_block_draw_is_the_inverse_cdf_rule(v):
    w = weights(v, v)
    c = np.cumsum(w)
    for u in UNIFORMS:
        got, total = core._draw(w, float(u))
        assert w[got] > 0, f"V={v}, u={u}: drew index {got} of probability 0"
        assert total == pytest.approx(1.0, abs=1e-12)
        assert ref_index(w, u, c) in (None, got), f"V={v}, u={u}"


@pytest.mark.parametrize("v", SIZES)
@pytest.mark.parametrize("n", [1, 3, 50])
def test_many_draws_from_one_law_are_the_inverse_cdf_rule(v, n):
    w = weights(v, v + 1)
    c = np.cumsum(w)
    us = UNIFORMS[: (len(UNIFORMS) // n) * n].reshape(-1, n)
    for row in us:
        got = core.sample_categorical(FixedU(row), w, n)
        assert np.all(w[got] > 0)
        for g, u in zip(got, row):
            assert ref_index(w, u, c) in (None, g), f"V={v}, n={n}, u={u}"


@pytest.mark.parametrize("v", SIZES)
def test_row_draws_are_the_inverse_cdf_rule(v):
    m = 40
    W = np.stack([weights(v, 1000 * v + i) for i in range(m)])
    C = np.cumsum(W, axis=1)
    for start in range(0, len(UNIFORMS) - m, 97):
        u = UNIFORMS[start:start + m]
        got = core.sample_categorical(FixedU(u), W)
        assert np.all(W[np.arange(m), got] > 0)
        for i in range(m):
            assert ref_index(W[i], u[i], C[i]) in (None, got[i]), f"V={v}, row {i}, u={u[i]}"


@pytest.mark.parametrize("u_max", [1.0 - 2.0**-53, 1.0])
def test_the_largest_uniform_never_draws_a_zero_probability_entry(u_max):
    """``u·W`` at (or, with ``u = 1``, a stand-in for rounding, exactly at) the total: the draw falls back
    to the last entry of positive weight, never to a zero-probability one after it (in its block or not)."""
    for v in (3, 1000, 5000, 20_000):
        w = np.zeros(v)
        w[[0, v // 2]] = 0.5  # everything after v // 2 has probability 0 (its block's tail and whole blocks)
        assert core._draw(w, u_max)[0] == v // 2
        for n in (1, 2, 500):
            assert np.all(core.sample_categorical(FixedU([u_max] * n), w, n) == v // 2)
        assert np.all(core.sample_categorical(FixedU([u_max] * 4), np.tile(w, (4, 1))) == v // 2)


def ref_step(rng, p, r):
    """The mechanism, written plainly: x ~ r; accept iff u < p(x)/r(x); else y ~ (p − r)+ (normalised)."""
    c = np.cumsum(r)
    x = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
    if rng.random() < min(1.0, p[x] / r[x]):
        return x, True, x
    c = np.cumsum(np.maximum(p - r, 0.0))
    return x, False, int(np.searchsorted(c, rng.random() * c[-1], side="right"))


@pytest.mark.parametrize("v", [5, 700, 2000, 50_000])
@pytest.mark.parametrize("checked", [False, True])
def test_one_step_reads_the_random_stream_as_the_mechanism_does(v, checked):
    """Proposal uniform, coin uniform, and a residual uniform only after a rejection: a seed gives the
    same verification as the plain mechanism, step after step (so results do not depend on the path)."""
    rng = np.random.default_rng(v)
    p, r = rng.dirichlet(np.full(v, 0.3)), rng.dirichlet(np.full(v, 0.3))
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    n_rej = 0
    for _ in range(300):
        s = std.sample(a, p, r) if checked else core.sample_step(a, p, r)
        x, acc, y = ref_step(b, p, r)
        assert (int(s.proposal[0]), bool(s.accepted[0]), int(s.emitted[0])) == (x, acc, y)
        assert s.proposal.shape == s.accepted.shape == s.emitted.shape == (1,)
        n_rej += not acc
    assert 0 < n_rej < 300  # both branches ran
    assert a.random() == b.random()  # and the two streams are still in step


# ---- the checked public path: the same named errors as check_distribution, for every shape --------

V_BIG = 5000


def _law(v=V_BIG, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(v))


@pytest.mark.parametrize("call, v", [
    (lambda p, q: std.sample(np.random.default_rng(0), p, q), V_BIG),
    (lambda p, q: std.sample(np.random.default_rng(0), p, q), 300),
    (lambda p, q: std.sample(np.random.default_rng(0), p, q, 7), V_BIG),
    (lambda p, q: std.sample(np.random.default_rng(0), np.tile(p, (3, 1)), np.tile(q, (3, 1))), 20_000),
    (lambda p, q: std.sample(np.random.default_rng(0), np.tile(p, (20, 1)), np.tile(q, (20, 1))), 1000),
    (lambda p, q: std.acceptance(p, q), V_BIG),
    (lambda p, q: std.acceptance(np.tile(p, (30, 1)), np.tile(q, (30, 1))), V_BIG),
], ids=["one", "one-short", "n", "rows-long", "rows-short", "acceptance", "acceptance-rows"])
def test_checked_path_names_what_is_wrong(call, v):
    p = _law(v)
    q = _law(v, seed=1)
    call(p, q)  # valid input runs
    with pytest.raises(DistributionError, match=r"q must sum to 1 along its last axis, but a row sums to 1\.2"):
        call(p, q * 1.2)
    neg = q.copy()
    neg[[10, 11]] = [-0.001, neg[11] + 0.001]
    with pytest.raises(DistributionError, match=r"^q has negative or non-finite entries"):
        call(p, neg)
    nan = p.copy()
    nan[v - 3] = np.nan
    with pytest.raises(DistributionError, match=r"^p has negative or non-finite entries"):
        call(nan, q)
    inf = p.copy()
    inf[0] = np.inf
    with pytest.raises(DistributionError, match=r"^p has negative or non-finite entries"):
        call(inf, q)


def test_checked_path_length_mismatch_and_empty():
    rng = np.random.default_rng(0)
    with pytest.raises(VocabularyError, match="p has 5000 entries but q has 4999"):
        std.sample(rng, _law(), _law(4999))
    with pytest.raises(DistributionError, match="non-empty"):
        std.sample(rng, np.array([]), np.array([]))
    with pytest.raises(DistributionError, match="psi must sum to 1"):
        slrs.sample(rng, _law(), _law() * 0.5)


def _bad_q_total(p, q):
    q *= 1.2


def _negative_q(p, q):
    q[[10, 11]] = [-0.001, q[11] + 0.001]


def _nan_p(p, q):
    p[7] = np.nan


@pytest.mark.parametrize("v", [300, 1000, 4096])
@pytest.mark.parametrize("change, match", [
    (_bad_q_total, r"q must sum to 1 along its last axis, but a row sums to 1\.2"),
    (_negative_q, r"^q has negative or non-finite entries"),
    (_nan_p, r"^p has negative or non-finite entries"),
], ids=["q-total", "q-negative", "p-nan"])
def test_a_pair_that_passed_acceptance_is_checked_again_once_changed(v, change, match):
    """``acceptance(p, q)`` then ``sample(rng, p, q)`` checks a short pair once; changed in between, in place
    or through what it is a view of, the pair is checked again and raises what it raises unchecked-before."""
    p, q = _law(v), _law(v, seed=1)
    std.acceptance(p, q)
    change(p, q)
    with pytest.raises(DistributionError, match=match):
        std.sample(np.random.default_rng(0), p, q)
    both = np.stack([_law(v), _law(v, seed=1)])
    pv, qv = both[0], both[1]
    std.acceptance(pv, qv)
    change(both[0], both[1])  # through the base array, not the views passed
    with pytest.raises(DistributionError, match=match):
        std.sample(np.random.default_rng(0), pv, qv, acceptance=True)


@pytest.mark.parametrize("v", [300, 1000, 4096])
def test_a_step_after_acceptance_is_the_step_without_it(v):
    """The check skipped after ``acceptance`` changes nothing in the sample: the same steps, seed for seed,
    for the same pair, a pair changed in place into another law, and a pair in new arrays of equal bytes."""
    p, q = _law(v), _law(v, seed=1)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    for i in range(40):
        alpha = bool(i % 2)
        want = std.sample(b, p, q, acceptance=alpha)
        assert std.acceptance(p, q) == np.minimum(p, q).sum()
        got = std.sample(a, p, q, acceptance=alpha)
        for f in ("proposal", "accepted", "emitted", "acceptance"):
            assert np.array_equal(getattr(got, f), getattr(want, f)), (i, f)
        if i % 3 == 0:
            q[[1, 2, 3]] = q[[3, 1, 2]]  # still a law, another one
        if i % 5 == 0:
            p, q = p.copy(), q.copy()
    assert a.random() == b.random()


@pytest.mark.parametrize("v, m", [(20_000, 8), (5000, 20), (1000, 64)])
def test_batched_acceptance_reports_the_first_bad_row(v, m):
    """Batched α goes a chunk of rows (long rows: one row, 1-D) at a time; a batch with several bad rows says
    what the first one has wrong, whatever the chunking."""
    P = np.random.default_rng(1).dirichlet(np.ones(v), size=m)
    Q = np.random.default_rng(2).dirichlet(np.ones(v), size=m)
    Q[1] *= 0.5
    P[m - 2, 3] = -0.01
    with pytest.raises(DistributionError, match=r"q must sum to 1 along its last axis, but a row sums to 0\.5"):
        std.acceptance(P, Q)
    Q[1] *= 2.0
    with pytest.raises(DistributionError, match=r"^p has negative or non-finite entries"):
        std.acceptance(P, Q)


@pytest.mark.parametrize("shape, n", [((300,), None), ((5000,), None), ((5000,), 9), ((700,), 9), ((20, 1000), None),
                                      ((3, 20_000), None)])
@pytest.mark.parametrize("checked", [False, True])
def test_acceptance_from_the_step_is_the_closed_form_and_leaves_the_sample_alone(shape, n, checked):
    rng = np.random.default_rng(5)
    p, q = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1] or None), rng.dirichlet(np.ones(shape[-1]),
                                                                                     size=shape[:-1] or None)
    step = std.sample if checked else core.sample_step
    run = lambda g, **kw: step(g, p, q, n, **kw)  # noqa: E731
    with_alpha, without = run(np.random.default_rng(1), acceptance=True), run(np.random.default_rng(1))
    assert without.acceptance is None
    want = np.minimum(p, q).sum(axis=-1)
    assert np.shape(with_alpha.acceptance) == np.shape(want)
    assert np.allclose(with_alpha.acceptance, want, rtol=0, atol=1e-15)
    for f in ("proposal", "accepted", "emitted"):
        assert np.array_equal(getattr(with_alpha, f), getattr(without, f))


def test_batched_acceptance_is_the_row_formula():
    P = np.random.default_rng(1).dirichlet(np.ones(20_000), size=9)
    Q = np.random.default_rng(2).dirichlet(np.ones(20_000), size=9)
    want = np.array([np.minimum(P[i], Q[i]).sum() for i in range(9)])
    assert np.allclose(std.acceptance(P, Q), want, rtol=0, atol=1e-15)
    assert np.allclose(core.acceptance(P, Q), want, rtol=0, atol=1e-15)


# ---- statistical: every path emits p ----------------------------------------------------------------


def sparse_pair(v: int, seed: int, k: int = 12):
    """``p``, ``r`` over ``v`` tokens supported on ``k`` tokens spread over the blocks (the last one too)."""
    rng = np.random.default_rng(seed)
    support = np.unique(np.concatenate([rng.choice(v - 1, k - 1, replace=False), [v - 1]]))
    p, r = np.zeros(v), np.zeros(v)
    p[support] = rng.dirichlet(np.ones(support.size))
    r[support] = rng.dirichlet(np.ones(support.size))
    r[support[0]] = 0.0  # a token the proposal never offers: only the residual reaches it
    r /= r.sum()
    return p, r, support


def emitted(path: str, rng, p, r, n: int) -> tuple[np.ndarray, np.ndarray]:
    if path == "one":
        out = [std.sample(rng, p, r) for _ in range(n)]
        return np.concatenate([s.emitted for s in out]), np.concatenate([s.accepted for s in out])
    if path == "n-small":  # few draws per call: the block search serves each one
        out = [core.sample_step(rng, p, r, 5) for _ in range(n // 5)]
        return np.concatenate([s.emitted for s in out]), np.concatenate([s.accepted for s in out])
    if path == "n-large":
        s = std.sample(rng, p, r, n)
        return s.emitted, s.accepted
    m = 200
    out = [std.sample(rng, np.tile(p, (m, 1)), np.tile(r, (m, 1))) for _ in range(n // m)]
    return np.concatenate([s.emitted for s in out]), np.concatenate([s.accepted for s in out])


def chi2_pvalue(y: np.ndarray, p: np.ndarray, support: np.ndarray) -> float:
    counts = np.bincount(y, minlength=p.size)
    assert counts[np.setdiff1d(np.arange(p.size), support)].sum() == 0, "emitted a token of probability 0"
    return float(stats.chisquare(counts[support], p[support] * y.size).pvalue)


@pytest.mark.parametrize("path, v, n", [("one", 2000, 10_000), ("one", 50_000, 3000), ("n-small", 2000, 10_000),
                                        ("n-large", 2000, 20_000), ("rows", 2000, 10_000), ("rows", 20_000, 3000),
                                        ("rows", 500, 10_000)])
def test_every_path_emits_p(path, v, n):
    p, r, support = sparse_pair(v, seed=v)
    y, acc = emitted(path, np.random.default_rng(11), p, r, n)
    assert chi2_pvalue(y, p, support) > ALPHA
    alpha = float(np.minimum(p, r).sum())
    assert abs(acc.mean() - alpha) <= 5 * np.sqrt(alpha * (1 - alpha) / acc.size)


def test_the_statistical_check_rejects_a_lossy_step():
    """Emitting the proposal always (no rejection) is off by TV(p, r); the same test must say so."""
    p, r, support = sparse_pair(2000, seed=2000)
    lam = 20_000 * float(((r - p)[support] ** 2 / p[support]).sum())
    dof = support.size - 1
    power = stats.ncx2.sf(stats.chi2.isf(ALPHA, dof), dof, lam)
    assert power >= 0.999
    s = core.sample_step(np.random.default_rng(11), p, r, 20_000, accept_ratio=lambda px, rx: np.ones_like(px))
    counts = np.bincount(s.emitted, minlength=p.size)
    assert stats.chisquare(counts[support], p[support] * 20_000).pvalue < ALPHA
