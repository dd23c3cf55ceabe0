"""Invariants over hypothesis-generated scenarios (paired outcomes, same A for every algorithm)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from simspec import ConstantLatency, StaticLookahead, theory
from simspec.montecarlo.dsi import dsi_run
from simspec.montecarlo.positions import epoch_lengths, next_rejection
from simspec.montecarlo.si import si_run

T = ConstantLatency(1.0)


@st.composite
def runs(draw):
    s = draw(st.integers(1, 120))
    reps = draw(st.integers(1, 4))
    a = draw(st.floats(0.0, 1.0))
    seed = draw(st.integers(0, 2**32 - 1))
    A = np.random.default_rng(seed).random((reps, s)) < a
    k = draw(st.integers(1, 12))
    c = draw(st.floats(0.01, 1.0))
    return A, k, c


@given(runs())
def test_tokens_are_conserved(run):
    A, k, c = run
    S = A.shape[1]
    si = si_run(A, StaticLookahead(k), T, ConstantLatency(c))
    assert np.array_equal(si["accepted_drafts"] + si["rounds"], np.full(A.shape[0], S))
    rows, r = epoch_lengths(A)
    assert np.array_equal(np.bincount(rows, weights=r, minlength=A.shape[0]), np.full(A.shape[0], S))
    # every epoch but a row's last ends at a rejection
    nz = next_rejection(A)
    assert nz.shape == A.shape and np.all((nz >= np.arange(S)) & (nz <= S))


@given(runs())
def test_si_speedup_at_most_k_plus_1_and_dsi_never_slower_than_nonsi(run):
    A, k, c = run
    S = A.shape[1]
    si = si_run(A, StaticLookahead(k), T, ConstantLatency(c))["decode_ms"]
    assert np.all(S / si <= k + 1 + 1e-9)
    dsi = dsi_run(A, k, T, ConstantLatency(c))["decode_ms"]
    assert np.all(dsi <= S + 1e-9)  # run by run, under the paper's assumptions (Theorem 1)
    assert np.all(dsi > 0)


@given(runs(), st.floats(0.01, 1.0))
def test_latency_monotone_in_c(run, c2):
    A, k, c = run
    lo, hi = sorted((c, c2))
    for fn in (
        lambda cc: si_run(A, StaticLookahead(k), T, ConstantLatency(cc))["decode_ms"],
        lambda cc: dsi_run(A, k, T, ConstantLatency(cc))["decode_ms"],
    ):
        assert np.all(fn(lo) <= fn(hi) + 1e-9)


@given(st.floats(0.0, 1.0), st.floats(0.001, 2.0), st.integers(1, 50))
def test_closed_forms_respect_their_bounds(a, c, k):
    si = theory.si_latency_per_token(a, c, k)
    assert 1.0 / (k + 1) - 1e-12 <= si <= k * c + 1 + 1e-12
    dsi = theory.dsi_latency_per_token(a, c, k)
    assert dsi <= 1.0 + 1e-12  # never slower than non-SI
    assert dsi <= theory.dsi_repo_latency_per_token(a, c, k) + 1e-9  # repo model is pessimistic


@given(st.floats(0.6, 0.9), st.floats(0.01, 0.2))
def test_oracle_beats_best_static_where_the_spec_says(a, c):
    # docs/model.md §6: under i.i.d. acceptance the oracle beats the best static k by 6-46% for
    # a in [0.6, 0.9], c in [0.01, 0.2] (for slow drafters, c near 1, it need not: it always drafts
    # up to the first rejection)
    _, best = theory.best_si_lookahead(a, c, k_max=200)
    gain = best / theory.oracle_latency_per_token(a, c) - 1
    assert 0.05 < gain < 0.47
