"""Sequoia's dynamic program: the tree of a node budget with the longest expected accepted length.

Part of :mod:`simspec.trees` (the papers and the model are named there).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .. import _checks
from .._checks import check_work, int_at_least
from .law import TreeAcceptance, _check_acceptance, _rank_table
from .shapes import TokenTree, _check_nodes


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

    >>> from simspec.trees import PositionalTreeAcceptance, expected_accepted_length
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
