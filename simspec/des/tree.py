"""Tree SI on simulated servers: draft a token tree level by level, verify it in one forward.

SpecInfer (Miao et al. 2024), Sequoia (Chen et al. 2024), EAGLE-2 (Li et al. 2024). A round at
position ``p`` (the rules of :mod:`simspec.trees`, timed):

1. **drafting** — one drafter forward per level ``ℓ = 1..depth``, reading the tree's
   ``draft_widths[ℓ − 1]`` tokens on ``prompt + p + ℓ − 1`` of context (EAGLE-style);
2. **verification** — one target forward of the tree's ``width = size + 1`` tokens on
   ``prompt + p`` of context;
3. **the accepted path** — from the root, at depth ``d`` the rank-1 child is accepted iff the
   scenario's outcome at position ``p + d − 1`` is (the same outcomes SI and DSI read, so a
   chain tree is SI run by run); when it is rejected, the rank-``r`` sibling (``r ≥ 2``) is
   accepted with the tree law's conditional rate ``h_r = p_r / (1 − p_1 − … − p_{r−1})``, drawn
   from the run's random stream; the walk descends into the accepted child and stops at a
   node with no accepted child or at a leaf;
4. ``n`` accepted drafts emit ``n + 1`` tokens (the last the target's correction or bonus).

At the end of generation the tree is cut to the levels that fit (depth ``≤ S − p − 1``), as
SI cuts its lookahead.

Overheads (:class:`~simspec.Overheads`, ``docs/model.md`` §2): a round is SI's round with a
tree in place of the chain, and pays SI's overheads in SI's order —

* after the drafting phase, ``per_drafter_forward_ms`` per drafter forward (one per level,
  ``depth`` of them) and ``per_draft_token_ms`` per draft node (``size``), computed as
  ``depth·(per_draft_token_ms + per_drafter_forward_ms) + (size − depth)·per_draft_token_ms``;
* ``message_ms`` (the tree to the target), then ``startup_ms`` and the verification forward
  (both busy time, as in SI), then ``message_ms`` (the result back);
* ``per_round_ms + (n + 1)·per_emitted_token_ms`` for the round's ``n + 1`` emitted tokens;
* ``sync_ms`` after a rejection — the walk stopped at a node whose children were all
  rejected, so the last token is the target's correction, not a bonus — unless that token is
  the last of the run.

A chain tree (one node per level) pays exactly SI's ``k·(per_draft_token_ms +
per_drafter_forward_ms)``, the same timeouts in the same order: it is SI run by run, overheads
included.  Neither the drafting overhead nor the messages count as busy time.

Event log (``log``): SI's events at SI's moments — a drafting block ``[p, p + depth − 1]`` on the
``drafter`` lane, the tree's verification ``[p, p + depth]`` on ``server 0``, ``reject`` at the walk's
last position when it stopped inside the tree, ``confirm`` of the ``n + 1`` emitted positions — so a
chain tree's log is SI's, event for event.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import simpy

from ..errors import UnsupportedScenarioError
from ..latency import LatencyModel, sample_latency
from .dsi import DSIRun
from .config import Overheads
from .pool import active_log

__all__ = ["tree_process", "cut_tree", "tree_levels", "walk_tree", "hazards_of", "TreeSpec", "tree_spec", "TreeDSIRun"]


@lru_cache(maxsize=256)
def _structure(parents: tuple[int, ...]):
    """Children of the root and of each node, in rank order, and the tree's draft widths per level."""
    from ..trees import TokenTree

    tree = TokenTree(parents)
    kids: list[list[int]] = [[] for _ in range(len(parents) + 1)]  # kids[-1]: the root's
    for i, par in enumerate(parents):
        kids[par].append(i)
    return tree, kids, tree.draft_widths, tree.depths.tolist()


@lru_cache(maxsize=1024)
def cut_tree(parents: tuple[int, ...], max_depth: int) -> tuple[int, ...]:
    """The tree's nodes of depth ``<= max_depth``, re-indexed (parents still listed before children)."""
    _, _, _, depths = _structure(parents)
    keep = [i for i, d in enumerate(depths) if d <= max_depth]
    index = {old: new for new, old in enumerate(keep)}
    return tuple(-1 if parents[i] < 0 else index[parents[i]] for i in keep)


