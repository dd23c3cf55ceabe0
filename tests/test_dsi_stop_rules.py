"""DSI with a stop rule: the rule sets each drafter block's lookahead (when a verification task is submitted)."""

from __future__ import annotations

import numpy as np
import pytest

from simspec import (
    AdaptiveConfidenceLookahead,
    ConfidenceLookahead,
    ConstantLatency,
    HeuristicLookahead,
    OracleLookahead,
    Scenario,
    TraceAcceptance,
    simulate,
)
from simspec.montecarlo.positions import next_rejection


def _scenario(outcomes, prob, lookahead, servers=None):
    acc = TraceAcceptance((tuple(bool(x) for x in outcomes),), signals={"top1_prob": (np.asarray(prob),)})
    return Scenario(ConstantLatency(30.0), ConstantLatency(3.0), acc, lookahead=lookahead, tokens=len(outcomes),
                    servers=servers)


def _blocks(events):
    return [tuple(e["positions"]) for e in events if e["event"] == "draft_start"]


def test_a_rule_that_always_proposes_k_is_static_k():
    rng = np.random.default_rng(0)
    outcomes = rng.random(150) < 0.8
    always = np.full(150, 0.9)  # never below the threshold: every block is k_max = 4 drafts
    for servers in (None, 3):
        rule = simulate(_scenario(outcomes, always, ConfidenceLookahead(0.5, 4), servers), "dsi", replications=1, rng=0)
        static = simulate(_scenario(outcomes, always, 4, servers), "dsi", replications=1, rng=0)
        a, b = rule.runs[0], static.runs[0]
        assert a.lookahead == "confidence θ=0.5 k_max=4" and b.lookahead == 4
        for field in ("latency_ms", "target_forwards", "target_forwards_wasted", "drafter_forwards", "target_busy_ms",
                      "rejections", "peak_servers_busy"):
            assert getattr(a, field) == getattr(b, field), field


def test_each_block_is_the_rule_s_proposal_at_its_start():
    rng = np.random.default_rng(1)
    outcomes = rng.random(120) < 0.75
    prob = rng.random(120)
    res = simulate(_scenario(outcomes, prob, ConfidenceLookahead(0.3, 6)), "dsi", replications=1, rng=0, trace=True)
    blocks = _blocks(res.events)
    assert len(blocks) > 10
    for p, last in blocks:
        low = np.flatnonzero(prob[p:p + 6] < 0.3)
        k = int(low[0]) + 1 if low.size else 6
        assert last - p + 1 == k  # the block drafts up to the first unsure token, inclusive, at most k_max


def test_the_oracle_s_blocks_end_at_the_next_rejection():
    rng = np.random.default_rng(2)
    outcomes = rng.random(200) < 0.8
    nxt = next_rejection(outcomes[None, :])[0]
    res = simulate(_scenario(outcomes, np.zeros(200), OracleLookahead()), "dsi", replications=1, rng=0, trace=True)
    blocks = _blocks(res.events)
    assert len(blocks) > 20 and all(last == nxt[p] for p, last in blocks if nxt[p] < 200)
    # SI's bound is no bound in DSI: a block's result comes after the whole block is drafted, and with
    # speculation parallelism smaller blocks verified side by side confirm tokens sooner
    fastest_static = min(simulate(_scenario(outcomes, np.zeros(200), k), "dsi", replications=1, rng=0).runs[0].latency_ms
                         for k in range(1, 9))
    assert res.runs[0].latency_ms > fastest_static


def test_a_schedule_learns_from_each_verification_in_position_order(monkeypatch):
    """The heuristic in DSI: every block's k is k0 plus the +2/−1 updates of the verifications applied before it."""
    from simspec.lookahead import _Heuristic

    rng = np.random.default_rng(5)
    outcomes = rng.random(250) < 0.8
    nxt = next_rejection(outcomes[None, :])[0]
    events = []
    propose, observe_task = _Heuristic.propose, _Heuristic.observe_task

    def logged_propose(self, view):
        k = propose(self, view)
        events.append(("block", int(view.position[0]), int(k[0])))
        return k

    def logged_observe(self, view, drafted, accepted):
        events.append(("verified", int(view.position[0]), drafted, accepted))
        return observe_task(self, view, drafted, accepted)

    monkeypatch.setattr(_Heuristic, "propose", logged_propose)
    monkeypatch.setattr(_Heuristic, "observe_task", logged_observe)
    res = simulate(_scenario(outcomes, np.ones(250), HeuristicLookahead(3, 12)), "dsi", replications=1, rng=0)
    assert res.runs[0].lookahead == "heuristic k0=3"
    k = 3
    verified = 0
    for event in events:
        if event[0] == "verified":
            _, p, drafted, accepted = event
            assert accepted == min(nxt[p] - p, drafted)  # the drafts accepted, from the outcomes
            k = min(k + 2, 12) if accepted == drafted else max(k - 1, 1)
            verified += 1
        else:
            assert event[2] == k
    assert verified > 20 and len({e[2] for e in events if e[0] == "block"}) > 3


def test_adaptive_threshold_runs_in_dsi_and_the_monte_carlo_says_how():
    from simspec import compare

    rng = np.random.default_rng(6)
    outcomes = rng.random(150) < 0.8
    s = _scenario(outcomes, rng.random(150), AdaptiveConfidenceLookahead(0.4, 10))
    res = simulate(s, "dsi", replications=2, rng=0)
    assert res.runs[0].lookahead == "adaptive confidence θ0=0.4 k_max=10"
    c = compare(s.replace(lookahead=HeuristicLookahead()), "montecarlo", replications=3, rng=0)
    assert c.dsi.lookahead == "heuristic k0=5" and "discrete-event engine" in c.dsi.notes


def test_servers_of_a_rule_without_a_count_are_the_peak():
    rng = np.random.default_rng(3)
    outcomes = rng.random(150) < 0.8
    res = simulate(_scenario(outcomes, rng.random(150), ConfidenceLookahead(0.3, 8)), "dsi", replications=3, rng=0)
    assert res.target_servers == max(r.peak_servers_busy for r in res.runs) >= 2


def test_compare_runs_dsi_stop_rules_and_agrees_with_the_monte_carlo_epoch_map():
    """A rule that always proposes 4, in compare's DSI (discrete-event runs), equals static k = 4 (the epoch map)."""
    from simspec import compare

    rng = np.random.default_rng(4)
    traces = tuple(tuple(bool(x) for x in rng.random(120) < 0.8) for _ in range(6))
    acc = TraceAcceptance(traces, signals={"top1_prob": tuple(np.full(120, 0.9) for _ in traces)})
    base = Scenario(ConstantLatency(30.0, ttft_ms=50.0), ConstantLatency(3.0, ttft_ms=5.0), acc, tokens=120,
                    servers=4)
    rule = compare(base.replace(lookahead=ConfidenceLookahead(0.5, 4)), "montecarlo", replications=12, rng=3)
    static = compare(base.replace(lookahead=4), "montecarlo", replications=12, rng=3)
    assert rule.dsi.lookahead == "confidence θ=0.5 k_max=4" and static.dsi.lookahead == 4
    assert "discrete-event engine" in rule.dsi.notes
    for field in ("latency_ms", "target_forwards", "target_forwards_wasted", "drafter_forwards", "gpu_seconds"):
        a, b = getattr(rule.dsi, field), getattr(static.dsi, field)
        assert a.mean == pytest.approx(b.mean, rel=1e-12) and a.low == pytest.approx(b.low, rel=1e-9), field
    assert rule.si.latency_ms.mean == pytest.approx(static.si.latency_ms.mean, rel=1e-12)
