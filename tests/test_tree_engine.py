"""Tree SI in the discrete-event engine: a chain is SI run by run; the long-run rate is the closed form."""

from __future__ import annotations

import numpy as np
import pytest

from simspec import (AffineLatency, ConstantLatency, IIDAcceptance, Overheads, PositionalTreeAcceptance, Scenario,
                     StochasticLatency, TokenTree, expected_accepted_length, simulate)
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


ALL_OVERHEADS = Overheads(message_ms=0.7, sync_ms=2.3, startup_ms=1.1, per_round_ms=0.3, per_draft_token_ms=0.05,
                          per_drafter_forward_ms=0.2, per_emitted_token_ms=0.13)


#: Each kind alone (the value ALL_OVERHEADS gives it), and all together.
OVERHEAD_KINDS = {name: Overheads(**{name: getattr(ALL_OVERHEADS, name)})
                  for name in ("message_ms", "sync_ms", "startup_ms", "per_round_ms", "per_draft_token_ms",
                               "per_drafter_forward_ms", "per_emitted_token_ms")}
OVERHEAD_KINDS["all"] = ALL_OVERHEADS


@pytest.mark.parametrize("kind", list(OVERHEAD_KINDS))
@pytest.mark.parametrize("latency", ["affine", "stochastic"])
def test_a_chain_tree_pays_si_overheads_run_by_run(kind, latency):
    """With every kind of overhead, alone and all together, a chain tree is SI run by run: the same
    timeouts in the same order, so the same floats — latency, busy times, forwards, rejections.
    Stochastic, context-dependent latencies take SI's general path, fixed ones its tabulated fast path."""
    ov = OVERHEAD_KINDS[kind]
    if latency == "affine":
        target, drafter = AffineLatency(30.0, 0.5), ConstantLatency(3.0)
    else:
        target = StochasticLatency(AffineLatency(30.0, 0.5, per_context_token_ms=0.01), cv=0.3)
        drafter = StochasticLatency(ConstantLatency(3.0), cv=0.3)
    s = Scenario(target, drafter, IIDAcceptance(0.7), lookahead=4, tokens=300, prompt_len=20, overheads=ov)
    spec = TreeSpec(TokenTree.chain(4), PositionalTreeAcceptance.from_chain_rate(0.7))
    rng = np.random.default_rng(2)
    for i in range(6):
        acc = rng.random(300) < 0.7
        si = run_once(s, "si", acc, np.random.default_rng(i))
        tree = run_once(s, "tree", acc, np.random.default_rng(i), lookahead=spec)
        assert tree.latency_ms == si.latency_ms
        assert tree.target_busy_ms == si.target_busy_ms and tree.drafter_busy_ms == si.drafter_busy_ms
        assert tree.target_forwards == si.target_forwards and tree.drafter_forwards == si.drafter_forwards
        assert tree.rejections == si.rejections
        free = run_once(s.replace(overheads=Overheads()), "si", acc, np.random.default_rng(i))
        assert si.latency_ms > free.latency_ms


