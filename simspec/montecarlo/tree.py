"""Tree SI on acceptance outcomes, vectorised over replications.

SpecInfer (Miao et al. 2024), Sequoia (Chen et al. 2024).  A round drafts a token tree level by
level and verifies it in one target forward; the target follows the longest path it agrees
with.  The rules are those of the discrete-event engine (:mod:`simspec.des.tree`), so a run here
is that engine's run on the same outcomes and the same sibling draws:

* at depth ``d`` of a round starting at position ``p``, the rank-1 child is accepted iff the
  scenario's outcome at position ``p + d − 1`` is (the outcomes SI and DSI read, so a chain tree
  *is* SI, run by run); when it is rejected, the rank-``r`` sibling is accepted with the tree
  law's conditional rate ``h_r = p_r / (1 − p_1 − … − p_{r−1})``, one uniform per sibling tried
  (only ranks with ``h_r > 0`` are tried), in rank order;
* ``n`` accepted drafts emit ``n + 1`` tokens (the last the target's correction or bonus);
* at the end of generation the tree is cut to the levels that fit (depth ``≤ S − p − 1``);
* a round costs one drafter forward per level of the (cut) tree, reading ``draft_widths[ℓ − 1]``
  tokens, plus one target forward of the tree's ``width`` tokens.

Every position is read at most once, by the round that reaches it, so the engine walks the
positions rather than the rounds: each replication holds the tree node whose children are
tried at the current position (the root when a round starts there).  One numpy step per
position over all replications; the latencies must be deterministic and independent of the
context (the discrete-event engine, :func:`simspec.simulate`, runs the others).

>>> import numpy as np
>>> from simspec import ConstantLatency, PositionalTreeAcceptance, TokenTree
>>> A = np.array([[False, True, True, False, True]])
>>> law = PositionalTreeAcceptance((0.6, 0.4))          # h_2 = 0.4 / 0.4 = 1: a second child always rescues
>>> out = tree_run(A, TokenTree.k_ary([2, 1]), law, ConstantLatency(10.0), ConstantLatency(1.0))
>>> out["rounds"].tolist(), out["accepted_drafts"].tolist(), out["decode_ms"].tolist()
([2], [3], [23.0])
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidParameterError, UnsupportedScenarioError
from ..latency import LatencyModel, check_latency_model, is_deterministic
from ..trees.law import _check_acceptance
from ..trees.shapes import TokenTree

__all__ = ["tree_run"]


def _check_latencies(target: LatencyModel, drafter: LatencyModel) -> None:
    for name, model in (("target", target), ("drafter", drafter)):
        check_latency_model(name, model)
        why = ("depends on context length" if model.context_dependent else
               "is stochastic" if not is_deterministic(model) else None)
        if why:
            raise UnsupportedScenarioError(
                f"the {name} latency {why}: the tree Monte Carlo needs deterministic, context-free latencies; "
                "run tree SI in the discrete-event engine (simulate(scenario, 'tree'))")


class _Tables:
    """The tree as arrays over nodes (0: the root, ``i + 1``: node ``i``) and the cost of each cut."""

    def __init__(self, tree: TokenTree, acceptance) -> None:
        from ..des.tree import cut_tree, hazards_of

        n = tree.size + 1
        ranks = max(int(tree.ranks.max(initial=1)), 1)
        self.kid = np.zeros((n, ranks), dtype=np.int64)  # kid[v, r − 1]: v's rank-r child, 0 for none
        node_depth = np.zeros(n, dtype=np.int64)
        for i, (par, r) in enumerate(zip(tree.parents, tree.ranks.tolist())):
            self.kid[par + 1, r - 1] = i + 1
            node_depth[i + 1] = tree.depths[i]
        self.n_kids = (self.kid > 0).sum(axis=1)
        # h_r of each node's children of rank >= 2 (the law at the children's depth), 0 where there is no child
        hz = hazards_of(acceptance, max(tree.depth, 1), ranks)
        self.h = np.where(self.kid[:, 1:] > 0, hz[np.minimum(node_depth, hz.shape[0] - 1)][:, 1:], 0.0)
        self.has_sibling = (self.h > 0).any(axis=1)
        self.depth = tree.depth
        # the cut trees (room r = 0 .. depth − 1 levels fit) and the full tree: drafted tokens, level widths, width
        cuts = [TokenTree(cut_tree(tree.parents, r)) for r in range(tree.depth)] + [tree]
        self.sizes = np.array([t.size for t in cuts], dtype=np.int64)
        self.widths = np.array([t.width for t in cuts], dtype=np.int64)
        top = max((max(t.draft_widths, default=0) for t in cuts), default=0)
        self.levels = np.zeros((len(cuts), top + 1), dtype=np.int64)  # levels[c, w]: drafter forwards of width w
        for c, t in enumerate(cuts):
            for w in t.draft_widths:
                self.levels[c, w] += 1


def tree_run(
    accepted: np.ndarray,
    tree: TokenTree,
    acceptance,
    target: LatencyModel,
    drafter: LatencyModel,
    prompt_len: int = 0,
    *,
    rng: np.random.Generator | None = None,
    uniforms: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Decode time and costs of tree SI, one replication per row of ``accepted``.

    ``tree`` (a :class:`~simspec.TokenTree`) and ``acceptance`` (its tree law, e.g.
    ``PositionalTreeAcceptance.from_chain_rate(a)``): the rank-1 child follows the outcomes,
    later siblings the law's conditional rates.  The sibling draws come from ``rng`` (a
    ``numpy.random.Generator``; default ``default_rng(0)``), or from ``uniforms``: one row per
    replication, its ``j``-th entry the ``j``-th sibling draw of that replication, in the order
    the discrete-event engine draws them (pass ``Generator.random(m)`` of each run's latency
    stream and the runs match :func:`simspec.des.runner.run_once` exactly).

    Returns per replication ``decode_ms`` (drafting plus verification, no prefill),
    ``target_forwards`` (rounds), ``target_forwards_wasted`` (0), ``drafter_forwards`` (drafted
    tokens, as the discrete-event engine counts them), ``drafter_passes`` (drafter forwards, one
    per level), ``target_busy_ms``, ``drafter_busy_ms``, ``rounds``, ``accepted_drafts`` and
    ``rejections`` (rounds whose walk stopped where the tree went on).

    The summation order of the times is SI's (:func:`~simspec.montecarlo.si.si_run`), so a chain
    tree gives SI's numbers bit for bit.
    """
    _check_latencies(target, drafter)
    if not isinstance(tree, TokenTree):
        raise InvalidParameterError(f"tree must be a simspec.TokenTree, got {tree!r}")
    acceptance = _check_acceptance(acceptance)
    A = np.asarray(accepted)
    if A.ndim != 2 or A.dtype != bool:
        raise InvalidParameterError(f"accepted must be a 2-D bool array (replications, tokens), got shape "
                                    f"{A.shape} and dtype {A.dtype}")
    reps, S = A.shape
    tab = _Tables(tree, acceptance)
    D = tab.depth
    if uniforms is not None:
        uniforms = np.asarray(uniforms, dtype=float)
        if uniforms.ndim != 2 or uniforms.shape[0] != reps:
            raise InvalidParameterError(f"uniforms must have one row per replication ({reps}), got shape "
                                        f"{uniforms.shape}")
        used = np.zeros(reps, dtype=np.int64)
    elif rng is None:
        rng = np.random.default_rng(0)
    elif not isinstance(rng, np.random.Generator):
        raise InvalidParameterError(f"rng must be a numpy.random.Generator, got {rng!r}")

    node = np.zeros(reps, dtype=np.int64)  # whose children are tried at this position; 0: a round starts here
    full = np.zeros(reps, dtype=np.int64)  # rounds of the whole tree
    cut = np.zeros((reps, max(D, 1)), dtype=np.int64)  # cut[:, r]: a round started with room for r levels only
    acc = np.zeros(reps, dtype=np.int64)
    rej = np.zeros(reps, dtype=np.int64)
    kid1 = tab.kid[:, 0]
    for q in range(S):
        start = node == 0
        room = S - 1 - q
        if room >= D:
            full += start
        else:
            cut[:, room] = start
        if room == 0:
            break  # the last position is the round's correction or bonus: nothing is tried there
        ok = A[:, q]
        nxt = np.where(ok, kid1[node], 0)
        need = ~ok & tab.has_sibling[node]
        if need.any():
            idx = np.flatnonzero(need)
            at = node[idx]
            h = tab.h[at]
            live = h > 0
            if uniforms is None:
                u = rng.random(h.shape)
            else:
                order = np.cumsum(live, axis=1) - 1  # the j-th draw of this position goes to the j-th live rank
                col = used[idx, None] + order
                u = uniforms[idx[:, None], np.minimum(col, uniforms.shape[1] - 1)]
            win = live & (u < h)
            hit = win.any(axis=1)
            first = np.argmax(win, axis=1)
            if uniforms is not None:
                took = np.where(hit, order[np.arange(idx.size), first] + 1, live.sum(axis=1))
                if np.any(used[idx] + took > uniforms.shape[1]):
                    raise InvalidParameterError(
                        f"uniforms has {uniforms.shape[1]} columns, too few for the sibling draws of replication "
                        f"{int(idx[np.argmax(used[idx] + took)])}; give at least (rejected outcomes) × (siblings "
                        "a node may try) columns")
                used[idx] += took
            nxt[idx[hit]] = tab.kid[at[hit], first[hit] + 1]
        went = nxt > 0
        acc += went
        rej += ~went & (tab.n_kids[node] > 0)
        node = nxt

    rounds = full + cut.sum(axis=1)
    drafts = full * tab.sizes[-1] + cut @ tab.sizes[:D] if D else full * 0
    # drafter forwards by width; the times summed as si_run sums SI's (a chain tree is SI to the last bit)
    d_ms = np.zeros(reps)
    passes = np.zeros(reps, dtype=np.int64)
    for w in range(1, tab.levels.shape[1]):
        n_w = full * tab.levels[-1, w] + (cut @ tab.levels[:D, w] if D else 0)
        if np.any(n_w):
            d_ms += n_w * float(drafter.forward(w, prompt_len))
            passes += n_w
    t_ms = np.asarray(target.forward(tab.widths, prompt_len), dtype=float) * np.ones(tab.widths.size)
    v_ms = np.zeros(reps)
    for r in range(D):
        v_ms += np.where(cut[:, r] > 0, t_ms[r], 0.0)
    v_ms = v_ms + full * t_ms[-1]
    return {
        "decode_ms": d_ms + v_ms,
        "target_forwards": rounds.astype(float),
        "target_forwards_wasted": np.zeros(reps),
        "drafter_forwards": drafts.astype(float),
        "drafter_passes": passes,
        "target_busy_ms": v_ms,
        "drafter_busy_ms": d_ms,
        "rounds": rounds,
        "accepted_drafts": acc,
        "rejections": rej,
    }
