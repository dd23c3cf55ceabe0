"""Several drafts at one position, and token trees: lossless multi-draft verification.

A chain drafter bets on one continuation; a tree drafter hedges.  At a position it proposes ``m``
candidate next tokens (*siblings*), each with continuations of its own, and the target scores every
node of that token tree in one forward.  Verification then walks down from the root: at each node it
picks at most one sibling — which one must not bias the text — and descends into it.  This module is
that choice, made without loss: the token emitted at a node has the target's law ``p`` exactly, however
the siblings were chosen, as long as they were drawn the way the rule assumes.

Papers:

* **SpecInfer** — Miao et al. 2024, "SpecInfer: Accelerating Large Language Model Serving with
  Tree-based Speculative Inference and Verification" (ASPLOS 2024): multi-round speculative sampling over
  siblings drawn i.i.d. (with replacement) from the drafter's ``q``.
* **RRS** — Jeon et al. 2024, "Recursive Speculative Decoding: Accelerating LLM Inference via Sampling
  Without Replacement": recursive rejection sampling over siblings drawn *without* replacement
  (Gumbel-top-k, here its twin, exponential races).
* SpecTr — Sun et al. 2023, "SpecTr: Fast Speculative Decoding via Optimal Transport", casts the choice
  among ``m`` drafts as optimal transport; both rules here are valid (lossless) transports, not optimal
  ones, and SpecTr's own rule is not implemented.

**The rule.**  Siblings ``x_1..x_m``; target law ``r_1 = p``, proposal law ``q_1 = q``.  Round ``i``
accepts ``x_i`` with probability ``min(1, r_i(x_i)/q_i(x_i))`` and emits it; otherwise
``r_{i+1} = norm((r_i − q_i)_+)`` and

* SpecInfer: ``q_{i+1} = q`` (the next sibling is a fresh draw from ``q``);
* RRS: ``q_{i+1} = q_i`` with ``x_i`` removed, renormalised (the law of the next sibling drawn without
  replacement).

After ``m`` rejections a draw from ``r_{m+1}`` is emitted (the correction token).

**Why it is lossless.**  Round ``i`` is the chain's step (:mod:`.core`) with target ``r_i`` and
proposal ``q_i``.  By induction from the last round, the rounds after a rejection emit ``r_{i+1}``
whatever ``x_i`` was — ``r_{i+1}`` does not depend on ``x_i``, and the next sibling's law given the past
is exactly ``q_{i+1}``.  So round ``i`` emits ``min(r_i, q_i) + (1 − Σ min(r_i, q_i))·r_{i+1} = r_i``, and
the step emits ``r_1 = p``.  The induction's hypothesis is where the two rules differ: SpecInfer's update
applied to siblings drawn without replacement is lossy (``tests/test_multidraft.py`` shows it exactly and
statistically).  A rejected sibling had ``r_i(x_i) < q_i(x_i)``, so ``r_{i+1}(x_i) = 0``: no later round
and no correction token ever emits it.

**Acceptance** (some sibling accepted: the walk descends) is ``1 − Π_i (1 − Σ min(r_i, q))`` for
SpecInfer; for RRS the ``q_i`` depend on which siblings were rejected, and :func:`multidraft_acceptance`
sums over those histories.  With one sibling both are the chain's ``Σ min(p, q)``; both grow with ``m``,
and without replacement a rejected token is never proposed again, so RRS gains more per sibling:

>>> import numpy as np
>>> p, q = np.array([0.5, 0.3, 0.15, 0.05]), np.array([0.1, 0.2, 0.3, 0.4])
>>> for m in (1, 2, 3):
...     print(m, round(float(multidraft_acceptance(p, q, m, "specinfer")), 4),
...           round(float(multidraft_acceptance(p, q, m, "rrs")), 4))
1 0.5 0.5
2 0.65 0.6798
3 0.685 0.7809
>>> bool(np.abs(multidraft_step_law(p, q, 3, "rrs") - p).max() < 1e-12)
True

A tree is verified from the root, one multi-draft step per depth (:func:`verify_tree`); it stops at the
first node none of whose children is accepted (emitting that step's correction token) or at a leaf
(emitting a bonus token from ``p``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, Union

import numpy as np

from .._checks import MAX_DRAW_BYTES, check_work, int_at_least
from ..errors import DistributionError, InvalidParameterError
from . import core

__all__ = ["METHODS", "REPLACEMENT", "draw_siblings", "MultidraftSample", "multidraft_step", "multidraft_step_law",
           "multidraft_acceptance", "DraftNode", "TreeVerification", "draw_tree", "verify_tree"]

#: the verification rules, by name
METHODS = ("specinfer", "rrs")
#: how each rule's siblings must be drawn: with replacement (i.i.d. from ``q``) or without
REPLACEMENT = {"specinfer": True, "rrs": False}

#: nodes of the history tree :func:`multidraft_step_law` may enumerate for RRS (about 10 µs each)
MAX_LAW_NODES = 1_000_000
#: nodes one :func:`draw_tree` call may build
MAX_TREE_NODES = 1_000_000


def _without_replacement(method) -> bool:
    """``True`` for RRS, ``False`` for SpecInfer; a named error for anything else."""
    if method == "rrs":
        return True
    if method == "specinfer":
        return False
    raise InvalidParameterError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")


def _laws(p, q) -> tuple[np.ndarray, np.ndarray]:
    """``p`` and ``q`` checked: laws over one vocabulary, ``(V,)`` or ``(batch, V)``."""
    p, q = core.check_pair(p, q, ("p", "q"))
    if p.ndim > 2 or q.ndim > 2:
        raise DistributionError(f"p and q must be (V,) or (batch, V) arrays, got shapes {p.shape} and {q.shape}")
    return p, q


def _rows(*counts: int, names: str = "p, q and drafts") -> int:
    """The batch size of arrays with these row counts (1: broadcast), or a named error."""
    big = {c for c in counts if c != 1}
    if len(big) > 1:
        raise InvalidParameterError(f"{names} have {', '.join(map(str, counts))} rows; give each one row "
                                    "(or a 1-D array) or the same number of rows")
    return big.pop() if big else 1


def _support(q: np.ndarray) -> int:
    """The fewest tokens with ``q > 0`` in any row of ``q``."""
    return int(np.min(np.count_nonzero(q > 0, axis=-1)))


def _check_m(m, q: np.ndarray, without: bool) -> int:
    m = int_at_least("m", m, 1, "the number of sibling drafts at the node")
    if without and m > _support(q):
        raise InvalidParameterError(
            f"m = {m} siblings drawn without replacement need at least {m} tokens with q > 0, but q has only "
            f"{_support(q)}; lower m to at most {_support(q)}, or draw with replacement (method='specinfer')")
    return m


# ---- drawing siblings ------------------------------------------------------------------------------


def draw_siblings(q, m: int, rng: np.random.Generator, replacement: bool = True, n: int | None = None) -> np.ndarray:
    """``m`` sibling drafts from the drafter's law ``q``: i.i.d. (``replacement=True``) or without replacement.

    ``q`` is ``(V,)`` (``n`` sibling sets from it, or one when ``n`` is ``None``) or ``(batch, V)`` (one set
    per row).  Returns ``(m,)``, ``(n, m)`` or ``(batch, m)`` token indices.  Without replacement the
    siblings are the order in which exponential clocks ``E_x / q(x)`` ring (``E_x`` i.i.d. standard
    exponential): the law of drawing from ``q``, removing the token and renormalising, ``m`` times
    (equivalently Gumbel-top-k); it needs ``m`` tokens with ``q > 0``.

    >>> rng = np.random.default_rng(0)
    >>> s = draw_siblings(np.array([0.5, 0.3, 0.2, 0.0]), 3, rng, replacement=False, n=4)
    >>> s.shape, bool(np.all(np.sort(s, axis=1) == [0, 1, 2]))
    ((4, 3), True)
    """
    if not isinstance(replacement, (bool, np.bool_)):
        raise InvalidParameterError(f"replacement must be True or False (REPLACEMENT[method] gives a method's), "
                                    f"got {replacement!r}")
    q = core.check_distribution("q", q)
    if q.ndim > 2:
        raise DistributionError(f"q must be a (V,) or (batch, V) array, got shape {q.shape}")
    m = _check_m(m, q, not replacement)
    if n is not None:
        if q.ndim == 2:
            raise InvalidParameterError("n is for one law q of shape (V,); a (batch, V) q draws one sibling set "
                                        "per row: leave n as None")
        n = int_at_least("n", n, 1, "the number of sibling sets to draw")
    rows = q.shape[0] if q.ndim == 2 else (n or 1)
    v = q.shape[-1]
    check_work(f"drawing {rows} sibling sets over {v} tokens", 8.0 * rows * (m if replacement else 3 * v),
               MAX_DRAW_BYTES, "draw fewer sibling sets per call (n or the batch) and combine them", unit="bytes")
    if replacement:
        if q.ndim == 1:
            out = core.sample_categorical(rng, q, rows * m).reshape(rows, m)
        else:
            out = np.stack([core.sample_categorical(rng, q) for _ in range(m)], axis=1)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            clocks = rng.standard_exponential((rows, v)) / q  # q = 0: never rings (inf, or nan, sorted last)
        if m < v:
            top = np.argpartition(clocks, m - 1, axis=1)[:, :m]
            order = np.argsort(np.take_along_axis(clocks, top, axis=1), axis=1, kind="stable")
            out = np.take_along_axis(top, order, axis=1)
        else:
            out = np.argsort(clocks, axis=1, kind="stable")
    out = out.astype(np.intp, copy=False)
    return out[0] if q.ndim == 1 and n is None else out


# ---- one node: the multi-draft step ---------------------------------------------------------------


@dataclass(frozen=True)
class MultidraftSample:
    """Outcome of multi-draft steps, one entry per row (a single step has one row)."""

    #: the sibling drafts, ``(rows, m)``
    drafts: np.ndarray
    #: index of the accepted sibling, ``-1`` where every sibling was rejected
    accepted: np.ndarray
    #: the emitted token: the accepted sibling, or the correction drawn from the last residual
    emitted: np.ndarray


def _check_drafts(drafts, v: int) -> np.ndarray:
    """``drafts`` as a ``(rows, m)`` array of token indices ``0..v−1``, or a named error."""
    d = np.asarray(drafts)
    if d.ndim not in (1, 2) or d.shape[-1] < 1:
        raise InvalidParameterError(f"drafts must hold m >= 1 sibling tokens, shape (m,) or (batch, m), got shape "
                                    f"{d.shape}; a node without children is a leaf (verify_tree emits a bonus token)")
    if not np.issubdtype(d.dtype, np.integer):
        if not (np.issubdtype(d.dtype, np.floating) and np.all(np.isfinite(d)) and np.all(d == np.round(d))):
            raise InvalidParameterError(f"drafts must be token indices (integers), got dtype {d.dtype}")
        d = d.astype(np.intp)
    if d.min() < 0 or d.max() >= v:
        raise InvalidParameterError(f"drafts must be token indices 0..{v - 1} of the vocabulary of p and q, got "
                                    f"{int(d.min()) if d.min() < 0 else int(d.max())}")
    return np.atleast_2d(d)


def _check_drawable(d: np.ndarray, q: np.ndarray, without: bool) -> None:
    """Siblings ``d`` (``(rows, m)``) the rule can verify against ``q`` (``(rows, V)``), or a named error."""
    qd = np.take_along_axis(q, d, axis=1)
    if not np.all(qd > 0):
        bad = int(d[np.nonzero(~(qd > 0))][0])
        raise InvalidParameterError(f"sibling token {bad} has q = 0: siblings must be drawn from the drafter's q "
                                    "(draw_siblings draws them)")
    if without and d.shape[1] > 1 and np.any(np.diff(np.sort(d, axis=1), axis=1) == 0):
        raise InvalidParameterError("method 'rrs' verifies siblings drawn without replacement, but a row repeats a "
                                    "token; draw them with draw_siblings(q, m, rng, replacement=False), or verify "
                                    "i.i.d. siblings with method='specinfer'")


def multidraft_step(p, q, drafts, rng: np.random.Generator, method: str = "specinfer") -> MultidraftSample:
    """Verify ``m`` sibling drafts against the target's ``p``; the emitted token has law ``p`` exactly.

    ``p``, ``q``: the target's and the drafter's laws at the node, ``(V,)`` or ``(batch, V)``;
    ``drafts``: ``(m,)`` or ``(batch, m)`` siblings, drawn as ``method`` assumes (:data:`REPLACEMENT`):
    i.i.d. from ``q`` for ``"specinfer"``, without replacement for ``"rrs"``.  Rows broadcast (one law
    with many sibling sets, or one sibling set per law).  The rule is in the module docstring.

    Random numbers: one uniform per (row, sibling), drawn up front, then one per row whose siblings were
    all rejected (the correction token).

    >>> rng = np.random.default_rng(1)
    >>> p, q = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.2, 0.6])
    >>> s = multidraft_step(p, q, draw_siblings(q, 2, rng, replacement=False, n=100_000), rng, "rrs")
    >>> np.round(np.bincount(s.emitted) / 100_000, 2), round(float((s.accepted >= 0).mean()), 2)
    (array([0.6, 0.3, 0.1]), 0.85)
    >>> multidraft_acceptance(p, q, 2, "rrs"), multidraft_acceptance(p, q, 2, "specinfer")
    (0.85, 0.7)
    """
    without = _without_replacement(method)
    p, q = _laws(p, q)
    p2, q2 = np.atleast_2d(p), np.atleast_2d(q)
    v = p.shape[-1]
    d = _check_drafts(drafts, v)
    b, m = _rows(p2.shape[0], q2.shape[0], d.shape[0]), d.shape[1]
    _check_drawable(d, np.broadcast_to(q2, (d.shape[0], v)) if q2.shape[0] == 1 else q2, without)
    per_row = 32.0 * v if without or p2.shape[0] > 1 else 0.0  # residual and proposal rows, and their copies
    check_work(f"{b} multi-draft steps over {v} tokens", b * (per_row + 16.0 * m) + 8.0 * (m + 1) * v,
               MAX_DRAW_BYTES, "verify fewer rows per call and combine them", unit="bytes")
    d = np.broadcast_to(d, (b, m))
    u = rng.random((b, m))
    accepted = np.full(b, -1, dtype=np.intp)
    emitted = np.empty(b, dtype=np.intp)
    if not without and p2.shape[0] == 1 and q2.shape[0] == 1:  # one law: the residuals do not depend on the row
        r = [p]
        for _ in range(m):
            r.append(core.residual(r[-1], q))
        r = np.array(r)
        qd = q[d]
        ok = u * qd < r[np.arange(m), d]  # u < r_i(x_i)/q(x_i), without dividing (q(x_i) > 0)
        hit = ok.any(axis=1)
        first = ok.argmax(axis=1)
        accepted[hit] = first[hit]
        emitted[hit] = d[hit, first[hit]]
        miss = np.flatnonzero(~hit)
        if miss.size:
            emitted[miss] = core.sample_categorical(rng, r[m], miss.size)
        return MultidraftSample(np.array(d), accepted, emitted)
    r = np.array(np.broadcast_to(p2, (b, v)))
    qi = np.array(np.broadcast_to(q2, (b, v))) if without else np.broadcast_to(q2, (b, v))
    live = np.arange(b)
    for i in range(m):
        x = d[live, i]
        ok = u[live, i] * qi[live, x] < r[live, x]
        accepted[live[ok]] = i
        emitted[live[ok]] = x[ok]
        live, x = live[~ok], x[~ok]
        if not live.size:
            break
        r[live] = core.residual(r[live], qi[live])
        if without and i < m - 1:  # the next sibling's law: q_i without x_i, renormalised
            qn = qi[live]
            qn[np.arange(live.size), x] = 0.0
            qn /= qn.sum(axis=1, keepdims=True)
            qi[live] = qn
    if live.size:
        emitted[live] = core.sample_categorical(rng, r[live])
    return MultidraftSample(np.array(d), accepted, emitted)


# ---- exact laws -----------------------------------------------------------------------------------


def _law_row(p: np.ndarray, q: np.ndarray, m: int, without: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact joint law of (a sibling accepted, emitted token) of one step, from the rule's probabilities.

    Returns ``P(accepted, y)`` and ``P(rejected, y)`` over tokens ``y``.  Round ``i`` (target ``r``,
    proposal ``q_i``) emits token ``x`` accepted with probability ``q_i(x)·min(1, r(x)/q_i(x)) =
    min(r, q_i)(x)``; ``x`` is drafted and rejected with probability ``(q_i − r)_+(x)``, after which the
    target is ``norm((r − q_i)_+)`` whatever ``x`` was.  SpecInfer's next proposal is ``q`` again (one
    history); RRS's removes ``x``, so its histories branch on the rejected tokens, in order (at most
    ``s·(s−1)···`` of them, ``s`` the support of ``q``).
    """
    accepted = np.zeros_like(p)
    corrected = np.zeros_like(p)
    stack = [(p, q, m, 1.0)]
    while stack:
        r, qi, k, w = stack.pop()
        acc = np.minimum(r, qi)
        accepted += w * acc
        rej = qi - acc  # (q_i − r)_+: drafted and rejected
        mass = float(rej.sum())
        if not mass > 0:
            continue  # every sibling is accepted
        nxt = core.residual(r, qi)
        if k == 1:
            corrected += (w * mass) * nxt  # the correction token
        elif not without:
            stack.append((nxt, qi, k - 1, w * mass))
        else:
            for x in np.flatnonzero(rej > 0):
                qn = qi.copy()
                qn[x] = 0.0
                qn /= qn.sum()
                stack.append((nxt, qn, k - 1, w * float(rej[x])))
    return accepted, corrected


