"""Token trees (simspec.trees): shapes, the positional acceptance law, the closed form against simulation,
Sequoia's DP against brute force, the hardware-aware choice and EAGLE-2's dynamic trees.

Derivations: theory/trees.md.  Laws with dyadic probabilities (1/2, 1/4, ...) make every sum and product exact
in binary floating point, so those comparisons are exact equalities; other laws compare within 1e-12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import simspec
from simspec import AffineLatency, ConstantLatency, theory
from simspec.errors import InvalidParameterError, ResourceLimitError
from simspec.trees import (
    PositionalTreeAcceptance,
    TokenTree,
    TreeChoice,
    TreeRounds,
    best_tree,
    dynamic_tree,
    expected_accepted_length,
    optimal_tree,
    simulate_tree,
)

DYADIC = PositionalTreeAcceptance((0.5, 0.25))


# -- brute force, written independently of simspec.trees ---------------------------------------------------------


def plane_forests(n):
    """Every ordered forest of exactly ``n`` nodes, each tree as the tuple of its children's shapes."""
    if n == 0:
        yield ()
        return
    for first in range(1, n + 1):
        for kids in plane_forests(first - 1):
            for rest in plane_forests(n - first):
                yield (kids,) + rest


def all_shapes(budget, max_depth=None):
    out = [s for n in range(budget + 1) for s in plane_forests(n)]
    return [s for s in out if max_depth is None or shape_depth(s) <= max_depth]


def shape_depth(shape):
    return 0 if not shape else 1 + max(shape_depth(k) for k in shape)


def shape_size(shape):
    return sum(1 + shape_size(k) for k in shape)


def value(shape, law, depth=0):
    """1 + Σ_r p_r(depth + 1) · value(child r): the recursion of theory/trees.md §2, evaluated directly."""
    return 1.0 + sum(float(law.prob(depth + 1, r)) * value(kid, law, depth + 1)
                     for r, kid in enumerate(shape, start=1))


def tree_of(shape):
    parents, level = [], [(-1, shape)]
    while level:
        nxt = []
        for node, kids in level:
            for kid in kids:
                parents.append(node)
                nxt.append((len(parents) - 1, kid))
        level = nxt
    return TokenTree.from_parents(parents)


def random_laws(seed, count, monotone=False):
    rng = np.random.default_rng(seed)
    laws = []
    for _ in range(count):
        v = rng.dirichlet(np.ones(4))[:3] * rng.uniform(0.5, 1.0)
        if monotone:
            v = np.sort(v)[::-1]
        laws.append(PositionalTreeAcceptance(tuple(v.tolist()), depth_decay=float(rng.choice([1.0, 0.7]))))
    return laws


# -- shapes ----------------------------------------------------------------------------------------------------


def test_token_tree_shapes():
    chain = TokenTree.chain(3)
    assert chain.parents == (-1, 0, 1) and chain.size == 3 and chain.depth == 3 and chain.width == 4
    assert chain.shape == ((((),),),) and chain.ranks.tolist() == [1, 1, 1]
    assert TokenTree.chain(0).size == 0 and TokenTree.chain(0).depth == 0 and TokenTree.chain(0).width == 1

    binary = TokenTree.k_ary(2, depth=3)
    assert binary.size == 14 and binary.levels == (2, 4, 8) and binary.draft_widths == (1, 2, 4)
    assert TokenTree.k_ary([3, 2, 1]).levels == (3, 6, 6)
    assert TokenTree.k_ary(2, size=5).parents == (-1, -1, 0, 0, 1)
    assert TokenTree.k_ary(2, size=14) == binary  # the first 14 nodes breadth first are the complete tree

    t = TokenTree.from_parents([-1, -1, 0, 0, 2])
    assert t.depths.tolist() == [1, 1, 2, 2, 3] and t.ranks.tolist() == [1, 2, 1, 2, 1]
    assert t.levels == (2, 2, 1) and t.draft_widths == (1, 1, 1)  # only node 0 and node 2 have children
    assert t.shape == ((((),), ()), ())
    assert repr(t) == "TokenTree(size=5, depth=3, levels=(2, 2, 1), parents=(-1, -1, 0, 0, 2))"
    assert "parents" not in repr(TokenTree.k_ary(3, depth=3))  # big trees print their outline only
    assert tree_of(t.shape).shape == t.shape
    with pytest.raises(ValueError):
        t.depths[0] = 5  # read-only


