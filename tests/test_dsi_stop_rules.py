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
from simspec.des.runner import run_once
from simspec.errors import UnsupportedScenarioError
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


@pytest.mark.parametrize("policy", [HeuristicLookahead(), AdaptiveConfidenceLookahead()], ids=lambda p: p.name)
def test_schedules_are_refused_with_the_reason(policy):
    s = _scenario(np.ones(20, dtype=bool), np.ones(20), policy)
    with pytest.raises(UnsupportedScenarioError, match="a schedule learns from finished rounds"):
        simulate(s, "dsi", replications=1)
    with pytest.raises(UnsupportedScenarioError, match="not " + policy.name):
        run_once(s, "dsi", np.ones(20, dtype=bool), lookahead=policy)


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
    # a schedule still runs DSI at the best static k, and says so
    sched = compare(base.replace(lookahead=HeuristicLookahead()), "montecarlo", replications=4, rng=3)
    assert "cannot run the schedule" in sched.dsi.notes and isinstance(sched.dsi.lookahead, int)