def _exact(p, q, m, method):
    without = _without_replacement(method)
    p, q = _laws(p, q)
    m = _check_m(m, q, without)
    if without:
        s = max(1, int(np.max(np.count_nonzero(q > 0, axis=-1))))
        nodes = sum(math.perm(s, j) for j in range(m))
        rows = max(len(p) if p.ndim == 2 else 1, len(q) if q.ndim == 2 else 1)
        check_work(f"RRS's exact law with m = {m} siblings over {s} drafter tokens ({rows} row(s))", nodes * rows,
                   MAX_LAW_NODES, "lower m, or estimate by sampling (multidraft_step)", unit="histories")
    if p.ndim == 1 and q.ndim == 1:
        return _law_row(p, q, m, without)
    b = _rows(len(p) if p.ndim == 2 else 1, len(q) if q.ndim == 2 else 1, names="p and q")
    p2, q2 = np.broadcast_to(p, (b, p.shape[-1])), np.broadcast_to(q, (b, p.shape[-1]))
    out = [_law_row(p2[i], q2[i], m, without) for i in range(b)]
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


def multidraft_step_law(p, q, m: int, method: str = "specinfer", *, split: bool = False):
    """Exact law of the token one multi-draft step emits, summed over the sibling draws and the coins.

    Computed from the rule's probabilities, not assumed (the tests compare it with ``p``).  SpecInfer costs
    ``O(m V)``; RRS enumerates the orders in which siblings can be rejected, ``O(s^(m−1) V)`` for ``q``
    with ``s`` tokens of positive probability (bounded by :data:`MAX_LAW_NODES`).  ``(batch, V)`` laws
    give one row each.

    ``split=True`` returns the joint law instead, as two arrays: ``P(a sibling accepted, token y)`` and
    ``P(every sibling rejected, correction y)`` (their sum is the law; the first sums to the acceptance).
    A tree's walk needs exactly this: the first descends, the second stops.

    >>> p, q = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.2, 0.6])
    >>> multidraft_step_law(p, q, 2, "rrs", split=True)
    (array([0.45, 0.3 , 0.1 ]), array([0.15, 0.  , 0.  ]))
    """
    accepted, corrected = _exact(p, q, m, method)
    return (accepted, corrected) if split else accepted + corrected