# -- the law ------------------------------------------------------------------------------------------------------


def test_positional_law():
    law = PositionalTreeAcceptance((0.5, 0.25), depth_decay=0.5)
    assert law.prob([1, 2, 3], 1).tolist() == [0.5, 0.25, 0.125]
    assert law.prob(1, 3) == 0.0 and law.max_rank == 2 and law.depth_dependent and law.chain_rate == 0.5
    assert not DYADIC.depth_dependent
    by_depth = PositionalTreeAcceptance(((0.5, 0.25), (0.75,)))
    assert by_depth.prob([1, 2, 5], 2).tolist() == [0.25, 0.0, 0.0] and by_depth.prob(7, 1) == 0.75
    assert by_depth.depth_dependent
    # from_chain_rate: p_1 = a, then each sibling at rate b given the earlier ones rejected
    assert PositionalTreeAcceptance.from_chain_rate(0.5, max_rank=3).rank_probs == (0.5, 0.25, 0.125)
    assert PositionalTreeAcceptance.from_chain_rate(0.5, max_rank=3, sibling_rate=0.5).rank_probs == (0.5, 0.25, 0.125)
    assert PositionalTreeAcceptance.from_chain_rate(0.5, max_rank=3, sibling_rate=0.25).rank_probs == (
        0.5, 0.125, 0.09375)
    assert PositionalTreeAcceptance.from_conditional([0.5, 0.5, 1.0]).rank_probs == (0.5, 0.25, 0.25)


def test_from_distributions_is_the_matching_law():
    law = PositionalTreeAcceptance.from_distributions([0.5, 0.25, 0.25], [0.125, 0.5, 0.375])
    assert law.rank_probs == (0.25, 0.25, 0.5)  # the drafter's order is token 1, token 2, token 0
    # two contexts, greedy target (one-hot rows): p_r is the fraction of contexts whose target token is rank r
    target = [[0, 1, 0], [0, 0, 1]]
    drafter = [[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]  # ties: the smaller id first, so ranks 0, 1, 2
    assert PositionalTreeAcceptance.from_distributions(target, drafter, max_rank=2).rank_probs == (0.0, 0.5)
    # Monte Carlo: sample the target's token, follow the matching child of a top-3 fan
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.6, 0.3])
    draws = np.random.default_rng(0).choice(3, size=200_000, p=p)
    top = np.argsort(-q, kind="stable")
    freq = [(draws == top[r]).mean() for r in range(3)]
    law = PositionalTreeAcceptance.from_distributions(p, q)
    assert np.allclose(freq, law.rank_probs, atol=5 * 0.5 / math.sqrt(draws.size))


# -- the closed form -----------------------------------------------------------------------------------------------


def test_chain_is_si():
    """E[chain of k] = (1 − a^{k+1})/(1 − a), SI's tokens per iteration: exactly for a = 1/2, to 1e-12 otherwise."""
    for k in range(0, 12):
        assert expected_accepted_length(TokenTree.chain(k), DYADIC) == (1 - 0.5 ** (k + 1)) / 0.5
        for a in (0.0, 0.3, 0.8, 0.95, 1.0):
            law = PositionalTreeAcceptance.from_chain_rate(a)  # later ranks are irrelevant to a chain
            assert math.isclose(expected_accepted_length(TokenTree.chain(k), law),
                                float(theory.si_expected_tokens_per_iteration(a, k) if k else 1.0), rel_tol=1e-12)


def test_closed_form_is_the_recursion():
    """1 + Σ_nodes Π_path p equals the recursion over children, exactly (dyadic laws), on every tree of ≤ 6 nodes."""
    for law in (DYADIC, PositionalTreeAcceptance((0.5, 0.25, 0.125), depth_decay=0.5)):
        for shape in all_shapes(6):
            assert expected_accepted_length(tree_of(shape), law) == value(shape, law)
    # by hand: two children at rate 1/2 and 1/4, each with the same two children
    assert expected_accepted_length(TokenTree.k_ary(2, depth=2), DYADIC) == 1 + 0.75 + 0.75 * 0.75
    assert expected_accepted_length(TokenTree.chain(0), DYADIC) == 1.0


