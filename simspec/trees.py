"""Token trees: draft several continuations at once, verify them all in one forward.

A chain of drafts is one guess at the next ``k`` tokens; a *token tree* hedges.
Think of a hiker at a fork who sends scouts down the two or three likeliest
paths, and further scouts at the forks after those: the target model walks the
whole map in one forward (tree attention masks every node to its own ancestors,
SpecInfer) and follows the longest path it agrees with.  A wider map makes it
likelier that some path survives, and makes the verification forward wider and
slower.  This module answers three questions: how many tokens does a tree yield
per verification, which tree of ``n`` nodes yields the most, and which ``n``
pays on given hardware.

Papers: SpecInfer (Miao et al. 2024, "SpecInfer: Accelerating Large Language
Model Serving with Tree-based Speculative Inference and Verification") —
token trees verified in one forward; Sequoia (Chen et al. 2024, "Sequoia:
Scalable, Robust, and Hardware-aware Speculative Decoding") — the positional
acceptance vector, the dynamic program for the optimal tree, and the choice of
the tree's size and depth for the hardware; EAGLE-2 (Li et al. 2024, "EAGLE-2:
Faster Inference of Language Models with Dynamic Draft Trees") — trees grown by
the drafter's confidence.

**The convention** (``theory/trees.md``).  The root is the last verified
token (depth 0); draft nodes have depths ``1, 2, ...``; a node's children are
the drafter's top-``m`` tokens there, with *sibling ranks* ``1..m`` (rank 1 the
likeliest).  Acceptance follows Sequoia's positional law: given that a node is
accepted, its child of rank ``r`` is *the* accepted child with probability
``p_r(d)`` (``d`` the child's depth), whatever the other children; at most one
child is accepted, so ``Σ_{r ≤ m} p_r(d) ≤ 1`` is the chance that any of ``m``
children is, and the levels are independent.  Then a node is accepted iff every
node on its path is, with probability ``Π_path p``, and by linearity the
expected tokens of one verification (accepted drafts plus the target's own
token) is

    E[accepted length] = 1 + Σ_nodes Π_{v on the path to the node} p_{rank(v)}(depth(v)),

which for a chain with ``p_1 = a`` is SI's ``(1 − a^{k+1})/(1 − a)``.

>>> from simspec.trees import TokenTree, PositionalTreeAcceptance, expected_accepted_length, optimal_tree
>>> law = PositionalTreeAcceptance((0.6, 0.2, 0.1))
>>> chain, best = TokenTree.chain(4), optimal_tree(4, law)
>>> round(expected_accepted_length(chain, law), 4), round(expected_accepted_length(best, law), 4)
(2.3056, 2.376)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from . import _checks
from ._checks import check_rng, check_work, finite_nonneg, int_at_least, probability_array
from .errors import InvalidParameterError
from .latency import check_latency_model
from .records import TableRecord, to_frame

__all__ = [
    "TokenTree",
    "TreeAcceptance",
    "PositionalTreeAcceptance",
    "expected_accepted_length",
    "simulate_tree",
    "TreeRounds",
    "optimal_tree",
    "best_tree",
    "TreeChoice",
    "dynamic_tree",
]

_SUM_TOL = 1e-9  # rank probabilities of one node's children may sum to 1 + this (rounding of fitted values)


# -- shapes ------------------------------------------------------------------------------------------------------


def _check_nodes(name: str, n: float) -> None:
    check_work(name, n, _checks.MAX_TREE_NODES,
               f"give a tree of at most {_checks.MAX_TREE_NODES} nodes (real trees hold tens to a few hundred)",
               unit="nodes")


@dataclass(frozen=True, repr=False)
class TokenTree:
    """A rooted tree of draft tokens: ``parents[i]`` is node ``i``'s parent, ``-1`` the root.

    The root is the last verified token; it is not a draft and not counted in
    :attr:`size`.  Nodes are listed parents first (``parents[i] < i``), and a
    node's children take sibling ranks ``1, 2, ...`` in the order they appear:
    the first child listed is the drafter's likeliest token there.  Every
    constructor lists nodes breadth first.

    >>> t = TokenTree.from_parents([-1, -1, 0, 0, 2])
    >>> t
    TokenTree(size=5, depth=3, levels=(2, 2, 1), parents=(-1, -1, 0, 0, 2))
    >>> t.ranks.tolist(), t.depths.tolist(), t.width
    ([1, 2, 1, 2, 1], [1, 1, 2, 2, 3], 6)
    >>> TokenTree.k_ary(2, depth=2).levels, TokenTree.k_ary(2, size=5).parents
    ((2, 4), (-1, -1, 0, 0, 1))
    """

    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        raw = self.parents
        arr = np.asarray(list(raw) if not isinstance(raw, np.ndarray) else raw)
        if arr.size == 0:
            arr = np.zeros(0, dtype=np.int64)
        if arr.ndim != 1 or arr.dtype.kind not in "iu" and not (
                arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr % 1 == 0)):
            raise InvalidParameterError(
                f"parents must be a 1-D sequence of integers (the parent's index, -1 for the root), got {raw!r}")
        arr = arr.astype(np.int64)
        _check_nodes("a token tree's size", arr.size)
        idx = np.arange(arr.size)
        bad = np.flatnonzero((arr < -1) | (arr >= idx))
        if bad.size:
            i = int(bad[0])
            raise InvalidParameterError(
                f"parents[{i}] = {int(arr[i])}: a node's parent must be -1 (the root) or an earlier node "
                f"(0..{i - 1}); list every node after its parent")
        depths = np.zeros(arr.size, dtype=np.int64)
        ranks = np.zeros(arr.size, dtype=np.int64)
        n_children = np.zeros(arr.size + 1, dtype=np.int64)  # the last entry counts the root's children
        for i, par in enumerate(arr.tolist()):
            depths[i] = 1 if par < 0 else depths[par] + 1
            n_children[par] += 1  # par = -1 lands on the root's entry
            ranks[i] = n_children[par]
        for a in (arr, depths, ranks, n_children):
            a.setflags(write=False)
        object.__setattr__(self, "parents", tuple(arr.tolist()))
        object.__setattr__(self, "_parents", arr)
        object.__setattr__(self, "_depths", depths)
        object.__setattr__(self, "_ranks", ranks)
        object.__setattr__(self, "_n_children", n_children)

    # constructors ---------------------------------------------------------------------------------------------

    @classmethod
    def from_parents(cls, parents: Sequence[int]) -> "TokenTree":
        """The tree whose node ``i`` hangs under ``parents[i]`` (``-1``: the root)."""
        return cls(tuple(parents))

    @classmethod
    def chain(cls, k: int) -> "TokenTree":
        """``k`` drafts one after the other: SI's lookahead ``k`` as a tree (``k = 0``: no drafts)."""
        k = int_at_least("k", k, 0, "a chain holds k >= 0 drafts")
        _check_nodes("the chain's length k", k)
        return cls(tuple(range(-1, k - 1)))

    @classmethod
    def k_ary(cls, branching: Union[int, Sequence[int]], depth: int | None = None, *,
              size: int | None = None) -> "TokenTree":
        """Every node ``branching`` children down to ``depth``, or the first ``size`` nodes of it, breadth first.

        ``branching`` may be a list, one branching per depth (``[4, 2, 1]``: four
        children of the root, two under each of them, one under each of those);
        then ``depth`` is its length.  ``size`` cuts the tree after its first
        ``size`` nodes in breadth-first order (a *complete* tree of any size).
        """
        if isinstance(branching, (int, np.integer)) and not isinstance(branching, bool):
            b = int_at_least("branching", branching, 1, "each node needs at least one child")
            if depth is None and size is None:
                raise InvalidParameterError("give the tree's depth or its size: k_ary(2, depth=3) or k_ary(2, size=16)")
            if depth is not None:
                depth = int_at_least("depth", depth, 0)
            per_level = None
        else:
            per_level = [int_at_least("branching[i]", x, 1, "each node needs at least one child") for x in branching]
            if depth is not None and int(depth) != len(per_level):
                raise InvalidParameterError(
                    f"depth {depth} contradicts the {len(per_level)} branchings given; leave depth out")
            depth = len(per_level)
            b = 0
        if size is not None:
            size = int_at_least("size", size, 0)
        total, level = 0, 1
        for d in range(depth if depth is not None else size):  # nodes the full tree would hold
            level *= per_level[d] if per_level else b
            total += level
            if size is not None and total >= size or total > _checks.MAX_TREE_NODES:
                break
        if size is not None and depth is not None and size > total:
            raise InvalidParameterError(
                f"size {size} exceeds the {total} nodes of the complete tree of depth {depth}; lower size or "
                "raise the depth")
        n = total if size is None else size
        _check_nodes("the k-ary tree's size", n)
        parents: list[int] = []
        frontier, d = [-1], 0
        while len(parents) < n:
            kids = per_level[d] if per_level else b
            nxt = []
            for p in frontier:
                for _ in range(kids):
                    if len(parents) == n:
                        break
                    parents.append(p)
                    nxt.append(len(parents) - 1)
            frontier, d = nxt, d + 1
        return cls(tuple(parents))

    # properties -----------------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Draft nodes (the root excluded)."""
        return len(self.parents)

    @property
    def width(self) -> int:
        """Tokens in the verification forward: the drafts plus the root, ``size + 1``."""
        return self.size + 1

    @property
    def depth(self) -> int:
        """The deepest node's depth (0 for an empty tree): the most drafts one verification can accept."""
        return int(self._depths.max(initial=0))

    @property
    def depths(self) -> np.ndarray:
        """Each node's depth (``1`` for the root's children), read-only."""
        return self._depths

    @property
    def ranks(self) -> np.ndarray:
        """Each node's sibling rank (``1`` for its parent's likeliest child), read-only."""
        return self._ranks

    @property
    def levels(self) -> tuple[int, ...]:
        """Nodes per depth ``1..depth``."""
        return tuple(np.bincount(self._depths, minlength=self.depth + 1)[1:].tolist())

    @property
    def draft_widths(self) -> tuple[int, ...]:
        """Tokens in each of the drafter's forwards when it drafts one level per forward (EAGLE-style).

        Forward ``ℓ`` (``ℓ = 1..depth``) reads the nodes of depth ``ℓ − 1`` that have
        children (the root for ``ℓ = 1``) and proposes depth ``ℓ``.
        """
        if self.size == 0:
            return ()
        has_kids = self._n_children[:-1] > 0
        per_depth = np.bincount(self._depths[has_kids], minlength=self.depth)[: self.depth]
        per_depth[0] = 1  # the root
        return tuple(per_depth.tolist())

    @property
    def shape(self) -> tuple:
        """The tree as nested tuples, children in rank order: ``chain(2).shape == (((),),)``.

        Two trees with equal shapes are the same tree up to the order their nodes are listed in.
        """
        kids: list[list[tuple]] = [[] for _ in range(self.size + 1)]
        for i in range(self.size - 1, -1, -1):  # children before parents, so each node's shape is complete
            kids[self.parents[i]].append(tuple(reversed(kids[i])))
        return tuple(reversed(kids[-1]))

    def __repr__(self) -> str:
        tail = f", parents={self.parents}" if self.size <= 24 else ""
        return f"TokenTree(size={self.size}, depth={self.depth}, levels={self.levels}{tail})"

    def _ancestors(self) -> np.ndarray:
        """``anc[v, d]``: node ``v``'s ancestor at depth ``d`` (itself at its own depth; ``-1`` below it)."""
        anc = np.full((self.size, self.depth + 1), -1, dtype=np.int64)
        for i, par in enumerate(self.parents):
            if par >= 0:
                anc[i] = anc[par]
            anc[i, self._depths[i]] = i
        return anc