def multidraft_acceptance(p, q, m: int, method: str = "specinfer"):
    """Exact probability that one of ``m`` siblings is accepted (the walk down the tree continues).

    SpecInfer: ``1 − Π_{i≤m} (1 − Σ min(r_i, q))``, ``r_1 = p``, ``r_{i+1} = norm((r_i − q)_+)``; RRS: summed
    over rejection histories (see :func:`multidraft_step_law`).  ``m = 1``: the chain's ``Σ min(p, q)``.
    A float for one law, an array for ``(batch, V)`` laws.
    """
    acc = _exact(p, q, m, method)[0].sum(axis=-1)
    return float(acc) if np.ndim(acc) == 0 else acc


# ---- trees --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftNode:
    """A node of a token tree: the draft token it stands for (``None`` at the root) and its children.

    The children are the node's sibling drafts, in the order they are verified (the order they were
    drawn).  Siblings may repeat a token under SpecInfer (i.i.d. draws); each keeps its own subtree.

    >>> tree = DraftNode(children=(DraftNode(2, (DraftNode(0),)), DraftNode(1)))
    >>> tree.drafts, tree.depth
    ((2, 1), 2)
    """

    token: int | None = None
    children: tuple[DraftNode, ...] = ()

    def __post_init__(self):
        kids = tuple(self.children)
        for c in kids:
            if not isinstance(c, DraftNode):
                raise InvalidParameterError(f"a DraftNode's children must be DraftNodes, got {type(c).__name__}")
            if c.token is None:
                raise InvalidParameterError("only the root has token None; give every child its draft token")
        object.__setattr__(self, "children", kids)

    @property
    def drafts(self) -> tuple[int, ...]:
        """The children's draft tokens, in order."""
        return tuple(int(c.token) for c in self.children)

    @property
    def depth(self) -> int:
        """Drafts on the longest path from this node down (0 for a leaf)."""
        return 1 + max(c.depth for c in self.children) if self.children else 0