def tree_process(env: simpy.Environment, acc: np.ndarray, parents: tuple[int, ...], hazards: np.ndarray,
                 target: LatencyModel, drafter: LatencyModel, rng: np.random.Generator, prompt_len: int,
                 stats: dict, ov: Overheads | None = None, log=None):
    """Generator process of one tree-SI run; ``hazards[d − 1, r − 1]`` is ``h_r`` at depth ``d``."""
    ov = ov if ov is not None else Overheads()
    log = active_log(log)
    task = 0
    msg, sync, startup = ov.message_ms, ov.sync_ms, ov.startup_ms
    per_draft, per_token = ov.per_draft_ms, ov.per_draft_token_ms
    per_round, per_emit = ov.per_round_ms, ov.per_emitted_token_ms
    loop = per_round or per_emit
    S = acc.size
    ok = acc.tolist()
    pos = 0
    while pos < S:
        par, kids, widths = tree_levels(parents, S - pos - 1)
        d = sum(sample_latency(drafter, rng, w, prompt_len + pos + lvl) for lvl, w in enumerate(widths))
        depth = len(widths)
        if widths:
            if log:
                log(env.now, "draft_start", "drafter", None, (pos, pos + depth - 1))
            yield env.timeout(d)
            if log:
                log(env.now, "draft_end", "drafter", None, (pos, pos + depth - 1))
            stats["drafter_busy"] += d
            stats["drafts"] += len(par)
            if per_draft:  # a chain (size == depth) pays SI's k·per_draft, the very float
                yield env.timeout(len(widths) * per_draft + (len(par) - len(widths)) * per_token)
        if msg:
            yield env.timeout(msg)
        v = startup + sample_latency(target, rng, len(par) + 1, prompt_len + pos)
        task += 1
        if log:
            log(env.now, "verify_start", "server 0", task, (pos, pos + depth))
        yield env.timeout(v)
        if log:
            log(env.now, "verify_end", "server 0", task, (pos, pos + depth))
        stats["target_busy"] += v
        if msg:
            yield env.timeout(msg)
        stats["rounds"] += 1
        node, n = walk_tree(kids, hazards, ok, pos, rng)
        if loop:
            yield env.timeout(per_round + (n + 1) * per_emit)
        if kids[node]:  # the walk stopped where the tree went on: a rejection
            stats["rejections"] += 1
            if log:
                log(env.now, "reject", "drafter", None, (pos + n, pos + n))
            if sync and pos + n + 1 < S:
                yield env.timeout(sync)
        if log:
            log(env.now, "confirm", "server 0", task, (pos, pos + n))
        pos += n + 1
    if log:
        log(env.now, "done", "drafter", None, (S - 1, S - 1))


def walk_tree(kids, hazards: np.ndarray, ok, pos: int, rng: np.random.Generator) -> tuple[int, int]:
    """The accepted path of a round at ``pos`` (rule 3 of the module's docstring): its last node and length ``n``.

    ``kids[node]`` lists a node's children in rank order (``kids[-1]``: the root's); ``ok[j]`` is the outcome
    of the rank-1 draft at position ``j``; a rejected rank-1 draft's siblings are tried in rank order, each
    accepted at its conditional rate ``hazards[depth − 1, rank − 1]`` with one uniform from ``rng``.  The walk
    stopped inside the tree (a rejection) when ``kids[node]`` is not empty.
    """
    node, n = -1, 0
    while kids[node]:
        depth = n + 1
        chosen = None
        for r, child in enumerate(kids[node], start=1):
            if r == 1:
                if ok[pos + n]:
                    chosen = child
                    break
                continue
            row = hazards[min(depth, hazards.shape[0]) - 1]
            h = row[r - 1] if r - 1 < row.size else 0.0
            if h > 0 and rng.random() < h:
                chosen = child
                break
        if chosen is None:
            break
        node, n = chosen, n + 1
    return node, n


def tree_levels(parents: tuple[int, ...], room: int):
    """A round's tree cut to ``room`` levels (``cut_tree``), as ``(parents, kids, draft_widths)``."""
    full_depth = _structure(parents)[0].depth
    par = parents if full_depth <= room else cut_tree(parents, room)
    _, kids, widths, _ = _structure(par)
    return par, kids, widths


def hazards_of(law, depth: int, width: int) -> np.ndarray:
    """The tree law's conditional sibling rates ``h_r = p_r / (1 − Σ_{s<r} p_s)`` at depths ``1..depth``."""
    d = np.arange(1, max(depth, 1) + 1)[:, None]
    r = np.arange(1, max(width, 1) + 1)[None, :]
    p = np.asarray(law.prob(d, r), dtype=float)
    before = np.cumsum(p, axis=1) - p
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(1.0 - before > 1e-15, p / (1.0 - before), 0.0)
    return np.clip(h, 0.0, 1.0)


class TreeSpec:
    """What a tree run needs: the tree's parents, the law's sibling rates, and a label for the records."""

    __slots__ = ("parents", "hazards", "label", "tree", "law")

    def __init__(self, tree, law) -> None:
        from ..trees.law import _check_acceptance

        law = _check_acceptance(law)  # one named error for every engine that takes a tree law
        self.tree, self.law = tree, law
        self.parents = tuple(tree.parents)
        width = max(tree.ranks.max(initial=1), 1)
        self.hazards = hazards_of(law, max(tree.depth, 1), int(width))
        self.label = f"tree(size={tree.size}, depth={tree.depth})"


