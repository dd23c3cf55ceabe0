"""Tree SI in the Monte Carlo, and compare(extra=...): tree, PEARL and the pipeline beside non-SI, SI and DSI.

The tree engine is pinned three ways: a chain tree is SI's Monte Carlo bit for bit; with the discrete-event
engine's sibling draws it is that engine run by run; with its own draws it agrees in distribution and tends
to the closed form.  compare's extra columns agree with their closed forms, leave the three default columns
(and the default table) untouched, and refuse what they cannot do with named errors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from simspec import (AffineLatency, ConstantLatency, IIDAcceptance, InvalidParameterError, MarkovAcceptance,
                     PositionalTreeAcceptance, Scenario, StaticLookahead, StochasticLatency, TokenTree,
                     UnsupportedScenarioError, best_tree, compare, expected_accepted_length, optimal_tree, simulate,
                     theory)
from simspec.cli import main
from simspec.des.runner import run_once
from simspec.des.tree import TreeSpec
from simspec.montecarlo.si import si_run
from simspec.montecarlo.tree import tree_run

SHARED = ("decode_ms", "target_forwards", "drafter_forwards", "target_busy_ms", "drafter_busy_ms", "rounds",
          "accepted_drafts")


@pytest.mark.parametrize("target", [ConstantLatency(30.0), AffineLatency(30.0, 0.7), AffineLatency(0.1, 0.3)])
@pytest.mark.parametrize("k", [1, 4, 9])
def test_a_chain_tree_is_si_monte_carlo_exactly(target, k):
    """Same outcomes, same numbers to the last bit, including runs shorter than the chain (every round cut)."""
    drafter = ConstantLatency(0.3)
    law = PositionalTreeAcceptance.from_chain_rate(0.7)
    for S in (1, 2, 7, 400):
        A = np.random.default_rng(k * 1000 + S).random((40, S)) < 0.7
        t = tree_run(A, TokenTree.chain(k), law, target, drafter, prompt_len=25)
        s = si_run(A, StaticLookahead(k), target, drafter, prompt_len=25)
        for m in SHARED:
            assert np.array_equal(t[m], s[m]), (m, S)
    # bursty outcomes: the chain reads them as SI does
    A = MarkovAcceptance.from_mean(0.8, 0.9).sample(np.random.default_rng(3), 500, 30)
    t = tree_run(A, TokenTree.chain(k), law, target, drafter)
    s = si_run(A, StaticLookahead(k), target, drafter)
    assert all(np.array_equal(t[m], s[m]) for m in SHARED)


_LAWS = {
    "siblings": PositionalTreeAcceptance.from_chain_rate(0.6, sibling_rate=0.4, max_rank=3),
    "a rank never accepted": PositionalTreeAcceptance((0.6, 0.0, 0.3)),  # h_2 = 0: the DES draws nothing for it
    "by depth": PositionalTreeAcceptance(((0.6, 0.3, 0.1), (0.6, 0.1)), depth_decay=0.9),
}


@pytest.mark.parametrize("law", list(_LAWS.values()), ids=list(_LAWS))
def test_tree_monte_carlo_is_the_discrete_event_engine_run_by_run(law):
    """Given each run's sibling stream (what the DES draws with its latency generator), every run matches."""
    S, reps = 300, 12
    s = Scenario(AffineLatency(30.0, 0.5), ConstantLatency(3.0), IIDAcceptance(0.6), tokens=S, prompt_len=10)
    A = np.random.default_rng(1).random((reps, S)) < 0.6
    U = np.stack([np.random.default_rng(100 + i).random(3 * S) for i in range(reps)])
    for tree in (TokenTree.k_ary([3, 2, 1]), TokenTree.from_parents([-1, -1, -1, 0, 0, 3, 1, 6, 6]),
                 optimal_tree(20, law)):
        out = tree_run(A, tree, law, s.target, s.drafter, s.prompt_len, uniforms=U)
        spec = TreeSpec(tree, law)
        for i in range(reps):
            rec = run_once(s, "tree", A[i], np.random.default_rng(100 + i), lookahead=spec)
            assert rec.target_forwards == out["rounds"][i]
            assert rec.drafter_forwards == out["drafter_forwards"][i]
            assert rec.rejections == out["rejections"][i]
            assert rec.decode_ms == pytest.approx(out["decode_ms"][i], rel=1e-12)
            assert rec.drafter_busy_ms == pytest.approx(out["drafter_busy_ms"][i], rel=1e-12)