@dataclass(frozen=True)
class TreeVerification:
    """What verifying a token tree gave: the path taken and the tokens emitted."""

    #: the accepted sibling's index at each depth, root first
    accepted: tuple[int, ...]
    #: the emitted tokens: the accepted drafts, then one correction (or bonus) token
    tokens: tuple[int, ...]
    #: ``True`` when the walk reached a leaf and the last token is a bonus token from ``p``
    bonus: bool

    @property
    def n_accepted(self) -> int:
        """Drafts accepted (``len(tokens) − 1``)."""
        return len(self.accepted)


Laws = Union[Callable[[tuple], tuple], Mapping[tuple, tuple]]


def _laws_at(laws: Laws, prefix: tuple[int, ...]):
    """``(p, q)`` at the node reached by ``prefix`` (drafted tokens after the root's context)."""
    if callable(laws):
        pair = laws(prefix)
    else:
        try:
            pair = laws[prefix]
        except KeyError:
            raise InvalidParameterError(f"laws has no entry for the node at prefix {prefix}; give (p, q) for every "
                                        "node of the tree, keyed by the tuple of tokens from the root") from None
    try:
        p, q = pair
    except (TypeError, ValueError):
        raise InvalidParameterError(f"laws must give a pair (p, q) for each node, got {type(pair).__name__} at "
                                    f"prefix {prefix}") from None
    return p, q


