"""ConfidenceLookahead: transformers' confidence stop, round by round, in the Monte Carlo and the discrete-event engine."""

from __future__ import annotations

import numpy as np
import pytest

from simspec import ConfidenceLookahead, ConstantLatency, Scenario, TraceAcceptance, simulate
from simspec.assisted import assisted_rounds
from simspec.errors import InvalidParameterError
from simspec.lookahead import RoundView
from simspec.montecarlo.si import si_run


def _recorded(seed: int, lanes: int, positions: int):
    rng = np.random.default_rng(seed)
    prob = rng.beta(2.0, 1.2, size=(lanes, positions))
    # the drafter is right more often when it is confident: what makes the stop rule pay
    outcomes = rng.random((lanes, positions)) < 0.25 + 0.7 * prob
    return outcomes, prob


@pytest.mark.parametrize("threshold, k_max", [(0.4, 20), (0.7, 5), (0.0, 4), (1.0, 8)])
def test_rounds_are_transformers_rounds(threshold, k_max):
    """Per lane: the verification widths, drafts and rounds equal transformers' rule (assisted_rounds)."""
    from simspec.montecarlo.si import _loop_blocks

    outcomes, prob = _recorded(3, 12, 90)
    signals = {"top1_prob": prob}
    res = si_run(outcomes, ConfidenceLookahead(threshold, k_max), ConstantLatency(10.0), ConstantLatency(1.0),
                 signals=signals)
    loop = _loop_blocks(outcomes, ConfidenceLookahead(threshold, k_max), signals)
    for lane in range(outcomes.shape[0]):
        ref = assisted_rounds(outcomes[lane].astype(int).tolist(), prob[lane].tolist(), num_assistant_tokens=k_max,
                              confidence_threshold=threshold)
        assert res["rounds"][lane] == len(ref)
        assert res["drafter_forwards"][lane] == sum(r["drafted"] for r in ref)
        assert res["accepted_drafts"][lane] == sum(r["accepted"] for r in ref)
        mine = loop["width_lane"] == lane
        widths = dict(zip(loop["width"][mine].tolist(), loop["width_count"][mine].tolist()))
        ref_widths: dict[int, int] = {}
        for r in ref:
            ref_widths[r["drafted"] + 1] = ref_widths.get(r["drafted"] + 1, 0) + 1
        assert widths == ref_widths
    if 0 < threshold < 1:  # the rule bites: rounds of different lengths
        assert len(set(loop["width"].tolist())) > 2


def test_the_stop_token_is_verified_and_k_max_caps():
    policy = ConfidenceLookahead(0.5, 6).start(3)
    sig = np.array([[0.9, 0.9, 0.2, 0.9, 0.9, 0.9, 0.9, 0.9],   # stops after the 3rd draft (0.2 < 0.5), which is kept
                    [0.9] * 8,                                  # never below: k_max
                    [0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]])  # the first draft is already unsure: k = 1
    view = RoundView(np.zeros(3, dtype=np.int64), np.full(3, 8), np.arange(3), {"top1_prob": sig}, np.zeros((3, 8)))
    assert policy.propose(view).tolist() == [3, 6, 1]
    # later in the sequence it reads the positions it would draft; past the end it never stops early
    view = RoundView(np.array([3, 5, 7]), np.array([5, 3, 1]), np.arange(3), {"top1_prob": sig}, np.zeros((3, 8)))
    assert policy.propose(view).tolist() == [6, 6, 6]


def test_needs_its_signal_and_valid_parameters():
    view = RoundView(np.zeros(1, dtype=np.int64), np.full(1, 5), np.arange(1), {}, np.zeros((1, 5)))
    with pytest.raises(InvalidParameterError, match="'top1_prob' signal"):
        ConfidenceLookahead().start(1).propose(view)
    with pytest.raises(InvalidParameterError, match="threshold must be a probability"):
        ConfidenceLookahead(1.5)
    with pytest.raises(InvalidParameterError, match="k_max"):
        ConfidenceLookahead(0.4, 0)


def test_monte_carlo_and_discrete_event_agree_run_by_run():
    outcomes, prob = _recorded(5, 4, 60)
    acc = TraceAcceptance(tuple(tuple(bool(x) for x in row) for row in outcomes), signals={"top1_prob": tuple(prob)})
    policy = ConfidenceLookahead(0.4, 20)
    s = Scenario(ConstantLatency(10.0), ConstantLatency(1.0), acc, lookahead=policy, tokens=60)
    des = simulate(s, "si", replications=6, rng=0)
    mc = si_run(outcomes, policy, ConstantLatency(10.0), ConstantLatency(1.0), signals={"top1_prob": prob})
    rows = [-1 - run.unit for run in des.runs]  # a replayed trace's unit is -1 - its index
    assert set(rows) <= set(range(4)) and len(set(rows)) > 1
    for run, row in zip(des.runs, rows):
        ref = assisted_rounds(outcomes[row].astype(int).tolist(), prob[row].tolist(), num_assistant_tokens=20,
                              confidence_threshold=0.4)
        assert run.lookahead == "confidence θ=0.4 k_max=20"
        assert run.target_forwards == len(ref) == mc["rounds"][row]
        assert run.drafter_forwards == sum(r["drafted"] for r in ref) == mc["drafter_forwards"][row]
        assert run.decode_ms == pytest.approx(mc["decode_ms"][row])


