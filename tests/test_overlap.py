"""PEARL and the asynchronous pipeline in the discrete-event engine: hand-computed runs, closed form, losslessness."""

from __future__ import annotations

import numpy as np
import pytest

from simspec import ConstantLatency, IIDAcceptance, InvalidParameterError, Scenario, simulate, theory
from simspec.des.runner import run_once
from simspec.errors import UnsupportedScenarioError


def _scenario(S, k, target=10.0, drafter=3.0):
    return Scenario(ConstantLatency(target), ConstantLatency(drafter), IIDAcceptance(0.5), lookahead=k, tokens=S)


def test_pipeline_all_accepted_by_hand():
    """T = 10, d = 3, S = 10, all accepted: verifications of 1, 3, 3, 2 drafts, then the last position: 53 ms."""
    rec = run_once(_scenario(10, 50), "pipeline", np.ones(10, bool))
    assert rec.latency_ms == pytest.approx(53.0)
    assert rec.target_forwards == 5


def test_pipeline_all_rejected_by_hand():
    """All rejected: each of positions 0..8 costs a draft then a verification (13 ms), the last a decode: 127 ms."""
    rec = run_once(_scenario(10, 50), "pipeline", np.zeros(10, bool))
    assert rec.latency_ms == pytest.approx(9 * 13.0 + 10.0)
    assert rec.rejections == 9


def test_pearl_by_hand():
    """gamma = 3, T = 10, d = 3 (drafting 9 < 10): every round takes 10 ms.

    All accepted, S = 8: pre (1 token) -> post of 2 (2) -> post of 3 (3) -> post of 2 left (2) = 4 rounds.
    All rejected: 8 pre-verify rounds of one token each.
    """
    assert run_once(_scenario(8, 3), "pearl", np.ones(8, bool)).latency_ms == pytest.approx(40.0)
    assert run_once(_scenario(8, 3), "pearl", np.zeros(8, bool)).latency_ms == pytest.approx(80.0)
    # first draft accepted, then a rejection at the second draft of the window: pre (1), post rejects at n=0 (1),
    # then pre again ...
    acc = np.array([1, 0, 1, 1, 1, 1, 1, 1], bool)
    rec = run_once(_scenario(8, 3), "pearl", acc)
    # rounds: pre@0 (x0 ok) -> post w=2 @1 (n=0: 1 token) -> pre@2 (ok) -> post w=2 @3 (2) -> post w=3 @5 (3) = 5
    assert rec.latency_ms == pytest.approx(50.0)


@pytest.mark.parametrize("a, c, gamma, slope", [(0.8, 0.1, 10, 0.0), (0.6, 0.25, 4, 0.0), (0.9, 0.2, 5, 0.05)])
def test_pearl_closed_form_matches_the_discrete_event_engine(a, c, gamma, slope):
    """Long runs (S = 10,000, 6 replications): the DES mean per token within 2% of the closed form."""
    from simspec import AffineLatency
    s = Scenario(AffineLatency(30.0, 30.0 * slope), ConstantLatency(30.0 * c), IIDAcceptance(a), lookahead=gamma,
                 tokens=10_000)
    res = simulate(s, "pearl", replications=6, rng=2)
    expected = theory.pearl_latency_per_token(a, c, gamma, slope) * 30.0
    assert res.latency_per_token_ms.mean == pytest.approx(expected, rel=0.02)


def test_pearl_default_window_and_limits():
    s = Scenario(ConstantLatency(30.0), ConstantLatency(3.0), IIDAcceptance(0.8), tokens=500)
    res = simulate(s, "pearl", replications=2, rng=0)
    assert res.lookahead == 10 and "max(2, round(T/d))" in res.notes
    assert theory.pearl_latency_per_token(1.0, 0.1, 10) == pytest.approx(1.0 / 10)   # gamma tokens per forward
    with pytest.raises(InvalidParameterError, match="at least 2"):
        theory.pearl_latency_per_token(0.8, 0.1, 1)
    with pytest.raises(UnsupportedScenarioError, match="overheads"):
        from simspec import Overheads
        run_once(s.replace(lookahead=4, overheads=Overheads(message_ms=1.0)), "pearl", np.ones(500, bool))


@pytest.mark.parametrize("algorithm", ["pearl", "pipeline"])
def test_acceptance_never_hurts(algorithm):
    """For any outcomes, a run takes at least the all-accepted run's time and at most the all-rejected run's."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        S = int(rng.integers(2, 60))
        acc = rng.random(S) < rng.random()
        t = run_once(_scenario(S, 4), algorithm, acc).latency_ms
        best = run_once(_scenario(S, 4), algorithm, np.ones(S, bool)).latency_ms
        worst = run_once(_scenario(S, 4), algorithm, np.zeros(S, bool)).latency_ms
        assert best - 1e-9 <= t <= worst + 1e-9, (S, acc.astype(int).tolist())