def draw_tree(laws: Laws, widths: Sequence[int], rng: np.random.Generator, replacement: bool = True) -> DraftNode:
    """A token tree: ``widths[d]`` siblings under every node at depth ``d``, drawn from ``q`` at that node.

    ``laws(prefix) -> (p, q)`` (or a mapping ``prefix -> (p, q)``) gives the laws after the tokens
    ``prefix`` below the root; only ``q`` is read here.  ``replacement`` as in :func:`draw_siblings`
    (``REPLACEMENT[method]`` for the rule that will verify the tree).  Each child's subtree is drawn
    independently, given its token.
    """
    widths = tuple(int_at_least(f"widths[{d}]", w, 1, "the siblings per node at that depth") for d, w in
                   enumerate(widths))
    nodes, level = 0, 1
    for w in widths:
        level *= w
        nodes += level
    check_work(f"a tree of widths {widths}", nodes, MAX_TREE_NODES, "narrow or shorten the tree", unit="nodes")

    def grow(prefix: tuple[int, ...], depth: int) -> tuple[DraftNode, ...]:
        if depth == len(widths):
            return ()
        xs = draw_siblings(_laws_at(laws, prefix)[1], widths[depth], rng, replacement)
        return tuple(DraftNode(int(x), grow(prefix + (int(x),), depth + 1)) for x in xs)

    return DraftNode(None, grow((), 0))


