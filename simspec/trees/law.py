"""Tree acceptance: the positional law of which child is accepted (Sequoia's acceptance vector).

Part of :mod:`simspec.trees` (the papers and the model are named there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from .._checks import finite_nonneg, int_at_least, probability_array
from ..errors import InvalidParameterError
from .shapes import TokenTree


_SUM_TOL = 1e-9  # rank probabilities of one node's children may sum to 1 + this (rounding of fitted values)


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
        from ..sampling.core import check_pair

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
    from .length import TreeRounds  # (length builds on this module)

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