def test_tree_overheads_by_hand():
    """The tree [-1, -1, 1] (two level-1 siblings, the second with a child: depth 2, size 3), h_2 = 1,
    T = 10, d = 1, S = 7, outcomes [0, 0, 0, 1, 0, 1, 0]; msg 0.5, startup 2, sync 3, per_round 0.25,
    per_emitted_token 0.125, per_draft_token 0.0625, per_drafter_forward 0.5.

    * round at 0: top rejected, sibling accepted, its child reads outcome 1 (rejected): n = 1, a rejection;
      drafting 2·1, then 2·0.5 + 3·0.0625 = 1.1875, msg 0.5, startup + verify 12, msg 0.5,
      0.25 + 2·0.125 = 0.5, sync 3 (position 2 is left): 19.6875;
    * round at 2: top rejected, sibling accepted, its child reads outcome 3 (accepted): n = 2 at a leaf, no
      rejection: 2 + 1.1875 + 0.5 + 12 + 0.5 + (0.25 + 3·0.125) = 16.8125;
    * round at 5: one position of room: the tree cut to depth 1 (size 2); top accepted (outcome 5), a leaf:
      1 + (0.5 + 2·0.0625) + 0.5 + 12 + 0.5 + (0.25 + 2·0.125) = 15.125.

    In all 51.625; target busy 3·12 (start-ups included), drafter busy 5 (forwards only).
    """
    law = PositionalTreeAcceptance((0.0, 1.0))
    spec = TreeSpec(TokenTree.from_parents([-1, -1, 1]), law)
    ov = Overheads(message_ms=0.5, startup_ms=2.0, sync_ms=3.0, per_round_ms=0.25, per_emitted_token_ms=0.125,
                   per_draft_token_ms=0.0625, per_drafter_forward_ms=0.5)
    s = Scenario(ConstantLatency(10.0), ConstantLatency(1.0), IIDAcceptance(0.5), tokens=7, overheads=ov)
    rec = run_once(s, "tree", np.array([0, 0, 0, 1, 0, 1, 0], bool), lookahead=spec)
    assert rec.latency_ms == 51.625
    assert rec.target_forwards == 3 and rec.rejections == 1
    assert rec.target_busy_ms == 36.0 and rec.drafter_busy_ms == 5.0


def test_tree_overheads_in_simulate():
    s = Scenario(AffineLatency(30.0, 0.3), ConstantLatency(1.5), IIDAcceptance(0.8), tokens=300)
    plain = simulate(s, "tree", replications=2, rng=0)
    assert simulate(s, "tree", replications=2, rng=0, overheads=Overheads()).runs == plain.runs
    res = simulate(s, "tree", replications=2, rng=0, overheads=ALL_OVERHEADS)
    assert res.options["startup_ms"] == 1.1 and res.latency_ms.mean > plain.latency_ms.mean


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
    with pytest.raises(InvalidParameterError, match="tree of 'tree'"):
        simulate(s, "si", tree=TokenTree.chain(2))


@pytest.mark.parametrize("servers, chain", [(None, True), (3, True), (2, False)])
def test_dsi_with_a_chain_tree_is_dsi_run_by_run(servers, chain):
    """Tree tasks that are chains of k drafts: DSI's own run, float for float."""
    s = Scenario(ConstantLatency(30.0), ConstantLatency(4.0), IIDAcceptance(0.7), lookahead=3, tokens=200,
                 servers=servers, chain=chain)
    spec = TreeSpec(TokenTree.chain(3), PositionalTreeAcceptance.from_chain_rate(0.7))
    rng = np.random.default_rng(5)
    for _ in range(8):
        acc = rng.random(200) < 0.7
        plain = run_once(s, "dsi", acc, lookahead=3)
        tree = run_once(s, "dsi", acc, lookahead=spec)
        assert tree.latency_ms == plain.latency_ms
        assert (tree.target_forwards, tree.drafter_forwards, tree.rejections) == (
            plain.target_forwards, plain.drafter_forwards, plain.rejections)


def test_dsi_tree_tasks_rescue_rejections_by_hand():
    """k = 2, a sibling at each level accepted for sure (h_2 = 1), unlimited servers, no chain.

    T = 10 (any width), d = 1. Outcomes: position 0 rejected, everything else accepted.
    The first task (drafts 0, 1 at t = 2) returns at 12: the top draft at 0 is rejected, its sibling
    accepted, then the sibling's rank-1 child (position 1, accepted): 2 drafts accepted + the bonus at 2,
    so V = 3 at t = 12 and the drafter restarts at 3. Tasks at 3..4 (t = 14), 5..6 (t = 16), 7.. :
    all accepted from then on; with S = 7, the task covering 5..6 (bonus 7 >= S) finishes the run at 26.
    Without the sibling (plain DSI), position 0's correction gives V = 1 at 12 and the run ends later.
    """
    law = PositionalTreeAcceptance.from_conditional([0.5, 1.0])  # h_1 = 0.5 (unused: outcomes decide), h_2 = 1
    tree = TokenTree.k_ary(2, depth=2)
    spec = TreeSpec(tree, law)
    s = Scenario(ConstantLatency(10.0), ConstantLatency(1.0), IIDAcceptance(0.5), tokens=7, chain=False)
    acc = np.array([0, 1, 1, 1, 1, 1, 1], bool)
    rec = run_once(s, "dsi", acc, lookahead=spec)
    plain = run_once(s, "dsi", acc, lookahead=2)
    assert rec.latency_ms == pytest.approx(26.0)
    assert plain.latency_ms > rec.latency_ms