@pytest.mark.parametrize("tree, law", [
    (TokenTree.k_ary(3, depth=3), PositionalTreeAcceptance((0.6, 0.2, 0.1))),
    (TokenTree.k_ary([4, 2, 1, 1]), PositionalTreeAcceptance.from_chain_rate(0.7, sibling_rate=0.3)),
    (TokenTree.from_parents([-1, -1, -1, 0, 0, 1, 3, 3, 6]),
     PositionalTreeAcceptance(((0.5, 0.3, 0.2), (0.7, 0.1), (0.9,)), depth_decay=0.9)),
    (TokenTree.chain(6), PositionalTreeAcceptance((0.8,))),
])
def test_closed_form_matches_simulation(tree, law):
    """Monte Carlo mean of 200,000 rounds (seed 0) within 5 standard errors of the closed form."""
    rounds = simulate_tree(tree, law, rng=0, n=200_000)
    assert abs(rounds.mean - expected_accepted_length(tree, law)) <= 5 * rounds.standard_error
    # each node's acceptance frequency is its path probability (binomial standard errors)
    freq = rounds.accepted.mean(axis=0)
    path = np.array([np.prod([float(law.prob(int(tree.depths[v]), int(tree.ranks[v]))) for v in _path(tree, i)])
                     for i in range(tree.size)])
    assert np.all(np.abs(freq - path) <= 5 * np.sqrt(path * (1 - path) / len(rounds)) + 1e-12)


def _path(tree, i):
    out = []
    while i >= 0:
        out.append(i)
        i = tree.parents[i]
    return out


def test_simulation_is_seeded_and_walks_the_tree():
    tree = TokenTree.k_ary(2, depth=3)
    a = simulate_tree(tree, DYADIC, rng=5, n=1000)
    b = simulate_tree(tree, DYADIC, rng=np.random.default_rng(5), n=1000)
    assert np.array_equal(a.node, b.node) and isinstance(a, TreeRounds) and len(a) == 1000
    acc = a.accepted
    assert np.array_equal(acc.sum(axis=1) + 1, a.tokens)  # one accepted path per round
    assert np.all(acc[:, 2:] <= acc[:, np.asarray(tree.parents[2:])])  # a node only under an accepted parent
    certain = simulate_tree(TokenTree.chain(4), PositionalTreeAcceptance((1.0,)), rng=0, n=10)
    assert certain.tokens.tolist() == [5] * 10
    assert simulate_tree(TokenTree.chain(0), DYADIC, rng=0, n=3).tokens.tolist() == [1, 1, 1]


def test_fit_by_hand_and_round_trip():
    tree = TokenTree.from_parents([-1, -1])
    # accepted: node 0 twice, node 1 once, none once -> h_1 = 2/4, h_2 = 1/2 (at risk in 2 rounds) -> (1/2, 1/4)
    outcomes = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=bool)
    assert PositionalTreeAcceptance.fit([(tree, outcomes)]).rank_probs == (0.5, 0.25)
    assert PositionalTreeAcceptance.fit([(tree, outcomes)], max_rank=1).rank_probs == (0.5,)

    law = PositionalTreeAcceptance(((0.6, 0.2, 0.1), (0.5, 0.3, 0.1), (0.4, 0.2, 0.2)))
    rounds = simulate_tree(TokenTree.k_ary(3, depth=3), law, rng=1, n=200_000)
    fitted = PositionalTreeAcceptance.fit(rounds, by_depth=True)
    # every estimate rests on >= 20,000 trials: standard error <= 0.5/sqrt(20,000) ≈ 0.0035; 0.015 is over 4 of them
    grid = (np.arange(1, 4)[:, None], np.arange(1, 5)[None, :])  # depths 1..3, ranks 1..4
    assert np.allclose(fitted.prob(*grid), law.prob(*grid), atol=0.015)
    pooled = PositionalTreeAcceptance.fit([rounds, rounds])  # a list of recordings is pooled
    assert pooled.max_rank == 3 and sum(pooled.rank_probs) <= 1


