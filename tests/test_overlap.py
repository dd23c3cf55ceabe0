"""PEARL and the asynchronous pipeline in the discrete-event engine: hand-computed runs, closed form, losslessness."""

from __future__ import annotations

import numpy as np
import pytest

from simspec import (ConstantLatency, IIDAcceptance, InvalidParameterError, Overheads, Scenario, StochasticLatency,
                     simulate, theory)
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
    with pytest.raises(UnsupportedScenarioError, match="static lookahead"):
        from simspec import ConfidenceLookahead
        simulate(s.replace(lookahead=ConfidenceLookahead(0.5)), "pearl", replications=1)


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


# -- overheads -----------------------------------------------------------------------------------------------------

#: One kind at a time, then all together (binary fractions: the sums are exact).
KINDS = {
    "message": Overheads(message_ms=1.0),
    "startup": Overheads(startup_ms=2.0),
    "per_round": Overheads(per_round_ms=0.5),
    "per_emitted_token": Overheads(per_emitted_token_ms=0.5),
    "per_draft": Overheads(per_draft_token_ms=0.25, per_drafter_forward_ms=0.75),
    "sync": Overheads(sync_ms=5.0),
    "all": Overheads(message_ms=1.0, startup_ms=2.0, per_round_ms=0.5, per_emitted_token_ms=0.25,
                     per_draft_token_ms=0.25, per_drafter_forward_ms=0.75, sync_ms=5.0),
}


@pytest.mark.parametrize("kind, all_accepted, all_rejected, mixed", [
    ("message", 48.0, 96.0, 60.0),
    ("startup", 48.0, 96.0, 60.0),
    ("per_round", 42.0, 84.0, 52.5),
    ("per_emitted_token", 44.0, 84.0, 54.0),
    ("per_draft", 44.0, 92.0, 58.0),
    ("sync", 40.0, 101.0, 54.0),
    ("all", 60.0, 129.25, 76.75),
])
def test_pearl_overheads_by_hand(kind, all_accepted, all_rejected, mixed):
    """PEARL, gamma = 3, T = 10, d = 3, S = 8: a round takes max(target path, drafter path) with
    target path = 2·msg + startup + 10 + per_round + tokens·per_emit and
    drafter path = [sync after a rejection] + drafts·(3 + per_draft_token + per_drafter_forward).

    Rounds (drafts, tokens): all accepted: pre@0 (3, 1), post w=2 (3, 2), post w=3 (2, 3), post w=2 (0, 2);
    all rejected: 8 pre-verify rounds of one token, drafting 3, 3, 3, 3, 3, 3, 2, 1, rounds 2..8 after a
    rejection; mixed [1, 0, 1, 1, 1, 1, 1, 1]: pre@0 (3, 1), post w=2 rejects at n = 0 (3, 1), pre@2 after
    the rejection (3, 1), post w=2 (3, 2), post w=3 (0, 3).

    * message 1 (or startup 2): every round's target path is 12 > 9: 4·12 = 48, 8·12 = 96, 5·12 = 60;
    * per_round 0.5: 10.5 a round: 42, 84, 52.5;
    * per_emitted_token 0.5: 10 a round + 0.5 per token (S = 8 tokens in all): 40 + 4, 80 + 4, 50 + 4;
    * per_draft 0.25 + 0.75 (a draft 4): drafter paths 12, 12, 8, 0 → 12 + 12 + 10 + 10 = 44;
      12·6 + max(10, 8) + max(10, 4) = 92; 12·4 + 10 = 58;
    * sync 5: no rejection: 40; rounds 2..6 drafter 5 + 9 = 14, round 7 5 + 6 = 11, round 8 5 + 3 = 8:
      10 + 5·14 + 11 + 10 = 101; mixed: only pre@2 syncs (5 + 9 = 14): 4·10 + 14 = 54;
    * all (msg 1, startup 2, per_round 0.5, per_emit 0.25, per_draft 1, sync 5): target path 14.5 + 0.25·tokens,
      drafter path [5 +] 4·drafts. All accepted: 14.75 + 15 + 15.25 + 15 = 60 (drafter 12, 12, 8, 0);
      all rejected: 14.75, then 5 + 12 = 17 five times, then 14.75 (vs 13) and 14.75 (vs 9): 129.25;
      mixed: 14.75 + 14.75 + 17 + 15 + 15.25 = 76.75.
    """
    s = _scenario(8, 3).replace(overheads=KINDS[kind])
    assert run_once(s, "pearl", np.ones(8, bool)).latency_ms == pytest.approx(all_accepted, abs=1e-12)
    assert run_once(s, "pearl", np.zeros(8, bool)).latency_ms == pytest.approx(all_rejected, abs=1e-12)
    acc = np.array([1, 0, 1, 1, 1, 1, 1, 1], bool)
    assert run_once(s, "pearl", acc).latency_ms == pytest.approx(mixed, abs=1e-12)