def test_dsi_tree_tasks_in_simulate_and_refusals():
    from simspec import AffineLatency, InvalidParameterError
    from simspec.errors import UnsupportedScenarioError
    s = Scenario(AffineLatency(30.0, 0.3), ConstantLatency(3.0), IIDAcceptance(0.7), tokens=300, servers=4)
    law = PositionalTreeAcceptance.from_chain_rate(0.7, sibling_rate=0.35)
    tree = TokenTree.k_ary([3, 2, 1])
    res = simulate(s, "dsi", replications=3, rng=0, tree=tree, tree_acceptance=law)
    plain = simulate(s.replace(lookahead=3), "dsi", replications=3, rng=0)
    assert "tree tasks" in res.notes or "verification tasks are trees" in res.notes
    assert res.lookahead.startswith("tree(")
    assert res.tokens_per_verification.mean > plain.tokens_per_verification.mean  # siblings rescue rejections
    with pytest.raises(InvalidParameterError, match="needs tree="):
        simulate(s, "dsi", tree_acceptance=law)
    # a drafter whose forward grows with its width pays for the tree's wide levels
    wide = simulate(s.replace(drafter=AffineLatency(3.0, 0.5)), "dsi", replications=3, rng=0, tree=tree,
                    tree_acceptance=law)
    assert wide.latency_per_token_ms.mean > res.latency_per_token_ms.mean
    with pytest.raises(UnsupportedScenarioError, match="rank-1 path"):
        simulate(s, "dsi", replications=1, tree=TokenTree.from_parents([-1, -1, 1]), tree_acceptance=law)


def test_dsi_tree_tasks_price_each_level_at_its_width_by_hand():
    """A 2-ary tree of depth 2 and a drafter T_d(n) = 1 + 0.5·(n − 1). Its forwards read the levels above
    (``draft_widths`` = (1, 2)): level 1 from the root (1 wide: 1 ms), level 2 from level 1's two nodes (2 wide:
    1.5 ms), so blocks end at 2.5, 5, 7.5 ...; with one-wide levels (a chain tree) the same drafter's blocks
    take 2 ms and the run is plain DSI's."""
    from simspec import AffineLatency
    from simspec.des.trace import EventLog

    law = PositionalTreeAcceptance.from_chain_rate(0.7)
    s = Scenario(ConstantLatency(10.0), AffineLatency(1.0, 0.5), IIDAcceptance(0.5), tokens=9, chain=False)
    acc = np.ones(9, bool)
    log = EventLog(True)
    run_once(s, "dsi", acc, lookahead=TreeSpec(TokenTree.k_ary([2, 2]), law), log=log)
    ends = [e["t"] for e in log.events if e["event"] == "draft_end"]
    assert TokenTree.k_ary([2, 2]).draft_widths == (1, 2)
    assert ends[:3] == [2.5, 5.0, 7.5]
    assert [e["t"] for e in log.events if e["event"] == "verify_start"][:2] == [2.5, 5.0]
    chain = run_once(s, "dsi", acc, lookahead=TreeSpec(TokenTree.chain(2), law))
    plain = run_once(s, "dsi", acc, lookahead=2)
    assert chain.latency_ms == plain.latency_ms and chain.drafter_busy_ms == plain.drafter_busy_ms