def test_tree_monte_carlo_agrees_in_distribution_with_the_discrete_event_engine():
    """Its own sibling draws: the mean latency within the two runs' joint 99.99% interval (fixed seeds)."""
    law = PositionalTreeAcceptance.from_chain_rate(0.6, sibling_rate=0.5)
    tree = TokenTree.k_ary([3, 2, 1, 1])
    s = Scenario(ConstantLatency(20.0), ConstantLatency(2.0), IIDAcceptance(0.6), tokens=400)
    des = simulate(s, "tree", replications=60, rng=5, tree=tree, tree_acceptance=law)
    A = s.acceptance.sample(np.random.default_rng(6), 400, 400)
    mc = tree_run(A, tree, law, s.target, s.drafter, rng=np.random.default_rng(7))["decode_ms"] / 400
    se = np.hypot(des.latency_per_token_ms.stderr, mc.std(ddof=1) / np.sqrt(mc.size))
    assert abs(des.latency_per_token_ms.mean - mc.mean()) < 4 * se


@pytest.mark.parametrize("tree", [TokenTree.k_ary(2, depth=3), TokenTree.from_parents([-1, -1, -1, 0, 0, 3])])
def test_tree_monte_carlo_tends_to_the_closed_form(tree):
    """(draft + verify)/E[accepted length] per token as S grows; tokens per round -> E[accepted length]."""
    law = PositionalTreeAcceptance.from_chain_rate(0.6, sibling_rate=0.4)
    target, drafter = AffineLatency(20.0, 0.5), ConstantLatency(2.0)
    e = expected_accepted_length(tree, law)
    closed = (2.0 * len(tree.draft_widths) + float(target.forward(tree.width))) / e
    for S in (2_000, 20_000):
        A = np.random.default_rng(S).random((16, S)) < 0.6
        out = tree_run(A, tree, law, target, drafter, rng=np.random.default_rng(1))
        per_token = out["decode_ms"] / S
        tol = 5 * per_token.std(ddof=1) / 4 + 3 * closed / S  # 5 standard errors plus one unfinished round
        assert abs(per_token.mean() - closed) < tol, S
    assert S / out["rounds"].mean() == pytest.approx(e, rel=0.01)


def test_compare_theory_prices_the_tree_as_best_tree_and_pearl_by_its_closed_form():
    s = Scenario(AffineLatency(30.0, 0.4), ConstantLatency(3.0), IIDAcceptance(0.8), tokens=1000)
    cmp = compare(s, extra=("tree", "pearl"))
    law = PositionalTreeAcceptance.from_chain_rate(0.8)
    choice = best_tree(law, s.target, s.drafter)
    tree = cmp.extras["tree"]
    assert tree.latency_per_token_ms.mean == pytest.approx(choice.ms_per_token, rel=1e-12)
    assert tree.lookahead == f"{choice.tree.size} nodes, depth {choice.tree.depth}"
    assert tree.target_forwards.mean == pytest.approx(1000 / choice.expected_length, rel=1e-12)
    pearl = cmp.extras["pearl"]
    assert pearl.lookahead == 10  # max(2, round(30 / 3))
    assert pearl.latency_per_token_ms.mean == pytest.approx(30.0 * theory.pearl_latency_per_token(0.8, 0.1, 10,
                                                                                                  0.4 / 30.0))
    for name in ("tree", "pearl"):
        for base in ("nonsi", "si"):
            ref = getattr(cmp, base).latency_ms.mean
            assert cmp.speedup[f"{name}_vs_{base}"].mean == pytest.approx(ref / cmp.extras[name].latency_ms.mean)


@pytest.mark.parametrize("scenario", [
    Scenario.from_ms(30.0, 3.0, 0.8, lookahead="best", tokens=5000),
    Scenario(AffineLatency(25.0, 0.4), ConstantLatency(5.0), IIDAcceptance(0.7), lookahead=4, tokens=5000),
])
def test_compare_theory_and_montecarlo_agree_for_tree_and_pearl(scenario):
    th = compare(scenario, "theory", extra=("tree", "pearl"))
    mc = compare(scenario, "montecarlo", replications=12, rng=11, extra=("tree", "pearl"))
    for name in ("tree", "pearl"):
        t, m = th.extras[name], mc.extras[name]
        assert t.lookahead == m.lookahead
        for metric in ("latency_per_token_ms", "target_forwards", "drafter_forwards", "gpu_seconds"):
            tv, mv = getattr(t, metric).mean, getattr(m, metric)
            # 5 standard errors plus the end effect: one unfinished round of a few units of the per-token cost
            tol = 5 * mv.stderr + 20.0 / scenario.tokens * abs(tv) + 1e-9
            assert abs(tv - mv.mean) <= tol, (name, metric, tv, mv)
        sp = mc.speedup[f"{name}_vs_nonsi"]
        assert abs(sp.mean - th.speedup[f"{name}_vs_nonsi"].mean) <= 5 * sp.stderr + 20.0 / scenario.tokens * sp.mean