def verify_tree(tree: DraftNode, laws: Laws, rng: np.random.Generator, method: str = "specinfer") -> TreeVerification:
    """Verify a token tree from the root: one multi-draft step per depth, down the accepted child.

    ``laws(prefix) -> (p, q)`` (or a mapping) gives the target's and the drafter's laws at the node reached
    by ``prefix``; a leaf needs only ``p`` (its ``q`` may be ``None``).  At a node with children,
    :func:`multidraft_step` picks a sibling or none; none ends the walk with that step's correction token,
    and a leaf ends it with a bonus token drawn from ``p``.  Every emitted token has the target's law
    given the tokens before it, so a sequence of trees, each drafted at the new prefix, writes text with
    the target's law (the tests check the first tokens' joint law exactly).

    >>> p, q = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.2, 0.6])
    >>> tree = DraftNode(children=(DraftNode(0, (DraftNode(1),)), DraftNode(2)))
    >>> out = verify_tree(tree, lambda prefix: (p, q), np.random.default_rng(3), "rrs")
    >>> out
    TreeVerification(accepted=(0, 0), tokens=(0, 1, 0), bonus=True)
    """
    _without_replacement(method)
    if not isinstance(tree, DraftNode):
        raise InvalidParameterError(f"tree must be a DraftNode (draw_tree builds one), got {type(tree).__name__}")
    node, prefix, picks = tree, (), []
    while node.children:
        p, q = _laws_at(laws, prefix)
        s = multidraft_step(p, q, node.drafts, rng, method)
        i, y = int(s.accepted[0]), int(s.emitted[0])
        if i < 0:
            return TreeVerification(tuple(picks), prefix + (y,), False)
        picks.append(i)
        node = node.children[i]
        prefix += (y,)
    p = core.check_distribution("p", _laws_at(laws, prefix)[0])
    if p.ndim != 1:
        raise DistributionError(f"p at a tree node must be one law of shape (V,), got shape {p.shape}")
    return TreeVerification(tuple(picks), prefix + (int(core.sample_categorical(rng, p)[0]),), True)