@pytest.mark.parametrize("kind, all_accepted, all_rejected", [
    ("message", 39.0, 57.0),
    ("startup", 39.0, 57.0),
    ("per_round", 34.5, 51.0),
    ("per_emitted_token", 35.0, 51.0),
    ("per_draft", 34.0, 52.0),
    ("sync", 33.0, 59.0),
    ("all", 48.5, 81.0),
])
def test_pipeline_overheads_by_hand(kind, all_accepted, all_rejected):
    """Pipeline, T = 10, d = 3, S = 4, cap 50; a verification of m drafts takes
    2·msg + startup + 10 + per_round + tokens·per_emit from its dispatch to its effect, a draft 3 + per_draft.

    No overheads: all accepted, drafts end at 3, 6, 9; verifications of 1 draft [3, 13], 2 drafts [13, 23], the
    last position [23, 33] (tokens 1, 2, 1); all rejected: (draft 3 + verification 10) for positions 0..2, the
    last position 10: 49.

    * message 1 (or startup 2): three verifications 2 longer, drafts never waited for: 33 + 6 = 39; all
      rejected: 3·3 + 4·12 = 57;
    * per_round 0.5: 33 + 3·0.5 = 34.5; 3·3 + 4·10.5 = 51;
    * per_emitted_token 0.5 (4 tokens in all): 33 + 2 = 35; 49 + 2 = 51;
    * per_draft 1 (drafts end at 4, 8, 12 < 14): 4 + 3·10 = 34; all rejected 3·4 + 4·10 = 52;
    * sync 5: no rejection: 33; after the rejections at 0 and 1 the drafter resumes 5 later (after the one at
      2 nothing is left to draft): 3·3 + 2·5 + 4·10 = 59;
    * all (msg 1, startup 2, per_round 0.5, per_emit 0.25, per_draft 1, sync 5): all accepted, the first draft
      at 4, then 4 + 1 + 12 + 1 + 0.75 = 18.75 (drafts at 8 and 12 ready), + 14 + 1 = 33.75, + 14.75 = 48.5;
      all rejected: 3·4 + 2·5 + 4·(14 + 0.75) = 81.
    """
    s = _scenario(4, 50).replace(overheads=KINDS[kind])
    assert run_once(s, "pipeline", np.ones(4, bool)).latency_ms == pytest.approx(all_accepted, abs=1e-12)
    assert run_once(s, "pipeline", np.zeros(4, bool)).latency_ms == pytest.approx(all_rejected, abs=1e-12)


def test_pipeline_rejection_abandons_the_draft_in_flight_and_syncs():
    """T = 10, d = 3, S = 6, all rejected, per_draft 1, sync 2: the drafter's draft in flight when a rejection
    takes effect is abandoned (busy: its forward's part only), and it drafts again 2 later.

    Position 0: draft [0, 4], verification [4, 14]; the drafter drafts 1 [4, 8], 2 [8, 12], 3 [12, 16]: at 14,
    2 ms into draft 3's forward, it is abandoned; sync [14, 16], draft 1 [16, 20], verification [20, 30], ...
    each later position 2 + 4 + 10 = 16: 14 + 4·16 + 10 (the last position, nothing to draft) = 88.
    Drafter busy: epochs from a confirmed prefix of 0..4 finish drafts 0-2, 1-3, 2-4, 3-4, 4 (12 drafts, 3 ms
    each) and abandon one 2 ms into its forward in the first two (at 14 and at 30): 36 + 4 = 40.
    """
    s = _scenario(6, 50).replace(overheads=Overheads(per_draft_token_ms=1.0, sync_ms=2.0))
    rec = run_once(s, "pipeline", np.zeros(6, bool))
    assert rec.latency_ms == pytest.approx(88.0)
    assert rec.rejections == 5 and rec.target_forwards == 6
    assert rec.drafter_forwards == 12 and rec.drafter_busy_ms == pytest.approx(40.0)


def test_pearl_overheads_per_round_when_the_target_is_slower():
    """When the target path is the longer in every round (T = 30, 4 drafts of 3 + 1), the overheads on it add
    exactly 2·msg + startup + per_round per round and per_emit per token, run by run; the closed form is the
    limit without overheads (``theory.pearl_latency_per_token`` takes none: the engine is the reference)."""
    s = Scenario(ConstantLatency(30.0), ConstantLatency(3.0), IIDAcceptance(0.7), lookahead=4, tokens=300)
    ov = Overheads(message_ms=0.5, startup_ms=1.5, per_round_ms=0.25, per_emitted_token_ms=0.125,
                   per_draft_token_ms=0.5, per_drafter_forward_ms=0.5)
    rng = np.random.default_rng(4)
    for _ in range(5):
        acc = rng.random(300) < 0.7
        base = run_once(s, "pearl", acc)
        rec = run_once(s, "pearl", acc, overheads=ov)
        assert rec.target_forwards == base.target_forwards and rec.rejections == base.rejections
        extra = base.target_forwards * (2 * 0.5 + 1.5 + 0.25) + 300 * 0.125
        assert rec.latency_ms == pytest.approx(base.latency_ms + extra, rel=1e-12)
        assert rec.target_busy_ms == pytest.approx(base.target_busy_ms + base.target_forwards * 1.5, rel=1e-12)
        assert rec.drafter_busy_ms == base.drafter_busy_ms  # the loop overheads are not busy time


@pytest.mark.parametrize("algorithm", ["pearl", "pipeline"])
def test_overheads_run_in_simulate_and_zero_changes_nothing(algorithm):
    """simulate runs both with overheads (recorded in the options); explicit zero overheads are the default, run
    by run, also with stochastic latencies (the random streams are drawn in the same order)."""
    s = Scenario(StochasticLatency(ConstantLatency(30.0), cv=0.3), StochasticLatency(ConstantLatency(3.0), cv=0.3),
                 IIDAcceptance(0.8), lookahead=5, tokens=300)
    plain = simulate(s, algorithm, replications=3, rng=5)
    assert simulate(s, algorithm, replications=3, rng=5, overheads=Overheads()).runs == plain.runs
    ov = Overheads(message_ms=1.0, sync_ms=2.0, per_round_ms=0.5)
    res = simulate(s, algorithm, replications=3, rng=5, overheads=ov)
    assert res.options["message_ms"] == 1.0 and res.options["sync_ms"] == 2.0
    assert res.latency_ms.mean > plain.latency_ms.mean