# -- acceptance ----------------------------------------------------------------------------------------------------


@runtime_checkable
class TreeAcceptance(Protocol):
    """What every tree acceptance law answers (``theory/trees.md`` states the convention).

    ``prob(depth, rank)``: the probability that, its parent accepted, a node of
    that depth (``1``: a child of the root) and sibling rank (``1``: the
    drafter's likeliest token) is *the* accepted child — vectorised over both.
    The ranks of one node's children are exclusive events: their probabilities
    sum to at most 1 at every depth.  ``max_rank``: ranks beyond it are never
    accepted.  ``depth_dependent``: whether ``prob`` changes with depth (the
    optimiser is faster when it does not).
    """

    @property
    def max_rank(self) -> int: ...

    @property
    def depth_dependent(self) -> bool: ...

    def prob(self, depth, rank) -> np.ndarray: ...


def _check_acceptance(acceptance: Any) -> TreeAcceptance:
    if isinstance(acceptance, TreeAcceptance):
        return acceptance
    raise InvalidParameterError(
        f"acceptance must be a tree acceptance law (e.g. PositionalTreeAcceptance((0.6, 0.2, 0.1)) or "
        f"PositionalTreeAcceptance.from_chain_rate(0.8)), got {acceptance!r}; a chain's rate a becomes "
        "PositionalTreeAcceptance.from_chain_rate(a)")


def _rank_table(acceptance: TreeAcceptance, depths: Sequence[int] | np.ndarray, ranks: int | None = None) -> np.ndarray:
    """``table[i, r - 1] = prob(depths[i], r)`` for ``r = 1..ranks`` (default ``max_rank``), checked."""
    m = int(acceptance.max_rank) if ranks is None else int(ranks)
    d = np.asarray(depths, dtype=np.int64).reshape(-1, 1)
    r = np.arange(1, m + 1, dtype=np.int64).reshape(1, -1)
    if d.size == 0 or m == 0:
        return np.zeros((d.shape[0], m))
    tab = np.broadcast_to(np.asarray(acceptance.prob(d, r), dtype=float), (d.shape[0], m))
    if not np.all((tab >= 0) & (tab <= 1)):
        raise InvalidParameterError("the acceptance law returned probabilities outside [0, 1]; fix its prob()")
    sums = tab.sum(axis=1)
    if np.any(sums > 1 + _SUM_TOL):
        i = int(np.argmax(sums))
        raise InvalidParameterError(
            f"the acceptance law's rank probabilities at depth {int(d[i, 0])} sum to {sums[i]:.6g} > 1; p_r is the "
            "probability that the rank-r child is *the* accepted one, so a node's p_r sum to at most 1")
    return tab


