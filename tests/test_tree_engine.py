"""Tree SI in the discrete-event engine: a chain is SI run by run; the long-run rate is the closed form."""

from __future__ import annotations

import numpy as np
import pytest

from simspec import (AffineLatency, ConstantLatency, IIDAcceptance, PositionalTreeAcceptance, Scenario, TokenTree,
                     expected_accepted_length, simulate)
from simspec.des.runner import run_once
from simspec.des.tree import TreeSpec, cut_tree


def test_a_chain_tree_is_si_run_by_run():
    s = Scenario(AffineLatency(30.0, 0.5), ConstantLatency(3.0), IIDAcceptance(0.7), lookahead=4, tokens=300,
                 prompt_len=20)
    law = PositionalTreeAcceptance.from_chain_rate(0.7)
    spec = TreeSpec(TokenTree.chain(4), law)
    rng = np.random.default_rng(1)
    for _ in range(10):
        acc = rng.random(300) < 0.7
        si = run_once(s, "si", acc)
        tree = run_once(s, "tree", acc, lookahead=spec)
        assert tree.latency_ms == pytest.approx(si.latency_ms, rel=1e-12)
        assert tree.target_forwards == si.target_forwards and tree.drafter_forwards == si.drafter_forwards


def test_siblings_rescue_a_rejected_top_draft_by_hand():
    """Two children of the root, the second with a child of its own; siblings accepted at rate 1 (h_2 = 1).

    The rank-1 children follow the outcomes; when the top draft is rejected its sibling is accepted.
    """
    law = PositionalTreeAcceptance((0.0, 1.0))  # p_1 = 0 (never used: outcomes decide), p_2 = 1: h_2 = 1
    tree = TokenTree.from_parents([-1, -1, 1])
    spec = TreeSpec(tree, law)
    s = Scenario(ConstantLatency(10.0), ConstantLatency(1.0), IIDAcceptance(0.5), tokens=7)
    acc = np.array([0, 1, 0, 1, 0, 1, 0], bool)
    rec = run_once(s, "tree", acc, lookahead=spec)
    # round at 0: top rejected, sibling accepted (h_2 = 1), its child reads outcome 1 = accepted: n = 2 -> pos 3
    # round at 3: top (outcome 3 = accepted) -> node 0 has no children: n = 1 -> pos 5
    # round at 5: room 1: tree cut to depth 1 (two siblings); top (outcome 5) accepted: n = 1 -> pos 7 = S
    # each round: 2 drafter forwards (widths 1, 1) + verify; the cut round: 1 drafter forward
    assert rec.target_forwards == 3
    assert rec.latency_ms == pytest.approx(2 * (2 * 1.0 + 10.0) + (1.0 + 10.0))


def test_cut_tree_keeps_shallow_levels():
    assert cut_tree((-1, -1, 0, 0, 2), 1) == (-1, -1)
    assert cut_tree((-1, -1, 0, 0, 2), 2) == (-1, -1, 0, 0)


@pytest.mark.parametrize("tree", [TokenTree.k_ary(2, depth=3), TokenTree.from_parents([-1, -1, -1, 0, 0, 3])])
def test_long_run_matches_the_closed_form(tree):
    """i.i.d. outcomes at a = p_1 and the tree law's siblings: tokens per round -> E[accepted length]."""
    law = PositionalTreeAcceptance.from_chain_rate(0.6, sibling_rate=0.4)
    s = Scenario(ConstantLatency(20.0), ConstantLatency(2.0), IIDAcceptance(0.6), tokens=20_000)
    res = simulate(s, "tree", replications=4, rng=3, tree=tree, tree_acceptance=law)
    per_round = 20_000 / res.target_forwards.mean
    assert per_round == pytest.approx(expected_accepted_length(tree, law), rel=0.01)
    round_ms = 2.0 * len(tree.draft_widths) + 20.0
    assert res.latency_per_token_ms.mean == pytest.approx(round_ms / expected_accepted_length(tree, law), rel=0.01)


def test_default_tree_is_best_tree_and_errors():
    s = Scenario(AffineLatency(30.0, 0.3), ConstantLatency(1.5), IIDAcceptance(0.8), tokens=500)
    res = simulate(s, "tree", replications=2, rng=0)
    assert "best_tree" in res.notes and res.lookahead.startswith("tree(")
    from simspec import InvalidParameterError
    with pytest.raises(InvalidParameterError, match="'tree' algorithm"):
        simulate(s, "si", tree=TokenTree.chain(2))