def test_pipeline_in_montecarlo_is_the_discrete_event_engine_on_the_same_outcomes():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=6, tokens=200)
    cmp = compare(s, "montecarlo", replications=6, rng=2, extra="pipeline,pearl")
    assert list(cmp.extras) == ["pipeline", "pearl"]
    A = s.acceptance.draw(np.random.default_rng(2), 200, 6).accepted
    lat = [run_once(s, "pipeline", A[i], lookahead=6).latency_ms for i in range(6)]
    assert np.allclose(cmp.extras["pipeline"].per_run_latency_ms, lat, rtol=1e-12)
    assert "discrete-event engine" in cmp.extras["pipeline"].notes


# the default table, as docs/guides/cli.md shows it (checked there by docs/regen.py as well)
_DEFAULT = """\
scenario: target 30 ms/token, drafter 3 ms/token (c = 0.1), acceptance IIDAcceptance(rate=0.8), S = 1000 tokens, method theory
                                non-SI          SI         DSI
latency per token (ms)              30       12.15         8.4
end-to-end latency (ms)         30,000      12,148       8,400
lookahead                            -           6           1
target servers                       1           1          11
target forwards                  1,000       253.1       3,600
  of which wasted                    0           0       2,600
drafter forwards                     0       1,518       2,800
GPU-seconds per token             0.03     0.01215      0.0678
speedups:
  SI vs non-SI                 2.47x
  DSI vs SI                    1.446x
  DSI vs non-SI                3.571x
  DSI vs faster of SI, non-SI  1.446x
(closed forms, S -> infinity; DSI assumes no verification waits for a server)"""


def test_the_default_output_is_unchanged_and_extras_leave_the_three_columns_alone():
    s = Scenario.from_ms(30.0, 3.0, 0.8)
    assert str(compare(s)) == _DEFAULT
    assert str(compare(s, extra=())) == _DEFAULT
    doc = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "cli.md").read_text()
    assert _DEFAULT in doc
    # the extras draw nothing from the outcomes' stream: non-SI, SI and DSI are the same numbers with or without
    m = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, tokens=300)
    plain = compare(m, "montecarlo", replications=30, rng=4).to_dict()
    more = compare(m, "montecarlo", replications=30, rng=4, extra=("tree", "pearl")).to_dict()
    for key in ("nonsi", "si", "dsi"):
        assert plain[key] == more[key]
    assert {k: v for k, v in more["speedup"].items() if k in plain["speedup"]} == plain["speedup"]
    assert set(plain) == {"scenario", "nonsi", "si", "dsi", "speedup", "speedup_ci"}


def test_extra_columns_appear_in_every_export():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, tokens=300)
    cmp = compare(s, "montecarlo", replications=20, rng=0, extra=("tree", "pearl"))
    text = str(cmp)
    header = text.splitlines()[1].split()
    assert header == ["non-SI", "SI", "DSI", "tree", "PEARL"]
    for label in ("tree vs non-SI", "tree vs SI", "PEARL vs non-SI", "PEARL vs SI", "notes:"):
        assert label in text
    html = cmp._repr_html_()
    assert "<th>tree</th>" in html and "<th>PEARL</th>" in html and "PEARL vs SI" in html
    d = cmp.to_dict()
    assert d["tree"]["algorithm"] == "tree" and d["pearl"]["lookahead"] == 5
    assert {"tree_vs_nonsi", "tree_vs_si", "pearl_vs_nonsi", "pearl_vs_si"} <= set(d["speedup_ci"])
    json.dumps(d)
    rows = cmp.to_records()
    assert [r["algorithm"] for r in rows] == ["nonsi", "si", "dsi", "tree", "pearl"]
    assert rows[3]["speedup_vs_si"] == pytest.approx(cmp.speedup["tree_vs_si"].mean)
    assert "speedup_vs_si" not in rows[1]
    frame = cmp.to_frame()
    assert len(frame) == 5 and "latency_per_token_ms_ci_low" in frame
    assert [r.algorithm for r in cmp.all_results] == ["nonsi", "si", "dsi", "tree", "pearl"]
    assert len(cmp.results) == 3