def tree_spec(scenario, tree=None, law=None) -> tuple[TreeSpec, str]:
    """The tree and law of a tree run: given, or the law from the scenario's acceptance rate
    (``PositionalTreeAcceptance.from_chain_rate``) and the best tree for its latency models (``best_tree``)."""
    from ..errors import InvalidParameterError
    from ..trees import PositionalTreeAcceptance, TokenTree, best_tree

    note = ""
    if law is None:
        law = PositionalTreeAcceptance.from_chain_rate(float(scenario.acceptance.mean))
        note = f"tree law: from_chain_rate({float(scenario.acceptance.mean):.3g}) (siblings at the same rate)"
    if tree is None:
        choice = best_tree(law, scenario.target, scenario.drafter, context_len=scenario.prompt_len)
        tree = choice.tree
        note += ("; " if note else "") + f"tree: best_tree's, budget {tree.size}, depth {tree.depth}"
    if not isinstance(tree, TokenTree):
        raise InvalidParameterError(f"tree must be a simspec.TokenTree, got {tree!r}")
    if tree.size == 0:
        raise InvalidParameterError("the tree is empty (budget 0: plain decoding); run 'nonsi', or give a tree")
    return TreeSpec(tree, law), note


def _rank1_depth(kids) -> int:
    """How deep the rank-1 path from the root goes."""
    node, d = -1, 0
    while kids[node]:
        node, d = kids[node][0], d + 1
    return d


class TreeDSIRun(DSIRun):
    """DSI whose verification tasks are token trees (SpecInfer-style trees in Timor et al.'s DSI).

    The drafter drafts the tree's rank-1 path continuously, ``k = depth`` drafts a block, as DSI
    drafts its chain; every task verifies the whole tree rooted at the block's start, one forward of
    the tree's ``width`` tokens.  A result whose first rejection ``j`` lies inside the block may be
    rescued: the rank-``r`` sibling at that depth is accepted at the tree law's conditional rate (the
    run's random stream), and the walk goes on in its subtree by the rules of :func:`tree_process`.
    The tokens emitted end at the walk's last position ``p + n`` (the target's correction or bonus),
    and — the drafter's speculation having followed the rank-1 path — the drafter restarts after it.
    The ``j``-th draft of a block is the drafter forward that drafts the tree's level ``j + 1``, reading
    ``draft_widths[j]`` tokens (the level above) on ``p + j`` of context, as tree SI drafts it: the rank-1
    chain's cost when the drafter's forward does not depend on its width. Per-emitted-token overheads are
    refused (the coordinator's hold would need the rescue before the result).
    """

    def __init__(self, *args, spec: TreeSpec, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _, kids, widths, _ = _structure(spec.parents)
        if _rank1_depth(kids) != len(widths):
            raise UnsupportedScenarioError(
                f"DSI drafts the tree's rank-1 path; {spec.label} is deeper off that path: give a tree whose "
                "first child at each level leads to its deepest level (k-ary and Sequoia's trees do)")
        self._widths = list(widths)
        if any(w != 1 for w in widths) and any(
                float(self.drafter.forward(w, self.prompt)) != float(self.drafter.forward(1, self.prompt))
                for w in set(widths)):
            # a level wider than one token costs more than the rank-1 draft: every block samples its drafts'
            # forwards (DSI's general drafting path) instead of the one-token constant
            self.d_const = self._step = self._block_dur = None
        if self.ov.per_emitted_token_ms:
            raise UnsupportedScenarioError("DSI with tree tasks does not model per_emitted_token_ms yet")
        self.spec = spec
        self._kids = kids
        self._width = len(spec.parents) + 1
        if self.t_const:
            self.v_const = float(self.target.forward(self._width, self.prompt))
            self._service = self.ov.startup_ms + self.v_const

    def _draft_time(self, p: int, j: int) -> float:
        w = self._widths[j] if j < len(self._widths) else 1
        return sample_latency(self.drafter, self.rng, w, self.prompt + p + j)

    def _verify_time(self, p: int, k: int) -> float:
        if self.v_const is not None:
            return self.v_const
        return sample_latency(self.target, self.rng, self._width, self.prompt + p)

    def _reject_in_task(self, task, j: int, now: float) -> None:
        p, kids, hz, ok = task.p, self._kids, self.spec.hazards, self._acc
        depth = j - p + 1  # the rejected draft's depth in the tree
        if depth > len(kids) or depth < 1:
            self._reject(j, now)
            return
        node = -1
        for _ in range(depth - 1):  # the rank-1 path down to the rejected draft's parent
            node = kids[node][0]
        n = depth - 1
        while True:
            chosen = None
            for r, child in enumerate(kids[node], start=1):
                if r == 1:
                    if n != depth - 1 and ok[p + n]:
                        chosen = child
                        break
                    continue
                row = hz[min(n + 1, hz.shape[0]) - 1]
                h = row[r - 1] if r - 1 < row.size else 0.0
                if h > 0 and self.rng.random() < h:
                    chosen = child
                    break
            if chosen is None:
                break
            node, n = chosen, n + 1
            if p + n >= self.S:
                break
        self._reject(min(p + n, self.S - 1), now)