def test_cli_policy_flag_builds_the_policy(capsys):
    import json

    from simspec.cli import main
    from simspec.traces import builtin_trace, builtin_trace_path

    assert main(["simulate", "--algorithm", "si", "--target-ms", "100", "--drafter-ms", "20", "--acceptance-trace",
                 builtin_trace_path("cpu-real-pair"), "--tokens", "64", "--policy", "confidence",
                 "--confidence-threshold", "0.5", "--lookahead", "8", "--replications", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lookahead"] == "confidence θ=0.5 k_max=8"
    s = Scenario(ConstantLatency(100.0), ConstantLatency(20.0), builtin_trace("cpu-real-pair"),
                 lookahead=ConfidenceLookahead(0.5, 8), tokens=64)
    ref = simulate(s, "si", replications=3, rng=0)
    assert out["latency_ms"] == ref.latency_ms.mean and out["target_forwards"] == ref.target_forwards.mean
    assert main(["compare", "--target-ms", "100", "--drafter-ms", "20", "--acceptance", "0.8", "--policy",
                 "heuristic", "--lookahead", "3", "--method", "montecarlo", "--tokens", "50", "--json",
                 "--replications", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["si"]["lookahead"] == "heuristic k0=3"
    assert main(["simulate", "--algorithm", "si", "--target-ms", "100", "--drafter-ms", "20", "--acceptance-trace",
                 builtin_trace_path("cpu-real-pair"), "--tokens", "64", "--policy", "adaptive", "--replications", "2",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lookahead"] == "adaptive confidence θ0=0.4 k_max=20"
    assert main(["compare", "--target-ms", "100", "--drafter-ms", "20", "--acceptance", "0.8", "--policy",
                 "confidence", "--confidence-threshold", "2"]) == 2
    assert "--confidence-threshold must be a probability" in capsys.readouterr().err


# -- the adaptive threshold -----------------------------------------------------------------------------------


def test_roc_threshold_by_hand():
    from simspec.lookahead import roc_threshold

    # ROC points (fpr, tpr) at thresholds inf, .9, .8, .7, .6, .2 (.3 lies on a straight stretch: dropped):
    # (0,0) (0,1/3) (0,2/3) (1/3,2/3) (1/3,1) (1,1); cost fpr + 3·fnr is lowest (1/3) at 0.6
    assert roc_threshold([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.3, 0.2]) == 0.6
    # perfectly separated: the lowest accepted probability
    assert roc_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]) == 0.7
    with pytest.raises(InvalidParameterError, match="at least one accepted"):
        roc_threshold([1, 1], [0.5, 0.6])


def test_roc_threshold_equals_scikit_learn():
    """Runs where scikit-learn is installed (transformers' adaptive threshold needs it; simspec does not)."""
    from simspec.lookahead import roc_threshold

    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(2, 40))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        p = np.round(rng.random(n), int(rng.integers(1, 3)))  # ties
        fpr, tpr, th = sklearn.roc_curve(y, p)
        assert roc_threshold(y, p) == th[np.argmin(fpr + 3 * (1 - tpr))]


def _transformers_adaptive(outcomes, prob, k_max, theta0):
    """transformers' confidence stop with its adaptive update, written out round by round (its bookkeeping)."""
    from simspec.lookahead import roc_threshold

    theta, probs, matches, rounds, g, n = theta0, [], [], [], 0, len(outcomes)
    while g < n:
        cap = min(k_max, n - g - 1)
        drafted = cap
        for j in range(cap):
            if prob[g + j] < theta:
                drafted = j + 1
                break
        ok = outcomes[g:g + drafted]
        accepted = drafted if all(ok) else ok.index(0)
        rounds.append((drafted, accepted, theta))
        if drafted:
            probs.extend(prob[g:g + drafted])          # _generate_candidates: every drafted token's probability
            matches.extend([1] * accepted)             # update_candidate_strategy
            if len(probs) > len(matches):
                matches.append(0)
            del probs[len(matches):]
            if len(probs) > 5 and {0, 1} <= set(matches):
                theta = roc_threshold(matches, probs)
        g += accepted + 1
    return rounds


def test_adaptive_threshold_follows_transformers_round_by_round():
    from simspec.lookahead import AdaptiveConfidenceLookahead
    from simspec.montecarlo.si import _loop_blocks

    outcomes, prob = _recorded(7, 6, 120)
    policy = AdaptiveConfidenceLookahead(0.4, 10)
    loop = _loop_blocks(outcomes, policy, {"top1_prob": prob})
    res = si_run(outcomes, policy, ConstantLatency(10.0), ConstantLatency(1.0), signals={"top1_prob": prob})
    changed = 0
    for lane in range(outcomes.shape[0]):
        ref = _transformers_adaptive(outcomes[lane].astype(int).tolist(), prob[lane].tolist(), 10, 0.4)
        changed += len({t for _, _, t in ref}) > 1
        assert res["rounds"][lane] == len(ref)
        assert res["drafter_forwards"][lane] == sum(d for d, _, _ in ref)
        mine = loop["width_lane"] == lane
        widths = dict(zip(loop["width"][mine].tolist(), loop["width_count"][mine].tolist()))
        ref_widths: dict[int, int] = {}
        for d, _, _ in ref:
            ref_widths[d + 1] = ref_widths.get(d + 1, 0) + 1
        assert widths == ref_widths
    assert changed == outcomes.shape[0]  # the threshold did move on every lane
    # with no adaptation (more samples needed than there are) it is the plain confidence stop
    frozen = si_run(outcomes, AdaptiveConfidenceLookahead(0.4, 10, min_samples=10**6), ConstantLatency(10.0),
                    ConstantLatency(1.0), signals={"top1_prob": prob})
    plain = si_run(outcomes, ConfidenceLookahead(0.4, 10), ConstantLatency(10.0), ConstantLatency(1.0),
                   signals={"top1_prob": prob})
    assert np.array_equal(frozen["decode_ms"], plain["decode_ms"])
