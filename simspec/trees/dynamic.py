"""EAGLE-2's dynamic trees, grown by the drafter's confidence.

Part of :mod:`simspec.trees` (the papers and the model are named there).
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import numpy as np

from .._checks import int_at_least, probability_array
from ..errors import InvalidParameterError
from .law import TreeAcceptance, _SUM_TOL, _rank_table
from .shapes import TokenTree, _check_nodes


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
