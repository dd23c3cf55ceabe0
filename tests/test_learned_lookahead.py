"""Signals on synthetic processes (ConfidenceSignal) and the learned stop rules (DISCO, SpecDec++)."""

from __future__ import annotations

import numpy as np
import pytest

from simspec import (
    AdaptiveConfidenceLookahead,
    ConfidenceLookahead,
    ConstantLatency,
    HeuristicLookahead,
    IIDAcceptance,
    MarkovAcceptance,
    OracleLookahead,
    Scenario,
    StaticLookahead,
    TraceAcceptance,
    simulate,
)
from simspec.errors import InvalidParameterError
from simspec.learned_lookahead import (
    AcceptanceClassifier,
    DiscoLookahead,
    SpecDecPPLookahead,
    round_samples,
    tune_threshold,
)
from simspec.lookahead import RoundView
from simspec.montecarlo.si import si_run
from simspec.signals import ConfidenceSignal, beta_from_moments
from simspec.traces import RecordedLookahead

T, D = ConstantLatency(30.0), ConstantLatency(3.0)


def _known(w: float, b: float) -> AcceptanceClassifier:
    """q = sigmoid(w·top1_prob + b): a classifier whose predictions are known by hand."""
    return AcceptanceClassifier(("top1_prob",), (w,), b, (0.0,), (1.0,))


# -- ConfidenceSignal ------------------------------------------------------------------------------------------


def test_confidence_signal_keeps_the_outcomes_and_draws_the_stated_law():
    proc = ConfidenceSignal(MarkovAcceptance.from_mean(0.7, 0.8), (4.0, 1.0), (2.0, 3.0))
    d = proc.draw(np.random.default_rng(3), 2000, 20)
    bare = MarkovAcceptance.from_mean(0.7, 0.8).draw(np.random.default_rng(3), 2000, 20)
    assert np.array_equal(d.accepted, bare.accepted)  # common random numbers with the bare process
    assert set(d.signals) == {"alpha", "easy", "top1_prob"} and proc.mean == pytest.approx(0.7)
    x, a = d.signals["top1_prob"], d.accepted
    for sel, (pa, pb) in ((a, (4.0, 1.0)), (~a, (2.0, 3.0))):
        mean, var = pa / (pa + pb), pa * pb / ((pa + pb) ** 2 * (pa + pb + 1))
        se = np.sqrt(var / sel.sum())
        assert abs(x[sel].mean() - mean) < 5 * se  # within 5 standard errors (fixed seed)


def test_fit_recovers_the_law_of_a_recorded_trace():
    truth = ConfidenceSignal(IIDAcceptance(0.75), (3.0, 1.0), (1.5, 2.0))
    d = truth.draw(np.random.default_rng(0), 4000, 25)
    rec = TraceAcceptance(tuple(tuple(bool(v) for v in row) for row in d.accepted),
                          signals={"top1_prob": tuple(d.signals["top1_prob"])})
    fitted = ConfidenceSignal.fit(IIDAcceptance(0.75), rec)
    assert fitted.accepted_beta == pytest.approx((3.0, 1.0), rel=0.08)
    assert fitted.rejected_beta == pytest.approx((1.5, 2.0), rel=0.08)
    # calibration: P(accept | x) from Bayes, increasing in x, and its average is the acceptance rate
    xs = np.linspace(0.05, 0.95, 10)
    cal = truth.calibration(xs)
    assert np.all(np.diff(cal) > 0)
    x, a = d.signals["top1_prob"].ravel(), d.accepted.ravel()
    assert truth.calibration(x).mean() == pytest.approx(a.mean(), abs=0.01)


def test_bad_signal_parameters_are_named():
    with pytest.raises(InvalidParameterError, match="accepted_beta must be Beta parameters"):
        ConfidenceSignal(IIDAcceptance(0.5), (0.0, 1.0))
    with pytest.raises(InvalidParameterError, match="must be an acceptance process"):
        ConfidenceSignal(0.5)
    with pytest.raises(InvalidParameterError, match="no 'top1_prob' signal"):
        ConfidenceSignal.fit(IIDAcceptance(0.5), TraceAcceptance(((True, False),)))
    with pytest.raises(InvalidParameterError, match="no Beta law"):
        beta_from_moments(0.5, 0.3)


# -- the classifier ----------------------------------------------------------------------------------------------