def _conditional_to_positional(h: np.ndarray) -> np.ndarray:
    """``p_r = h_r Π_{s<r} (1 − h_s)`` along the last axis."""
    survive = np.cumprod(1.0 - h, axis=-1)
    before = np.concatenate([np.ones(h.shape[:-1] + (1,)), survive[..., :-1]], axis=-1)
    return h * before


@dataclass(frozen=True)
class PositionalTreeAcceptance:
    """Sequoia's positional acceptance vector, optionally by depth: ``p_r(d)``.

    ``rank_probs[r − 1] = p_r``: given its parent is accepted, the probability
    that the parent's rank-``r`` child is the accepted one (so the chance that
    any of ``m`` children is accepted is ``Σ_{r ≤ m} p_r``, at most 1).  Ranks
    beyond the vector are never accepted.  A 2-D ``rank_probs`` gives one row per
    depth (row ``d − 1`` for depth ``d``; the last row serves every deeper level;
    short rows are padded with zeros).  ``depth_decay`` multiplies every
    probability at depth ``d`` by ``depth_decay^(d − 1)`` (acceptance that fades
    with the distance from the verified prefix).

    ``p(d, r) = rank_probs[min(d, rows) − 1][r − 1] · depth_decay^(d − 1)``.

    >>> law = PositionalTreeAcceptance((0.5, 0.25), depth_decay=0.5)
    >>> law.prob([1, 2, 3], 1).tolist(), float(law.prob(1, 3))
    ([0.5, 0.25, 0.125], 0.0)
    >>> PositionalTreeAcceptance.from_chain_rate(0.8, max_rank=3).rank_probs
    (0.8, 0.16..., 0.032...)
    """

    rank_probs: tuple
    depth_decay: float = 1.0

    def __post_init__(self) -> None:
        raw = self.rank_probs
        rows = None
        if isinstance(raw, (int, float, np.number)):
            raise InvalidParameterError(
                f"rank_probs must be a sequence (p_1, p_2, ...), got {raw!r}; a chain's rate a becomes "
                "PositionalTreeAcceptance.from_chain_rate(a), or give (a,) for a law that never accepts a second child")
        if isinstance(raw, np.ndarray) and raw.ndim <= 1 or not isinstance(raw, np.ndarray) and not any(
                isinstance(x, (list, tuple, np.ndarray)) for x in raw):
            arr = probability_array("rank_probs", raw)
            if arr.ndim != 1:
                raise InvalidParameterError("rank_probs must be a non-empty 1-D sequence (or one row per depth)")
            table = arr.reshape(1, -1)
            stored: tuple = tuple(float(x) for x in arr)
        else:  # one row per depth, possibly of different lengths
            rows = [probability_array(f"rank_probs[{i}]", row) for i, row in enumerate(raw)]
            if not rows or any(r.ndim != 1 for r in rows):
                raise InvalidParameterError("rank_probs by depth must be a non-empty list of non-empty 1-D rows")
            width = max(r.size for r in rows)
            table = np.zeros((len(rows), width))
            for i, r in enumerate(rows):
                table[i, : r.size] = r
            stored = tuple(tuple(float(x) for x in r) for r in rows)
        sums = table.sum(axis=1)
        if np.any(sums > 1 + _SUM_TOL):
            i = int(np.argmax(sums))
            where = f" (depth {i + 1})" if rows is not None else ""
            raise InvalidParameterError(
                f"rank_probs{where} sum to {sums[i]:.6g} > 1: p_r is the probability that the rank-r child is "
                "*the* accepted one (at most one child is), so they sum to at most 1 — the chance that any child "
                "is accepted.  Per-sibling rates h_r (accepted given the earlier siblings rejected) convert with "
                "PositionalTreeAcceptance.from_conditional(h)")
        decay = finite_nonneg("depth_decay", self.depth_decay)
        if decay > 1:
            raise InvalidParameterError(
                f"depth_decay must lie in [0, 1], got {self.depth_decay!r}: it scales acceptance at depth d by "
                "depth_decay^(d − 1), and a factor above 1 would make probabilities exceed 1; give a per-depth "
                "table (one row per depth) for acceptance that rises with depth")
        table.setflags(write=False)
        object.__setattr__(self, "rank_probs", stored)
        object.__setattr__(self, "depth_decay", decay)
        object.__setattr__(self, "_table", table)

    # constructors ---------------------------------------------------------------------------------------------

    @classmethod
    def from_conditional(cls, rates: Sequence[float], depth_decay: float = 1.0) -> "PositionalTreeAcceptance":
        """From per-sibling rates ``h_r``: rank ``r`` accepted given ranks ``1..r−1`` were rejected.

        ``p_r = h_r Π_{s<r} (1 − h_s)`` (one row, or one row per depth).
        """
        h = [probability_array(f"rates[{i}]", row) for i, row in enumerate(rates)] if (
            len(rates) and isinstance(rates[0], (list, tuple, np.ndarray))) else None
        if h is None:
            return cls(tuple(_conditional_to_positional(probability_array("rates", rates)).tolist()), depth_decay)
        return cls(tuple(tuple(_conditional_to_positional(r).tolist()) for r in h), depth_decay)

    @classmethod
    def from_chain_rate(cls, a: float, max_rank: int = 8, sibling_rate: float | None = None,
                        depth_decay: float = 1.0) -> "PositionalTreeAcceptance":
        """A synthetic law from a chain's acceptance rate ``a``: ``p_1 = a``, ``p_r = (1 − a)(1 − b)^{r−2} b``.

        Each later sibling is accepted with probability ``b = sibling_rate``
        (default ``a``: every sibling in turn is as good a guess as the first)
        given that the earlier ones were rejected, up to ``max_rank`` siblings.
        With the default the children of a node cover almost everything
        (``1 − (1 − a)^{max_rank}``), which flatters wide trees; a real drafter's
        second and third guesses are worth less: lower ``sibling_rate``, or
        :meth:`fit` the law to a recorded trace.
        """
        a = float(probability_array("a", [a])[0])
        b = a if sibling_rate is None else float(probability_array("sibling_rate", [sibling_rate])[0])
        m = int_at_least("max_rank", max_rank, 1)
        return cls.from_conditional([a] + [b] * (m - 1), depth_decay)

    @classmethod
    def from_distributions(cls, target_probs, drafter_probs, max_rank: int = 8) -> "PositionalTreeAcceptance":
        """``p_r = P(the target's token is the drafter's r-th likeliest token)``, averaged over contexts.

        ``target_probs`` and ``drafter_probs``: one next-token law each over one
        vocabulary, or one row per context (``(contexts, V)``).  This is the exact
        law of a tree whose children are the drafter's top tokens, verified by
        sampling the target's token and following the child equal to it (lossless:
        the emitted token is the target's own sample; at temperature 0, one-hot
        target rows, it is greedy tree decoding).  Ties in the drafter's order go
        to the smaller token id.  Using the same vector at every depth is
        Sequoia's positional assumption.

        >>> law = PositionalTreeAcceptance.from_distributions([0.5, 0.3, 0.2], [0.1, 0.6, 0.3])
        >>> law.rank_probs      # drafter order: token 1, token 2, token 0
        (0.3, 0.2, 0.5)
        """
        from .sampling.core import check_pair

        p, q = check_pair(np.atleast_2d(np.asarray(target_probs, dtype=float)),
                          np.atleast_2d(np.asarray(drafter_probs, dtype=float)), ("target_probs", "drafter_probs"))
        if p.ndim != 2 or p.shape != q.shape:
            raise InvalidParameterError(
                f"target_probs and drafter_probs must both be (V,) or (contexts, V), got {np.shape(target_probs)} "
                f"and {np.shape(drafter_probs)}")
        m = min(int_at_least("max_rank", max_rank, 1), p.shape[1])
        order = np.argsort(-q, axis=1, kind="stable")[:, :m]
        vec = np.take_along_axis(p, order, axis=1).mean(axis=0)
        return cls(tuple(float(x) for x in vec))

    @classmethod
    def fit(cls, rounds, *, by_depth: bool = False, max_rank: int | None = None) -> "PositionalTreeAcceptance":
        """The law estimated from recorded tree verifications.

        ``rounds``: a :class:`TreeRounds` (what :func:`simulate_tree` returns), a
        list of them, or a list of ``(tree, accepted)`` pairs with ``accepted`` a
        boolean array ``(rounds, tree.size)`` (or ``(tree.size,)``) of per-node
        outcomes — the accepted nodes of a round form one path from the root.

        Estimator (Kaplan–Meier over sibling ranks): a rank-``r`` node is *at
        risk* when its parent was accepted and ranks ``1..r−1`` were rejected;
        ``h_r = accepted / at risk``, pooled over depths (or per depth with
        ``by_depth=True``), and ``p_r = h_r Π_{s<r}(1 − h_s)`` — which sums to at
        most 1 whatever the data.  Ranks never at risk end the vector (nothing is
        known about them); ``max_rank`` cuts it shorter.
        """
        if max_rank is not None:
            max_rank = int_at_least("max_rank", max_rank, 1)
        pairs = _as_pairs(rounds)
        trials: dict[tuple[int, int], int] = {}
        wins: dict[tuple[int, int], int] = {}
        for k, (tree, acc) in enumerate(pairs):
            risk = _at_risk(tree, acc, k)
            t = risk.sum(axis=0)
            w = (acc & risk).sum(axis=0)
            for i in range(tree.size):
                key = (int(tree.depths[i]) if by_depth else 1, int(tree.ranks[i]))
                trials[key] = trials.get(key, 0) + int(t[i])
                wins[key] = wins.get(key, 0) + int(w[i])
        rows = []
        for d in range(1, max((d for d, _ in trials), default=0) + 1):
            h = []
            r = 1
            while trials.get((d, r), 0) > 0 and (max_rank is None or r <= max_rank):
                h.append(wins[(d, r)] / trials[(d, r)])
                r += 1
            if not h:
                break  # no node of this depth was ever at risk: deeper rows are unknown
            rows.append(_conditional_to_positional(np.asarray(h)))
        if not rows:
            raise InvalidParameterError(
                "no node of the recorded rounds had its parent accepted (nothing to estimate); record rounds of "
                "non-empty trees")
        if not by_depth:
            return cls(tuple(rows[0].tolist()))
        return cls(tuple(tuple(r.tolist()) for r in rows))

    # the law ------------------------------------------------------------------------------------------------

    @property
    def max_rank(self) -> int:
        """Ranks beyond this are never accepted."""
        return int(self._table.shape[1])

    @property
    def depth_dependent(self) -> bool:
        """Whether the probabilities change with depth (a decay below 1, or rows that differ)."""
        return self.depth_decay != 1.0 or bool(np.any(self._table != self._table[0]))

    @property
    def chain_rate(self) -> float:
        """``p_1`` at depth 1: the acceptance rate of the drafter's top token, a chain's ``a``."""
        return float(self._table[0, 0])

    def prob(self, depth, rank) -> np.ndarray:
        """``p_rank(depth)``, vectorised (depths and ranks are integers >= 1; ranks past the vector give 0)."""
        d = np.asarray(depth)
        r = np.asarray(rank)
        if d.dtype.kind not in "iu" or r.dtype.kind not in "iu" or np.any(d < 1) or np.any(r < 1):
            raise InvalidParameterError(f"depth and rank must be integers >= 1, got depth={depth!r}, rank={rank!r}")
        rows, m = self._table.shape
        row = np.minimum(d, rows) - 1
        val = np.where(r <= m, self._table[row, np.minimum(r, m) - 1], 0.0)
        if self.depth_decay != 1.0:
            with np.errstate(under="ignore"):
                val = val * self.depth_decay ** (d - 1).astype(float)
        return val