# -- Sequoia's DP ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("law", [
    DYADIC,
    PositionalTreeAcceptance((0.25, 0.5)),  # not monotone in rank: the greedy tree is not optimal
    PositionalTreeAcceptance((0.5, 0.25, 0.125), depth_decay=0.5),
    PositionalTreeAcceptance(((0.25, 0.5), (0.5, 0.125), (0.75,))),
    *random_laws(0, 4),
])
def test_dp_matches_brute_force(law):
    """The DP's optimum equals the best of all trees of at most `budget` nodes (≤ 7), with and without a depth cap.

    Exact equality of the optimum value on the dyadic laws; within 1e-12 on the random ones.
    """
    probs = law.prob(np.arange(1, 8)[:, None], np.arange(1, 5)[None, :])
    exact = bool(np.all(probs * 2**16 == np.round(probs * 2**16)))  # dyadic: every sum and product is exact
    for cap in (None, 1, 2, 3):
        for budget in range(0, 8):
            brute = max(value(s, law) for s in all_shapes(budget, cap))
            tree = optimal_tree(budget, law, max_depth=cap)
            assert tree.size <= budget and (cap is None or tree.depth <= cap)
            got = expected_accepted_length(tree, law)
            assert got == brute if exact else math.isclose(got, brute, rel_tol=1e-12), (budget, cap, got, brute)


def test_dp_by_hand():
    assert optimal_tree(3, DYADIC).shape == (((),), ())  # 1 + 1/2 + 1/4 + 1/4 = 2
    assert expected_accepted_length(optimal_tree(3, DYADIC), DYADIC) == 2.0
    # ranks must be contiguous: with p = (1/4, 1/2) the valuable rank-2 child needs a rank-1 sibling
    assert optimal_tree(1, PositionalTreeAcceptance((0.25, 0.5))).parents == (-1,)
    assert optimal_tree(2, PositionalTreeAcceptance((0.25, 0.5))).parents == (-1, -1)
    # zero-value nodes are left out: a chain law never grows siblings, and a depth cap stops it
    assert optimal_tree(5, PositionalTreeAcceptance((0.8,))) == TokenTree.chain(5)
    assert optimal_tree(5, PositionalTreeAcceptance((0.8,)), max_depth=2) == TokenTree.chain(2)
    assert optimal_tree(5, PositionalTreeAcceptance((0.0,))).size == 0
    assert optimal_tree(0, DYADIC).size == 0 and optimal_tree(4, DYADIC, max_depth=0).size == 0


def test_dp_equals_greedy_for_rank_monotone_laws():
    """theory/trees.md §3: when p_r(d) does not increase with r, the top-n nodes by path probability are optimal,
    which is EAGLE-2's rule with a calibrated drafter and enough expansion."""
    for law in random_laws(1, 8, monotone=True):
        for budget in (1, 4, 9, 20):
            greedy = dynamic_tree(budget, law, top_k=budget, depth=budget)
            assert math.isclose(expected_accepted_length(greedy, law),
                                expected_accepted_length(optimal_tree(budget, law), law), rel_tol=1e-12)


def test_optimal_tree_beats_fixed_shapes_at_large_budgets():
    """At every budget the optimum is at least the chain's and the complete binary tree's, and below the infinite
    tree's 1/(1 − Σ_r p_r)."""
    law = PositionalTreeAcceptance.from_chain_rate(0.7, sibling_rate=0.3)
    bound = 1 / (1 - sum(law.rank_probs))
    previous = 1.0
    for n in (16, 64, 256):
        best = expected_accepted_length(optimal_tree(n, law), law)
        for shape in (TokenTree.chain(n), TokenTree.k_ary(2, size=n), TokenTree.k_ary(4, size=n)):
            assert best >= expected_accepted_length(shape, law)
        assert previous < best < bound
        previous = best


# -- the best tree for the hardware -------------------------------------------------------------------------------


def test_best_tree_by_hand():
    """p = (1/2, 1/4), target 10 + s·(width − 1) ms, drafter 1 ms per forward, budgets 0..3.

    budget 0: 10/1; 1: one child, (1 + 10 + s)/1.5; 2: two siblings (depth 1, E = 1.75), (1 + 10 + 2s)/1.75;
    3: two siblings and a grandchild (E = 2, depth 2), (2 + 10 + 3s)/2.
    """
    fast = ConstantLatency(tpot_ms=1.0)
    free = best_tree(DYADIC, AffineLatency(10.0, 0.0), fast, budgets=range(4))
    assert free.budget == 3 and free.ms_per_token == 12 / 2 and free.tree.shape == (((),), ())
    mid = best_tree(DYADIC, AffineLatency(10.0, 2.0), fast, budgets=range(4))
    assert mid.budget == 2 and mid.tree.shape == ((), ()) and mid.ms_per_token == 15 / 1.75
    # a budget is a bound: at budget 3 the two siblings (2 nodes) still beat the 3-node tree
    assert [c.ms_per_token for c in mid.per_budget] == [10.0, 13 / 1.5, 15 / 1.75, 15 / 1.75]
    assert mid.per_budget[3].tree.size == 2
    steep = best_tree(DYADIC, AffineLatency(10.0, 5.0), fast, budgets=range(4))
    assert steep.budget == 0 and steep.tree.size == 0 and steep.speedup == 1.0