def test_round_samples_are_the_verified_drafts_of_static_rounds():
    acc = np.array([[1, 0, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    r, p, j = round_samples(acc, 2)
    got = sorted(zip(r.tolist(), p.tolist(), j.tolist()))
    # row 0: round [0,1] rejects at 1 -> next round [2,3] all in, bonus 4 -> round [5] rejects
    # row 1: rounds [0,1] (+bonus 2), [3,4] (+bonus 5)
    assert got == [(0, 0, 0), (0, 1, 1), (0, 2, 0), (0, 3, 1), (0, 5, 0), (1, 0, 0), (1, 1, 1), (1, 3, 0), (1, 4, 1)]


def test_classifier_is_calibrated_on_held_out_rounds():
    proc = ConfidenceSignal(IIDAcceptance(0.7))
    train = proc.draw(np.random.default_rng(1), 400, 200)
    test = proc.draw(np.random.default_rng(2), 400, 200)
    clf = AcceptanceClassifier.fit(train.accepted, train.signals, features=("top1_prob",), round_k=4)
    assert clf.weights[0] > 0 and clf.samples > 10_000
    r, p, j = round_samples(test.accepted, 4)
    q = clf.predict(test.signals, j, r, p)
    y = test.accepted[r, p]
    checked = 0
    for lo, hi in ((0.0, 0.4), (0.4, 0.7), (0.7, 0.9), (0.9, 1.0)):
        sel = (q >= lo) & (q < hi)
        if sel.sum() > 200:
            assert abs(q[sel].mean() - y[sel].mean()) < 0.03  # fixed seeds; ~4 standard errors at 200 drafts
            checked += 1
    assert checked >= 3
    with pytest.raises(InvalidParameterError, match="neither 'position' nor a signal"):
        AcceptanceClassifier.fit(train.accepted, train.signals, features=("entropy",))


# -- the stop rules by hand --------------------------------------------------------------------------------------


def _view(sig):
    sig = np.asarray(sig, dtype=float)
    n = sig.shape[1]
    return RoundView(np.zeros(len(sig), dtype=np.int64), np.full(len(sig), n), np.arange(len(sig)),
                     {"top1_prob": sig}, np.zeros(sig.shape, dtype=np.int64))


def test_disco_stops_after_the_first_draft_predicted_rejected():
    clf = _known(10.0, -5.0)  # q = sigmoid(10x - 5): q < 0.5 exactly when x < 0.5
    pol = DiscoLookahead(clf, 0.5, 6).start(3)
    k = pol.propose(_view([[0.9, 0.8, 0.3, 0.9, 0.9, 0.9, 0.9],
                           [0.9] * 7,
                           [0.2, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]]))
    assert k.tolist() == [3, 6, 1]


def test_specdec_stops_when_a_rejection_in_the_round_is_likely():
    clf = _known(0.0, np.log(0.9 / 0.1))  # q = 0.9 for every draft: P(some rejection in j+1 drafts) = 1 - 0.9^(j+1)
    for theta, k in ((0.05, 1), (0.15, 2), (0.3, 4), (0.5, 7), (0.99, 10)):
        # 1 - 0.9^j > theta first at j = ceil(log(1 - theta) / log 0.9)
        assert SpecDecPPLookahead(clf, theta, 10).start(1).propose(_view([[0.5] * 12])).tolist() == [k]
        assert k == min(10, int(np.ceil(np.log(1 - theta) / np.log(0.9) - 1e-12)))


def test_no_policy_but_the_oracle_reads_the_outcomes():
    """Two views that differ only in the future outcomes (next_rejection) get the same proposals."""
    rng = np.random.default_rng(0)
    sig = rng.random((5, 30))
    clf = _known(4.0, -1.0)
    views = [RoundView(np.array([0, 3, 7, 11, 20]), np.full(5, 10), np.arange(5),
                       {"top1_prob": sig, "recorded_lookahead": np.full((5, 30), 3.0)},
                       rng.integers(0, 30, size=(5, 30))) for _ in range(2)]
    assert not np.array_equal(views[0].next_rejection, views[1].next_rejection)
    for policy in (StaticLookahead(4), HeuristicLookahead(), ConfidenceLookahead(0.5), DiscoLookahead(clf, 0.6),
                   SpecDecPPLookahead(clf, 0.5), RecordedLookahead()):
        a, b = (policy.start(5).propose(v) for v in views)
        assert np.array_equal(a, b), policy.name
    a, b = (OracleLookahead().start(5).propose(v) for v in views)
    assert not np.array_equal(a, b)


# -- in the engines --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bursty():
    proc = ConfidenceSignal(MarkovAcceptance.from_mean(0.8, 0.9))
    train = proc.draw(np.random.default_rng(11), 200, 300)
    test = proc.draw(np.random.default_rng(12), 200, 300)
    clf = AcceptanceClassifier.fit(train.accepted, train.signals, round_k=5)
    return proc, train, test, clf


def test_learned_rules_beat_the_best_static_lookahead_on_bursty_acceptance_and_the_oracle_beats_them(bursty):
    _, train, test, clf = bursty
    tuned = {
        "disco": DiscoLookahead(clf, tune_threshold(lambda t: DiscoLookahead(clf, t), train.accepted, train.signals,
                                                    T, D)[0]),
        "specdec": SpecDecPPLookahead(clf, tune_threshold(lambda t: SpecDecPPLookahead(clf, t), train.accepted,
                                                          train.signals, T, D)[0]),
        "confidence": ConfidenceLookahead(tune_threshold(lambda t: ConfidenceLookahead(t), train.accepted,
                                                         train.signals, T, D)[0]),
    }
    ms = {name: si_run(test.accepted, pol, T, D, 0, test.signals)["decode_ms"].mean() for name, pol in tuned.items()}
    static = min(si_run(test.accepted, StaticLookahead(k), T, D)["decode_ms"].mean() for k in range(1, 13))
    oracle = si_run(test.accepted, OracleLookahead(), T, D)["decode_ms"].mean()
    # DISCO's shape: about 10% over the best static k (here on held-out rows of a bursty process)
    assert all(v < 0.95 * static for v in ms.values()), (ms, static)
    assert oracle <= min(ms.values())
    # every policy emits exactly the tokens asked for: accepted drafts + one target token per round
    for pol in tuned.values():
        res = si_run(test.accepted, pol, T, D, 0, test.signals)
        assert np.array_equal(res["accepted_drafts"] + res["rounds"], np.full(300, 200))


@pytest.mark.parametrize("which", ["disco", "specdec"])
def test_monte_carlo_and_discrete_event_agree_run_by_run(bursty, which):
    _, _, test, clf = bursty
    policy = DiscoLookahead(clf, 0.6) if which == "disco" else SpecDecPPLookahead(clf, 0.6)
    rows = 4
    acc = TraceAcceptance(tuple(tuple(bool(v) for v in row) for row in test.accepted[:rows]),
                          signals={"top1_prob": tuple(test.signals["top1_prob"][:rows])})
    s = Scenario(T, D, acc, lookahead=policy, tokens=200)
    des = simulate(s, "si", replications=6, rng=0)
    mc = si_run(test.accepted[:rows], policy, T, D, 0, {"top1_prob": test.signals["top1_prob"][:rows]})
    picked = [-1 - run.unit for run in des.runs]
    assert len(set(picked)) > 1
    for run, row in zip(des.runs, picked):
        assert run.target_forwards == mc["rounds"][row] and run.drafter_forwards == mc["drafter_forwards"][row]
        assert run.decode_ms == pytest.approx(mc["decode_ms"][row])


def test_bad_learned_policies_are_named(bursty):
    clf = bursty[3]
    with pytest.raises(InvalidParameterError, match="must be an AcceptanceClassifier"):
        DiscoLookahead("clf")
    with pytest.raises(InvalidParameterError, match="threshold must be in"):
        SpecDecPPLookahead(clf, 1.5)
    with pytest.raises(InvalidParameterError, match="the classifier reads the 'top1_prob' signal"):
        si_run(np.ones((2, 10), dtype=bool), DiscoLookahead(clf), T, D)


@pytest.mark.parametrize("which", ["static", "heuristic", "confidence", "adaptive", "disco", "specdec", "oracle"])
def test_every_policy_agrees_between_the_monte_carlo_and_the_discrete_event_engine(bursty, which):
    _, _, test, clf = bursty
    policy = {"static": StaticLookahead(4), "heuristic": HeuristicLookahead(3, 12),
              "confidence": ConfidenceLookahead(0.5, 12), "adaptive": AdaptiveConfidenceLookahead(0.4, 12),
              "disco": DiscoLookahead(clf, 0.6, 12), "specdec": SpecDecPPLookahead(clf, 0.6, 12),
              "oracle": OracleLookahead()}[which]
    rows = 5
    sig = {"top1_prob": test.signals["top1_prob"][:rows]}
    acc = TraceAcceptance(tuple(tuple(bool(v) for v in row) for row in test.accepted[:rows]),
                          signals={"top1_prob": tuple(sig["top1_prob"])})
    des = simulate(Scenario(T, D, acc, lookahead=policy, tokens=200), "si", replications=8, rng=1)
    mc = si_run(test.accepted[:rows], policy, T, D, 0, sig)
    for run in des.runs:
        row = -1 - run.unit
        assert (run.target_forwards, run.drafter_forwards) == (mc["rounds"][row], mc["drafter_forwards"][row])
        assert run.decode_ms == pytest.approx(mc["decode_ms"][row], rel=1e-12)