def _as_pairs(rounds) -> list[tuple[TokenTree, np.ndarray]]:
    if isinstance(rounds, TreeRounds):
        rounds = [rounds]
    out = []
    for item in rounds:
        if isinstance(item, TreeRounds):
            out.append((item.tree, item.accepted))
            continue
        try:
            tree, acc = item
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"each recorded round must be a TreeRounds or a (tree, accepted) pair, got {item!r}") from None
        if not isinstance(tree, TokenTree):
            raise InvalidParameterError(f"the first item of each pair must be a TokenTree, got {tree!r}")
        a = np.asarray(acc)
        if a.ndim == 1:
            a = a.reshape(1, -1)
        if a.ndim != 2 or a.shape[1] != tree.size or (a.size and not np.isin(a, (0, 1)).all()):
            raise InvalidParameterError(
                f"accepted must be 0/1 outcomes of shape (rounds, {tree.size}) (one per node of the tree), got "
                f"shape {np.shape(acc)}")
        out.append((tree, a.astype(bool)))
    return out


def _at_risk(tree: TokenTree, acc: np.ndarray, which: int) -> np.ndarray:
    """``risk[:, i]``: node ``i``'s parent accepted and its lower-rank siblings rejected (checks the path rule)."""
    risk = np.zeros(acc.shape, dtype=bool)
    prev_sibling: dict[int, int] = {}
    for i, par in enumerate(tree.parents):
        base = np.ones(acc.shape[0], dtype=bool) if par < 0 else acc[:, par]
        prev = prev_sibling.get(par, -1)
        risk[:, i] = base if prev < 0 else risk[:, prev] & ~acc[:, prev]
        prev_sibling[par] = i
    bad = acc & ~risk
    if bad.any():
        r, i = (int(x[0]) for x in np.nonzero(bad))
        raise InvalidParameterError(
            f"recorded rounds {which}: round {r} accepts node {i} although its parent was rejected or a "
            "sibling was already accepted; the accepted nodes of a round must form one path from the root")
    return risk