def test_best_budget_follows_the_verification_slope():
    law = PositionalTreeAcceptance.from_chain_rate(0.7)
    drafter = ConstantLatency(0.5)
    assert best_tree(law, ConstantLatency(10.0), drafter, budgets=range(17)).budget == 16  # a constant forward
    budgets = [best_tree(law, AffineLatency(10.0, s), drafter, budgets=range(17)).budget
               for s in (0.0, 0.2, 0.5, 1.0, 2.0, 5.0)]
    assert budgets == [16, 15, 7, 4, 2, 1]


def test_chain_law_gives_best_si_lookahead():
    """With p = (a,) every optimal tree is a chain, so the best tree is SI's best static lookahead."""
    for a, c in ((0.8, 0.1), (0.6, 0.05), (0.9, 0.3)):
        choice = best_tree(PositionalTreeAcceptance((a,)), ConstantLatency(1.0), ConstantLatency(c),
                           budgets=range(41))
        k, latency = theory.best_si_lookahead(a, c, k_max=40)
        assert choice.budget == int(k) and choice.tree == TokenTree.chain(int(k))
        assert math.isclose(choice.ms_per_token, float(latency), rel_tol=1e-12)


@pytest.mark.parametrize("law", [DYADIC, PositionalTreeAcceptance((0.5, 0.25, 0.125), depth_decay=0.5)])
def test_best_tree_matches_brute_force(law):
    """With a constant drafter and an affine target, no tree of ≤ 6 nodes beats best_tree's choice."""
    target, drafter = AffineLatency(10.0, 1.5), ConstantLatency(1.25)
    choice = best_tree(law, target, drafter, budgets=range(7))
    brute = min((1.25 * shape_depth(s) + 10.0 + 1.5 * shape_size(s)) / value(s, law) for s in all_shapes(6))
    assert math.isclose(choice.ms_per_token, brute, rel_tol=1e-12)


def test_tree_choice_record():
    choice = best_tree(DYADIC, AffineLatency(10.0, 2.0), ConstantLatency(1.0), budgets=range(4))
    assert isinstance(choice, TreeChoice) and len(choice.rows()) == 4
    assert choice.rows()[2] == {"budget": 2, "size": 2, "depth": 1, "expected_length": 1.75, "draft_ms": 1.0,
                                "verify_ms": 14.0, "ms_per_token": 15 / 1.75, "speedup": 10 / (15 / 1.75)}
    text = str(choice)
    assert text.startswith("best tree: budget 2") and "budget 2 *" in text
    assert "budget=2" in repr(choice)


# -- EAGLE-2 ----------------------------------------------------------------------------------------------------


def test_dynamic_tree_by_hand():
    """Confidences: root children 1/2, 1/4 (1/8 cut by top_k = 2); under the first 1/2·(1/2, 3/8) = 1/4, 3/16;
    under the second 1/4·3/4 = 3/16; deeper 1/2 each.  Ties go to the node drafted first."""
    probs = {(): [0.25, 0.5, 0.125], (1,): [0.5, 0.375], (2,): [0.75]}  # unsorted: ranks follow probability

    def drafter(path):
        return probs.get(path, [0.5])

    # top 4 of {A 1/2, B 1/4, A1 1/4, A2 3/16, B1 3/16}: B before A1 (tie), A2 before B1 (tie)
    assert dynamic_tree(4, drafter, top_k=2, depth=2).parents == (-1, -1, 0, 0)
    assert dynamic_tree(5, drafter, top_k=2, depth=2).parents == (-1, -1, 0, 0, 1)
    assert dynamic_tree(9, drafter, top_k=2, depth=2).size == 5  # only five nodes were drafted
    assert dynamic_tree(4, drafter, top_k=1, depth=2).parents == (-1, 0)  # one child per step, one node expanded
    # depth 3 expands the two most confident of {A1 1/4, A2 3/16, B1 3/16}: A1 and A2 (drafted before B1)
    assert dynamic_tree(9, drafter, top_k=2, depth=3).parents == (-1, -1, 0, 0, 1, 2, 3)
    assert dynamic_tree(6, drafter, top_k=2, depth=3).parents == (-1, -1, 0, 0, 1, 2)
    assert dynamic_tree(0, drafter).size == 0 and dynamic_tree(3, drafter, depth=0).size == 0


