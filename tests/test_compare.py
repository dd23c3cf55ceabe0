"""compare(): closed forms and Monte Carlo agree on latency *and* cost; pairing and seeds."""

import numpy as np
import pytest

from simspec import (
    AffineLatency,
    ConstantLatency,
    HeuristicLookahead,
    IIDAcceptance,
    MarkovAcceptance,
    OracleLookahead,
    Scenario,
    compare,
)

METRICS = ("latency_per_token_ms", "target_forwards", "target_forwards_wasted", "drafter_forwards", "gpu_seconds")


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario.from_ms(30.0, 3.0, 0.8, lookahead=4, tokens=20000),
        Scenario.from_ms(20.0, 7.0, 0.9, lookahead="best", tokens=20000),
        Scenario(AffineLatency(25.0, 0.4), ConstantLatency(5.0), IIDAcceptance(0.7), lookahead=3, tokens=20000),
    ],
)
def test_theory_and_montecarlo_agree_on_every_metric(scenario):
    th = compare(scenario, "theory")
    mc = compare(scenario, "montecarlo", replications=40, rng=123)
    for alg in ("si", "dsi"):
        t, m = getattr(th, alg), getattr(mc, alg)
        assert t.lookahead == m.lookahead
        for metric in METRICS:
            tv, mv = getattr(t, metric).mean, getattr(m, metric)
            # 5 standard errors (false alarm ~6e-7) plus the finite-S end effect: the closed
            # forms are per token as S -> inf; one unfinished round/epoch shifts a total by at
            # most a few units of the per-token cost, i.e. relatively O(10/S) here.
            tol = 5 * mv.stderr + 10.0 / scenario.tokens * max(abs(tv), 1e-9) + 1e-9
            assert abs(tv - mv.mean) <= tol, (alg, metric, tv, mv)


def test_same_seed_reproduces_and_speedups_are_paired():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, tokens=500)
    r1 = compare(s, "montecarlo", replications=50, rng=7).to_dict()
    r2 = compare(s, "montecarlo", replications=50, rng=np.random.default_rng(7)).to_dict()
    assert r1 == r2
    cmp = compare(s, "montecarlo", replications=50, rng=7)
    # pairing: the speedup's interval is far narrower than the relative spread of either latency
    sp = cmp.speedup["dsi_vs_si"]
    rel_sp = (sp.high - sp.low) / sp.mean
    lat = cmp.si.latency_ms
    rel_lat = (lat.high - lat.low) / lat.mean
    assert rel_sp < rel_lat


def test_dsi_lookahead_respects_servers():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead="best", servers=5)
    for method in ("theory", "montecarlo"):
        res = compare(s, method, replications=20, rng=0)
        assert res.dsi.target_servers <= 5
        assert res.dsi.lookahead == 3  # ceil(1/(3*0.1)) + chain = 5


def test_ttft_adds_to_end_to_end_latency():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=4, target_ttft_ms=200.0, drafter_ttft_ms=50.0, tokens=100)
    res = compare(s)
    assert res.nonsi.latency_ms.mean == pytest.approx(200.0 + 100 * 30.0)
    assert res.si.ttft_ms == 200.0
    assert res.si.latency_ms.mean == pytest.approx(200.0 + 100 * res.si.latency_per_token_ms.mean)


def test_dynamic_policies_run_in_montecarlo_and_oracle_beats_static():
    base = dict(target=ConstantLatency(30.0), drafter=ConstantLatency(3.0), tokens=2000)
    acc = MarkovAcceptance.from_mean(0.8, 0.9)
    from simspec.montecarlo.si import si_run
    from simspec import StaticLookahead

    A = acc.sample(np.random.default_rng(5), 2000, 30)
    t = {
        name: si_run(A, pol, base["target"], base["drafter"])["decode_ms"].mean()
        for name, pol in {
            "oracle": OracleLookahead(),
            "heuristic": HeuristicLookahead(),
            **{f"k{k}": StaticLookahead(k) for k in (1, 3, 5, 8)},
        }.items()
    }
    assert t["oracle"] < min(v for k, v in t.items() if k != "oracle")
    # every policy emits exactly S tokens on the same outcomes: accepted drafts + one target token per round
    for pol in (OracleLookahead(), HeuristicLookahead(), StaticLookahead(4)):
        res = si_run(A, pol, base["target"], base["drafter"])
        assert np.array_equal(res["accepted_drafts"] + res["rounds"], np.full(30, 2000))