# -- expected length and simulation ------------------------------------------------------------------------------


def _path_probs(tree: TokenTree, acceptance: TreeAcceptance) -> np.ndarray:
    """``Π_path p`` for every node: the probability that it is accepted."""
    if tree.size == 0:
        return np.zeros(0)
    tab = _rank_table(acceptance, np.arange(1, tree.depth + 1), int(tree.ranks.max()))
    p = tab[tree.depths - 1, tree.ranks - 1]
    path = np.empty(tree.size)
    par = np.asarray(tree.parents)
    for d in range(1, tree.depth + 1):  # one level at a time: parents are a level up
        at = np.flatnonzero(tree.depths == d)
        path[at] = p[at] if d == 1 else p[at] * path[par[at]]
    return path


def expected_accepted_length(tree: TokenTree, acceptance: TreeAcceptance) -> float:
    """Expected tokens one verification of ``tree`` yields: ``1 + Σ_nodes Π_path p``.

    The accepted drafts plus the target's own token (its correction, or the
    bonus token after a fully accepted path) — SI's "tokens per iteration".
    Derivation: ``theory/trees.md`` §1; tests
    ``tests/test_trees.py::test_closed_form_matches_simulation`` and
    ``::test_chain_is_si``.

    >>> law = PositionalTreeAcceptance((0.5,))
    >>> expected_accepted_length(TokenTree.chain(3), law)     # 1 + 1/2 + 1/4 + 1/8
    1.875
    """
    if not isinstance(tree, TokenTree):
        raise InvalidParameterError(f"tree must be a TokenTree, got {tree!r}")
    return float(1.0 + _path_probs(tree, _check_acceptance(acceptance)).sum())


@dataclass(frozen=True, repr=False, eq=False)
class TreeRounds:
    """Simulated (or recorded) verifications of one tree: ``node[i]`` is round ``i``'s deepest accepted node.

    ``-1``: no draft accepted.  ``tokens``: the tokens each round yields
    (accepted drafts + 1); ``accepted``: per-node outcomes ``(rounds, size)``,
    what :meth:`PositionalTreeAcceptance.fit` reads.
    """

    tree: TokenTree
    node: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.tree, TokenTree):
            raise InvalidParameterError(f"tree must be a TokenTree, got {self.tree!r}")
        node = np.array(self.node)
        if node.ndim != 1 or node.dtype.kind not in "iu" or np.any(node < -1) or np.any(node >= self.tree.size):
            raise InvalidParameterError(
                f"node must be a 1-D array of node indices in -1..{self.tree.size - 1} (each round's deepest "
                "accepted node, -1 for none)")
        node = node.astype(np.int64)
        node.setflags(write=False)
        object.__setattr__(self, "node", node)

    @property
    def tokens(self) -> np.ndarray:
        """Tokens each round yields: the accepted path's length plus the target's token."""
        depth = np.concatenate([self.tree.depths, [0]])  # node -1 reads the last entry: depth 0
        return depth[self.node] + 1

    @property
    def mean(self) -> float:
        """Mean tokens per round (estimates :func:`expected_accepted_length`)."""
        return float(self.tokens.mean())

    @property
    def standard_error(self) -> float:
        """Standard error of :attr:`mean` (rounds are independent)."""
        t = self.tokens
        return float(t.std(ddof=1) / math.sqrt(t.size)) if t.size > 1 else math.inf

    @property
    def accepted(self) -> np.ndarray:
        """Per-node outcomes ``(rounds, size)``: a node is accepted iff it lies on the round's accepted path."""
        n, size = self.node.size, self.tree.size
        check_work(f"per-node outcomes of rounds × nodes ({n} × {size})", 17.0 * n * size, _checks.MAX_DRAW_BYTES,
                   "fit on fewer rounds at a time", unit="bytes")
        if size == 0:
            return np.zeros((n, 0), dtype=bool)
        anc = self.tree._ancestors()
        last = np.where(self.node >= 0, self.node, 0)
        cols = anc[last][:, self.tree.depths]  # (rounds, size): the ancestor of the last node at each node's depth
        return (cols == np.arange(size)) & (self.node >= 0)[:, None]

    def __len__(self) -> int:
        return int(self.node.size)

    def __repr__(self) -> str:
        return f"TreeRounds({len(self)} rounds of a tree of {self.tree.size} nodes, mean tokens {self.mean:.4g})"


def simulate_tree(tree: TokenTree, acceptance: TreeAcceptance, rng=None, n: int = 10_000) -> TreeRounds:
    """``n`` verifications of ``tree`` by Monte Carlo: walk down from the root, one uniform per level.

    At an accepted node with children of ranks ``1..m`` (at depth ``d``), one
    uniform ``U`` picks the accepted child: rank ``r`` if
    ``Σ_{s<r} p_s(d) ≤ U < Σ_{s≤r} p_s(d)``, none if ``U ≥ Σ_{s≤m} p_s(d)``.
    ``rng``: a Generator, a seed or None.

    >>> rounds = simulate_tree(TokenTree.k_ary(2, depth=3), PositionalTreeAcceptance((0.5, 0.25)), rng=0, n=4)
    >>> rounds.node.tolist(), rounds.tokens.tolist()
    ([1, 0, 9, 3], [2, 2, 4, 3])
    """
    if not isinstance(tree, TokenTree):
        raise InvalidParameterError(f"tree must be a TokenTree, got {tree!r}")
    acceptance = _check_acceptance(acceptance)
    rng = np.random.default_rng(check_rng(rng))
    n = int_at_least("n", n, 1, "simulate at least one round")
    last = np.full(n, -1, dtype=np.int64)
    if tree.size == 0:
        return TreeRounds(tree, last)
    width = int(tree._n_children.max())
    check_work(f"simulate_tree's rounds × children table ({n} × {width})", 16.0 * n * width,
               _checks.MAX_DRAW_BYTES, "simulate fewer rounds per call and combine them", unit="bytes")
    tab = _rank_table(acceptance, np.arange(1, tree.depth + 1), width)
    root = tree.size  # row of the root in the tables below
    kids = np.full((tree.size + 1, width), -1, dtype=np.int64)
    cum = np.zeros((tree.size + 1, width))
    node_depth = np.concatenate([tree.depths, [0]])
    fill = np.zeros(tree.size + 1, dtype=np.int64)
    for i, par in enumerate(tree.parents):
        row = root if par < 0 else par
        kids[row, fill[row]] = i
        fill[row] += 1
    for row in range(tree.size + 1):
        m = int(fill[row])
        if m:
            c = np.cumsum(tab[node_depth[row], :m])  # children sit one level below: row depth + 1 → index depth
            cum[row, :m] = c
            cum[row, m:] = c[-1]  # U beyond the total: no child accepted
    cur = np.full(n, root, dtype=np.int64)
    alive = np.arange(n)
    for _ in range(tree.depth):
        if alive.size == 0:
            break
        u = rng.random(alive.size)
        pick = (cum[cur[alive]] <= u[:, None]).sum(axis=1)
        ok = pick < fill[cur[alive]]
        alive = alive[ok]
        child = kids[cur[alive], pick[ok]]
        cur[alive] = child
        last[alive] = child
    return TreeRounds(tree, last)


