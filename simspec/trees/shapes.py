"""Token trees: their shapes (:class:`TokenTree`).

Part of :mod:`simspec.trees` (the papers and the model are named there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from .. import _checks
from .._checks import check_work, int_at_least
from ..errors import InvalidParameterError


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
