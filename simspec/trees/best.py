"""The best tree for the hardware: budget and shape that minimise the time per token on latency models.

Part of :mod:`simspec.trees` (the papers and the model are named there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .._checks import int_at_least
from ..errors import InvalidParameterError
from ..latency import check_latency_model
from ..records import TableRecord, to_frame
from .law import TreeAcceptance, _check_acceptance, _rank_table
from .length import expected_accepted_length
from .optimal import _depth_cap, _dp_work, _levels_dp, _useful_ranks
from .shapes import TokenTree, _check_nodes


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

    >>> from simspec import ConstantLatency, AffineLatency, PositionalTreeAcceptance
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