# -- Sequoia's dynamic program -------------------------------------------------------------------------------------


@dataclass
class _Tables:
    """The DP's tables, one entry per level (a single entry: the same at every level)."""

    values: list[np.ndarray]  # values[l][n]: best 1 + Σ Π p of a subtree of at most n nodes rooted at level l
    choice: list[np.ndarray]  # choice[l][b]: children of that root when b = n − 1 nodes lie below it
    split: list[np.ndarray]   # split[l][j, b]: nodes under child j when children 1..j share b nodes

    def at(self, level: int) -> int:
        return min(level, len(self.values) - 1)

    def tree(self, n_nodes: int, level: int = 0) -> TokenTree:
        """The optimal tree of at most ``n_nodes`` draft nodes whose root sits at ``level``, breadth first."""
        parents: list[int] = []
        queue = deque([(-1, level, n_nodes + 1)])
        while queue:
            node, lvl, size = queue.popleft()
            k = self.at(lvl)
            b = size - 1
            j = int(self.choice[k][b])
            sizes = [0] * j
            for r in range(j, 0, -1):
                x = int(self.split[k][r, b])
                sizes[r - 1] = x
                b -= x
            for x in sizes:
                parents.append(node)
                queue.append((len(parents) - 1, lvl + 1, x))
        return TokenTree(tuple(parents))