# -- bad input --------------------------------------------------------------------------------------------------


def test_bad_input_raises_named_errors():
    with pytest.raises(InvalidParameterError, match="budget"):
        optimal_tree(-1, DYADIC)
    with pytest.raises(InvalidParameterError, match=r"\[0, 1\]"):
        PositionalTreeAcceptance((0.5, 1.5))
    with pytest.raises(InvalidParameterError, match="sum to 1.2 > 1.*from_conditional"):
        PositionalTreeAcceptance((0.7, 0.5))
    with pytest.raises(InvalidParameterError, match=r"depth 2\) sum to"):
        PositionalTreeAcceptance(((0.5,), (0.75, 0.5)))
    with pytest.raises(InvalidParameterError, match="depth_decay must lie in"):
        PositionalTreeAcceptance((0.5,), depth_decay=1.5)
    with pytest.raises(InvalidParameterError, match="from_chain_rate"):
        PositionalTreeAcceptance(0.8)
    with pytest.raises(InvalidParameterError, match="tree acceptance law"):
        expected_accepted_length(TokenTree.chain(2), simspec.IIDAcceptance(0.8))
    with pytest.raises(InvalidParameterError, match="earlier node"):
        TokenTree.from_parents([-1, 1])
    with pytest.raises(InvalidParameterError, match="integers"):
        TokenTree.from_parents([-1, 0.5])
    with pytest.raises(InvalidParameterError, match="depth or its size"):
        TokenTree.k_ary(2)
    with pytest.raises(InvalidParameterError, match="exceeds the 6 nodes"):
        TokenTree.k_ary(2, depth=2, size=7)
    with pytest.raises(InvalidParameterError, match="max_depth"):
        optimal_tree(4, DYADIC, max_depth=-1)
    with pytest.raises(InvalidParameterError, match="one path from the root"):
        PositionalTreeAcceptance.fit([(TokenTree.from_parents([-1, -1]), [[1, 1]])])
    with pytest.raises(InvalidParameterError, match="shape"):
        PositionalTreeAcceptance.fit([(TokenTree.chain(2), [[1, 0, 0]])])
    with pytest.raises(InvalidParameterError, match="nothing to estimate"):
        PositionalTreeAcceptance.fit([(TokenTree.chain(0), np.zeros((3, 0)))])
    with pytest.raises(InvalidParameterError, match="budgets is empty"):
        best_tree(DYADIC, ConstantLatency(1.0), ConstantLatency(0.1), budgets=[])
    with pytest.raises(InvalidParameterError, match="latency model"):
        best_tree(DYADIC, 30.0, ConstantLatency(0.1))
    with pytest.raises(InvalidParameterError, match="sums to 1.5 > 1"):
        dynamic_tree(3, lambda path: [1.0, 0.5])
    with pytest.raises(InvalidParameterError, match="function"):
        dynamic_tree(3, [0.5, 0.25])
    with pytest.raises(InvalidParameterError, match="rise with the rank at depth 1"):
        dynamic_tree(3, PositionalTreeAcceptance((0.25, 0.5)))
    with pytest.raises(InvalidParameterError, match="node indices"):
        TreeRounds(TokenTree.chain(2), np.array([0, 2]))


def test_too_much_work_is_refused_before_it_starts():
    law = PositionalTreeAcceptance.from_chain_rate(0.8)
    with pytest.raises(ResourceLimitError, match="optimal_tree's dynamic program.*lower the budget"):
        optimal_tree(20_000, law)
    with pytest.raises(ResourceLimitError, match="give max_depth"):
        optimal_tree(2_000, PositionalTreeAcceptance((0.5, 0.25), depth_decay=0.9))
    with pytest.raises(ResourceLimitError, match="one per depth cap"):
        best_tree(PositionalTreeAcceptance((0.5, 0.25), depth_decay=0.9), ConstantLatency(1.0),
                  ConstantLatency(0.1), budgets=range(400))
    with pytest.raises(ResourceLimitError, match="k-ary tree's size"):
        TokenTree.k_ary(10, depth=10)
    assert optimal_tree(500, PositionalTreeAcceptance((0.5, 0.25), depth_decay=0.9), max_depth=8).depth <= 8