def test_given_tree_and_law_are_used_and_named():
    s = Scenario.from_ms(30.0, 3.0, 0.8, tokens=2000)
    law = PositionalTreeAcceptance.from_chain_rate(0.8, sibling_rate=0.3)
    tree = TokenTree.k_ary([2, 2, 1])
    cmp = compare(s, extra=["tree"], tree=tree, tree_acceptance=law)
    r = cmp.extras["tree"]
    assert r.lookahead == "10 nodes, depth 3"
    assert "tree as given" in r.notes and "tree law as given" in r.notes
    e = expected_accepted_length(tree, law)
    assert r.latency_per_token_ms.mean == pytest.approx((3 * 3.0 + 30.0) / e)


def test_bad_input_gives_named_errors():
    s = Scenario.from_ms(30.0, 3.0, 0.8, tokens=200)
    with pytest.raises(InvalidParameterError, match="tree, pearl, pipeline"):
        compare(s, extra=("beam",))
    with pytest.raises(InvalidParameterError, match="tree, pearl, pipeline"):
        compare(s, extra=("si",))
    with pytest.raises(UnsupportedScenarioError, match="method='montecarlo'"):
        compare(s, extra=("pipeline",))
    with pytest.raises(InvalidParameterError, match="extra='tree'"):
        compare(s, tree=TokenTree.chain(3))
    with pytest.raises(InvalidParameterError, match="extra='tree'"):
        compare(s, extra=("pearl",), tree_acceptance=PositionalTreeAcceptance((0.8,)))
    with pytest.raises(InvalidParameterError, match="at least 2"):
        compare(s.replace(lookahead=1), extra=("pearl",))
    with pytest.raises(UnsupportedScenarioError, match="static lookahead"):
        from simspec import HeuristicLookahead
        compare(s.replace(lookahead=HeuristicLookahead()), "montecarlo", replications=2, extra=("pearl",))
    law = PositionalTreeAcceptance((0.8,))
    A = np.ones((2, 10), bool)
    with pytest.raises(UnsupportedScenarioError, match="simulate"):
        tree_run(A, TokenTree.chain(2), law, StochasticLatency(ConstantLatency(30.0), 0.1), ConstantLatency(3.0))
    with pytest.raises(UnsupportedScenarioError, match="simulate"):
        tree_run(A, TokenTree.chain(2), law, AffineLatency(30.0, 0.0, per_context_token_ms=0.1), ConstantLatency(3.0))
    with pytest.raises(InvalidParameterError, match="too few"):
        tree_run(~A, TokenTree.k_ary(2, depth=2), PositionalTreeAcceptance((0.5, 0.5)), ConstantLatency(30.0),
                 ConstantLatency(3.0), uniforms=np.zeros((2, 1)) + 0.9)
    with pytest.raises(InvalidParameterError, match="bool"):
        tree_run(A.astype(int), TokenTree.chain(2), law, ConstantLatency(30.0), ConstantLatency(3.0))


BASE = ["compare", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8"]


def test_cli_with_flag_adds_columns_and_takes_the_tree_flags(capsys):
    assert main(BASE + ["--with", "tree,pearl", "--tree", "2,2,1", "--sibling-acceptance", "0.3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"non-SI\s+SI\s+DSI\s+tree\s+PEARL", out) and "10 nodes, depth 3" in out
    assert main(BASE + ["--with", "tree", "--json", "--tree-budget", "8"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["tree"]["lookahead"].startswith("8 nodes") and "tree_vs_si" in obj["speedup"]
    assert main(BASE + ["--with", "pipeline", "--method", "montecarlo", "--reps", "3", "--tokens", "100"]) == 0
    assert "pipeline vs SI" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--with", "beam"], "--with takes a comma-separated list of tree, pearl, pipeline, got 'beam'"),
    (["--with", "pipeline"], "--with pipeline has no closed form: add --method montecarlo"),
    (["--tree", "2,1"], "--tree sets the tree of --with tree"),
    (["--with", "pearl", "--tree-budget", "4"], "--tree-budget sets the tree of --with tree"),
    (["--with", "tree", "--sibling-acceptance", "1.5"], "--sibling-acceptance must be a probability in [0, 1]"),
    (["--with", "tree", "--tree", "2", "--tree-budget", "4"], "not both"),
])
def test_cli_bad_with_and_tree_flags_exit_2(capsys, extra, message):
    assert main(BASE + extra) == 2
    assert message in capsys.readouterr().err


def test_simulate_still_refuses_tree_flags_without_the_tree(capsys):
    assert main(["simulate", "--algorithm", "si", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8",
                 "--tree", "2"]) == 2
    assert "--tree sets the tree of --algorithm tree" in capsys.readouterr().err