def _level(t_next: np.ndarray, p: np.ndarray, n_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One level of the DP: from ``t_next`` (subtrees one level deeper) and their rank probabilities ``p``.

    ``E_j[b]`` = best ``Σ_{r≤j} p_r T_next[x_r]`` over children ``1..j`` holding at most
    ``b`` nodes in all (``E_0 = 0``); ``T[n] = 1 + max_j E_j[n − 1]``.  Ties go to fewer
    children, then to the smaller last child.
    """
    b = np.arange(n_max + 1)[:, None]
    x = np.arange(n_max + 1)[None, :]
    invalid = (x < 1) | (x > b)
    gather = np.where(invalid, 0, b - x)
    penalty = np.where(invalid, -np.inf, 0.0)
    rows = np.arange(n_max + 1)
    e = np.zeros(n_max + 1)
    best = np.zeros(n_max + 1)
    choice = np.zeros(n_max + 1, dtype=np.int32)
    split = np.zeros((p.size + 1, n_max + 1), dtype=np.int32)
    for j in range(1, p.size + 1):
        m = e[gather] + p[j - 1] * t_next[None, :] + penalty
        arg = m.argmax(axis=1)
        e = m[rows, arg]
        split[j] = arg
        better = e > best
        best[better] = e[better]
        choice[better] = j
    t = np.empty(n_max + 1)
    t[0] = 0.0  # never read: a child holds at least one node
    t[1:] = 1.0 + best[:-1]
    return t, choice, split


def _levels_dp(tab: np.ndarray, n_max: int) -> _Tables:
    """Depth-capped DP: ``tab[d − 1]`` are the rank probabilities at depth ``d = 1..D``; levels ``0..D``."""
    depth = tab.shape[0]
    leaf = np.ones(n_max + 1)
    leaf[0] = 0.0
    values = [leaf]
    choice = [np.zeros(n_max + 1, dtype=np.int32)]
    split = [np.zeros((1, n_max + 1), dtype=np.int32)]
    for d in range(depth - 1, -1, -1):  # level d's children sit at depth d + 1: tab[d]
        t, c, s = _level(values[0], tab[d], n_max)
        values.insert(0, t)
        choice.insert(0, c)
        split.insert(0, s)
    return _Tables(values, choice, split)


def _unbounded_dp(p: np.ndarray, n_max: int) -> _Tables:
    """Depth-free DP for a depth-independent law: ``T[n]`` from ``T[1..n−1]``, in ``O(m n²)``."""
    m = p.size
    t = np.zeros(n_max + 1)
    if n_max >= 1:
        t[1] = 1.0
    e = np.full((m + 1, n_max + 1), -np.inf)
    e[0] = 0.0
    choice = np.zeros(n_max + 1, dtype=np.int32)
    split = np.zeros((m + 1, n_max + 1), dtype=np.int32)
    for n in range(2, n_max + 1):
        b = n - 1
        jm = min(m, b)
        best = 0.0
        if jm:
            xs = np.arange(1, b + 1)
            vals = e[:jm, b - xs] + p[:jm, None] * t[xs][None, :]
            arg = vals.argmax(axis=1)
            ej = vals[np.arange(jm), arg]
            e[1: jm + 1, b] = ej
            split[1: jm + 1, b] = xs[arg]
            k = int(np.argmax(ej))
            if ej[k] > 0.0:
                best, choice[b] = float(ej[k]), k + 1
        t[n] = 1.0 + best
    return _Tables([t], [choice], [split])


def _useful_ranks(tab: np.ndarray, budget: int) -> int:
    """Ranks the DP must consider: up to the last one with a positive probability, at most ``budget``."""
    positive = np.flatnonzero(tab.max(axis=0, initial=0.0) > 0) if tab.size else np.zeros(0, dtype=int)
    return min(int(positive[-1]) + 1 if positive.size else 0, budget)


def _dp_work(levels: float, ranks: int, n_max: int, what: str, hint: str) -> None:
    work = float(levels) * max(ranks, 1) * (n_max + 1) ** 2
    check_work(f"{what} (≈ levels × ranks × (budget + 1)² = {levels:g} × {max(ranks, 1)} × {n_max + 1}²)", work,
               _checks.MAX_TREE_DP_WORK, hint, unit="operations")


def _depth_cap(max_depth, budget: int) -> int:
    if max_depth is None:
        return budget
    return min(int_at_least("max_depth", max_depth, 0, "max_depth bounds the tree's depth (0: no drafts)"), budget)


def optimal_tree(budget: int, acceptance: TreeAcceptance, max_depth: int | None = None) -> TokenTree:
    """The tree of at most ``budget`` draft nodes (and depth at most ``max_depth``) that maximises
    :func:`expected_accepted_length` — Sequoia's dynamic program.

    ``T(n, d)`` (the best ``1 + Σ Π p`` of a subtree of at most ``n`` nodes whose
    root sits at depth ``d``) is ``1 + max_j E_j(n − 1)``, where ``E_j`` shares the
    nodes below the root among its children of ranks ``1..j`` (a knapsack over
    ranks).  ``O(m n²)`` for a depth-independent law without a depth cap,
    ``O(D m n²)`` otherwise (``m`` useful ranks, ``D`` the cap).  Ties go to fewer
    children.  Derivation: ``theory/trees.md`` §2; test
    ``tests/test_trees.py::test_dp_matches_brute_force``.

    >>> law = PositionalTreeAcceptance((0.5, 0.25))
    >>> optimal_tree(3, law).shape           # two children of the root, one grandchild under the first
    (((),), ())
    >>> expected_accepted_length(optimal_tree(3, law), law)
    2.0
    """
    acceptance = _check_acceptance(acceptance)
    budget = int_at_least("budget", budget, 0, "the budget is the number of draft nodes (0: no drafts)")
    cap = _depth_cap(max_depth, budget)
    if budget == 0 or cap == 0:
        return TokenTree(())
    _check_nodes("the budget", budget)
    m0 = min(int(acceptance.max_rank), budget)
    hint = (f"lower the budget (at most {int(math.sqrt(_checks.MAX_TREE_DP_WORK / max(m0, 1)))} nodes fit without a "
            "depth cap), give max_depth, or use a law with fewer ranks")
    if not acceptance.depth_dependent and cap >= budget:
        _dp_work(0.5, m0, budget + 1, "optimal_tree's dynamic program", hint)
        p = _rank_table(acceptance, [1], m0)[0]
        p = p[: _useful_ranks(p[None, :], budget)]
        return _unbounded_dp(p, budget + 1).tree(budget)
    _dp_work(cap, m0, budget + 1, "optimal_tree's dynamic program", hint)
    tab = _rank_table(acceptance, np.arange(1, cap + 1), m0)
    tab = tab[:, : _useful_ranks(tab, budget)]
    return _levels_dp(tab, budget + 1).tree(budget)


# -- the best tree for the hardware ----------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class TreeChoice(TableRecord):
    """The best tree for a latency model: its budget, the tree and the time per token it buys.

    ``expected_length``: tokens per verification; ``draft_ms``: the drafter's
    forwards (one per level, EAGLE-style); ``verify_ms``: one target forward of
    ``tree.width`` tokens; ``ms_per_token = (draft_ms + verify_ms)/expected_length``;
    ``baseline_ms``: one target forward of one token (decoding without drafts).
    ``per_budget``: the best choice at every budget searched, smallest first.
    """

    budget: int
    tree: TokenTree
    expected_length: float
    draft_ms: float
    verify_ms: float
    ms_per_token: float
    baseline_ms: float
    per_budget: tuple = ()

    @property
    def speedup(self) -> float:
        """``baseline_ms / ms_per_token``: how much faster than decoding token by token."""
        return self.baseline_ms / self.ms_per_token

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "size": self.tree.size, "depth": self.tree.depth,
                "expected_length": self.expected_length, "draft_ms": self.draft_ms, "verify_ms": self.verify_ms,
                "ms_per_token": self.ms_per_token, "speedup": self.speedup}

    def rows(self) -> list[dict[str, Any]]:
        """One dict per budget searched (``to_dict`` of each entry of :attr:`per_budget`)."""
        return [c.to_dict() for c in (self.per_budget or (self,))]

    def to_frame(self):
        """:meth:`rows` as a pandas DataFrame (needs pandas)."""
        return to_frame(self.rows())

    def _table(self):
        head = (f"best tree: budget {self.budget} ({self.tree.size} nodes, depth {self.tree.depth}), "
                f"{self.ms_per_token:.4g} ms per token, speedup {self.speedup:.3g}x")
        headers = ["nodes", "depth", "E[length]", "draft ms", "verify ms", "ms/token", "speedup"]
        rows = [(f"budget {c.budget}" + (" *" if c.budget == self.budget else ""),
                 [c.tree.size, c.tree.depth, c.expected_length, c.draft_ms, c.verify_ms, c.ms_per_token,
                  c.speedup]) for c in (self.per_budget or (self,))]
        return head, headers, rows, ["* the best budget"]

    def __repr__(self) -> str:
        return (f"TreeChoice(budget={self.budget}, tree={self.tree!r}, expected_length={self.expected_length:.6g}, "
                f"ms_per_token={self.ms_per_token:.6g})")


def _draft_ms(tree: TokenTree, drafter, context_len: int) -> float:
    return float(sum(float(np.asarray(drafter.forward(w, context_len + level)))
                     for level, w in enumerate(tree.draft_widths)))


def best_tree(acceptance: TreeAcceptance, target, drafter, budgets: Iterable[int] = range(0, 65),
              context_len: int = 0, max_depth: int | None = None) -> TreeChoice:
    """The budget and tree that minimise the time per token on the given latency models.

    For every budget ``n`` and depth cap ``h ≤ n`` the optimal tree of
    :func:`optimal_tree` is priced as ``(draft + verify) / E[accepted length]``:
    the drafter drafts one level per forward, forward ``ℓ`` reading the tree's
    ``draft_widths[ℓ − 1]`` tokens on ``context_len + ℓ − 1`` of context
    (EAGLE-style), and the target verifies all ``n + 1`` tokens in one forward
    ``target.forward(tree.width, context_len)``.  Searching the depth as well as
    the size is Sequoia's hardware-aware choice: a deep tree costs drafter
    forwards, a wide one a wider verification.  Budget 0 is decoding without
    drafts.  Ties go to the smaller budget, then to the shallower tree.

    The search is exact when the drafter's forward does not depend on its width
    (a constant drafter, Sequoia's model: drafting costs ``depth`` forwards) and
    the target's is non-decreasing in width; otherwise it is the best of the
    DP's trees.  Random latency models are priced by their means (long-run time
    per token is a ratio of means).  A measured profile is extrapolated flat
    beyond its widths (with a warning): search budgets it measured.

    >>> from simspec import ConstantLatency, AffineLatency
    >>> law = PositionalTreeAcceptance((0.5, 0.25))
    >>> fast = ConstantLatency(tpot_ms=1.0)
    >>> [best_tree(law, AffineLatency(10.0, s), fast, budgets=range(4)).budget for s in (0.0, 2.0, 5.0)]
    [3, 2, 0]
    """
    acceptance = _check_acceptance(acceptance)
    check_latency_model("target", target)
    check_latency_model("drafter", drafter)
    context_len = int_at_least("context_len", context_len, 0)
    try:
        wanted = sorted({int_at_least("budgets[i]", b, 0, "a budget is a number of draft nodes") for b in budgets})
    except TypeError:
        raise InvalidParameterError(f"budgets must be an iterable of integers >= 0, got {budgets!r}") from None
    if not wanted:
        raise InvalidParameterError("budgets is empty; give the node budgets to search, e.g. range(0, 65)")
    n_max = wanted[-1]
    _check_nodes("the largest budget", n_max)
    cap = _depth_cap(max_depth, n_max)
    m0 = min(int(acceptance.max_rank), max(n_max, 1))
    hint = "search fewer or smaller budgets, or give max_depth (Sequoia's trees are rarely deeper than 10–15)"
    if acceptance.depth_dependent:
        _dp_work(cap * (cap + 1) / 2, m0, n_max + 1, "best_tree's dynamic programs (one per depth cap)", hint)
    else:
        _dp_work(cap, m0, n_max + 1, "best_tree's dynamic program", hint)

    baseline = float(np.asarray(target.forward(1, context_len)))
    priced: dict[tuple[int, ...], TreeChoice] = {}

    def price(budget: int, tree: TokenTree) -> TreeChoice:
        hit = priced.get(tree.parents)
        if hit is None:
            e = expected_accepted_length(tree, acceptance)
            draft = _draft_ms(tree, drafter, context_len)
            verify = float(np.asarray(target.forward(tree.width, context_len)))
            hit = TreeChoice(budget, tree, e, draft, verify, (draft + verify) / e, baseline)
            priced[tree.parents] = hit
        elif hit.budget != budget:
            hit = TreeChoice(budget, hit.tree, hit.expected_length, hit.draft_ms, hit.verify_ms, hit.ms_per_token,
                             baseline)
        return hit

    def key(c: TreeChoice):
        return (c.ms_per_token, c.budget, c.tree.depth)

    best_at: dict[int, TreeChoice] = {}

    def offer(c: TreeChoice) -> None:
        if c.budget not in best_at or key(c) < key(best_at[c.budget]):
            best_at[c.budget] = c

    for n in wanted:
        if n == 0 or cap == 0:
            offer(price(n, TokenTree(())))
    if cap > 0 and n_max > 0:
        if acceptance.depth_dependent:
            full = _rank_table(acceptance, np.arange(1, cap + 1), m0)
            for h in range(1, cap + 1):
                tab = full[:h, : _useful_ranks(full[:h], n_max)]
                tables = _levels_dp(tab, n_max + 1)
                for n in wanted:
                    if n >= h:
                        offer(price(n, tables.tree(n)))
        else:
            p = _rank_table(acceptance, [1], m0)
            p = p[:, : _useful_ranks(p, n_max)]
            tables = _levels_dp(np.repeat(p, cap, axis=0), n_max + 1)  # level cap − h holds the cap-h tables
            for n in wanted:
                for h in range(1, min(n, cap) + 1):
                    offer(price(n, tables.tree(n, level=cap - h)))
    per_budget = tuple(best_at[n] for n in wanted)
    best = min(per_budget, key=key)
    return TreeChoice(best.budget, best.tree, best.expected_length, best.draft_ms, best.verify_ms,
                      best.ms_per_token, baseline, per_budget)


# -- EAGLE-2's dynamic trees ----------------------------------------------------------------------------------------


def dynamic_tree(budget: int, drafter_probs: Union[Callable[[tuple[int, ...]], Sequence[float]], TreeAcceptance], *,
                 top_k: int = 10, depth: int = 6) -> TokenTree:
    """EAGLE-2's draft tree: expand by confidence, then keep the ``budget`` most confident nodes.

    A node's *confidence* is the product of the drafter's probabilities along its
    path (the root's is 1).  ``drafter_probs(path)`` gives the drafter's
    probabilities of the children of the node reached by ``path`` (a tuple of
    sibling ranks from the root: ``()`` is the root, ``(1, 2)`` the second child
    of the root's first child); they are sorted in decreasing order, the first
    ``top_k`` kept, zeros dropped.  A tree acceptance law stands for a
    calibrated drafter: its rank probabilities at the child's depth (which must
    then not increase with the rank: a drafter ranks its tokens by probability).

    *Expansion*: for ``depth`` steps, the ``top_k`` most confident nodes of the
    newest level each get their ``top_k`` likeliest children.  *Reranking*: of
    all the nodes drafted, the ``budget`` most confident are kept.  Ties go to the
    node drafted first (shallower, then lower rank), so a kept node's parent and
    lower-rank siblings — never less confident — are kept too: the result is a
    tree.  Deterministic given the probabilities.

    >>> probs = {(): [0.5, 0.25, 0.125], (1,): [0.5, 0.375], (2,): [0.75]}
    >>> dynamic_tree(4, lambda path: probs.get(path, [0.5]), top_k=2, depth=2)
    TokenTree(size=4, depth=2, levels=(2, 2), parents=(-1, -1, 0, 0))
    """
    budget = int_at_least("budget", budget, 0, "the budget is the number of draft nodes kept")
    top_k = int_at_least("top_k", top_k, 1, "each expanded node needs at least one child")
    depth = int_at_least("depth", depth, 0)
    _check_nodes("the nodes dynamic_tree may draft (top_k + (depth − 1) × top_k²)",
                 top_k + max(depth - 1, 0) * top_k * top_k)
    if isinstance(drafter_probs, TreeAcceptance):
        law = drafter_probs
        tab = _rank_table(law, np.arange(1, depth + 1)) if depth else np.zeros((0, 0))
        rising = np.flatnonzero(np.any(np.diff(tab, axis=1) > 0, axis=1)) if tab.size else []
        if len(rising):
            raise InvalidParameterError(
                f"the law's rank probabilities rise with the rank at depth {int(rising[0]) + 1}, so it cannot stand "
                "for a calibrated drafter (which ranks its tokens by probability); give drafter_probs as a "
                "function of the path")

        def probs_of(path: tuple[int, ...]) -> np.ndarray:
            return tab[len(path)]
    elif callable(drafter_probs):
        def probs_of(path: tuple[int, ...]) -> np.ndarray:
            q = probability_array(f"drafter_probs{path!r}", drafter_probs(path))
            if q.ndim != 1:
                raise InvalidParameterError(f"drafter_probs{path!r} must return a 1-D sequence of probabilities")
            if q.sum() > 1 + _SUM_TOL:
                raise InvalidParameterError(
                    f"drafter_probs{path!r} sums to {q.sum():.6g} > 1: give the drafter's probabilities of the "
                    "node's children (a part of one next-token law)")
            return q
    else:
        raise InvalidParameterError(
            f"drafter_probs must be a function path -> probabilities of the children, or a tree acceptance law; "
            f"got {drafter_probs!r}")
    parents: list[int] = []
    score: list[float] = []
    paths: list[tuple[int, ...]] = []
    layer = [-1]
    for _ in range(depth):
        ranked = sorted(layer, key=lambda v: (-(1.0 if v < 0 else score[v]), v))[:top_k]
        new = []
        for v in sorted(ranked):  # expand in drafting order: parents first, so indices stay topological
            path, conf = ((), 1.0) if v < 0 else (paths[v], score[v])
            q = np.sort(probs_of(path))[::-1][:top_k]
            for r, qr in enumerate(q[q > 0].tolist(), start=1):
                parents.append(v)
                score.append(conf * qr)
                paths.append(path + (r,))
                new.append(len(parents) - 1)
        layer = new
        if not layer:
            break
    keep = sorted(sorted(range(len(parents)), key=lambda i: (-score[i], i))[:budget])
    index = {old: new for new, old in enumerate(keep)}
    return TokenTree(tuple(-1 if parents[i] < 0 else index[parents[i]] for i in keep))
