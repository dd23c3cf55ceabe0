"""A tree's expected accepted length in closed form, and its Monte Carlo.

Part of :mod:`simspec.trees` (the papers and the model are named there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _checks
from .._checks import check_rng, check_work, int_at_least
from ..errors import InvalidParameterError
from .law import TreeAcceptance, _check_acceptance, _rank_table
from .shapes import TokenTree


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

    >>> from simspec.trees import PositionalTreeAcceptance, TokenTree
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

    >>> from simspec.trees import PositionalTreeAcceptance, TokenTree
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
