"""Speculative sampling's verification step, the one every verifier here reduces to.

Leviathan, Kalman & Matias 2023 ("Fast Inference from Transformers via
Speculative Decoding"); Chen et al. 2023 ("Accelerating Large Language Model
Decoding with Speculative Sampling").  A proposal ``x ~ r`` is accepted with
probability ``min(1, p(x)/r(x))``; on rejection the target's residual
``norm((p − r)_+)`` is sampled.  Whatever ``r`` is, the emitted token has law
``p`` exactly:

    min(p, r)(x) + (1 − Σ min(p, r)) · (p − r)_+(x) / Σ (p − r)_+ = p(x),

because ``Σ (p − r)_+ = 1 − Σ min(p, r)``.  The acceptance probability is
``α = Σ min(p, r) = 1 − TV(p, r)``.  Heterogeneous-vocabulary and
out-of-vocabulary verifiers (union, TLI, RDK, SLRS) differ only in how they
build ``r`` over the target's vocabulary; they call these functions.

Everything is vectorised over leading axes: ``p`` and ``r`` may be ``(V,)`` or
``(..., V)`` arrays of probabilities.

Two paths.  The functions here (:func:`acceptance`, :func:`sample_step`) are
the trusted path: they take ``p`` and ``r`` to be laws and compare only their
lengths.  The verifier modules (``std``, ``slrs``, ...) check their inputs once,
through :func:`checked_sample_step` / :func:`checked_acceptance`, whose checks
ride on the passes the step makes anyway.  Tokens are drawn by inverse CDF
with block sums first, so a draw over ``V`` tokens runs ``cumsum`` over about
``√V`` of them (see the comment above ``_draw``); ``sample_step(...,
acceptance=True)`` returns ``α`` from the same passes.  The usual pair of
calls, ``acceptance(p, q)`` then ``sample(rng, p, q)``, checks short laws once:
the step skips the checks of arrays whose bytes are those the acceptance call
has just passed (see ``_passed``).

>>> import numpy as np
>>> p, r = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.2, 0.6])
>>> float(acceptance(p, r))
0.6
>>> output_law(p, r)
array([0.5, 0.3, 0.2])
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from weakref import ref as _ref

import numpy as np

from .._checks import MAX_DRAW_BYTES, check_work, int_at_least
from ..errors import DistributionError, VocabularyError
from .row_threads import run_row_chunks

__all__ = ["check_distribution", "check_same_vocabulary", "check_pair", "acceptance", "residual", "output_law", "StepSample",
           "sample_step", "checked_sample_step", "checked_acceptance", "sample_categorical"]

_ATOL = 1e-9
_SUM_TOL = 1e-6  # how far from 1 a law's total may be
_F64 = np.dtype(float)
_min = np.minimum.reduce  # the ufunc methods themselves: no per-call detour through ndarray.min / .sum
_sum = np.add.reduce
_minimum = np.minimum


def _as_float(x) -> np.ndarray:
    """``x`` as a float64 array, without a call into numpy when it already is one."""
    if type(x) is np.ndarray and x.dtype is _F64:
        return x
    return np.asarray(x, dtype=float)


def _negative(name: str) -> DistributionError:
    return DistributionError(f"{name} has negative or non-finite entries; probabilities are >= 0")


def _check_totals(name: str, total) -> None:
    """Every row of a law (of non-negative entries) sums to 1 within ``_SUM_TOL``, or a named error."""
    if isinstance(total, float) and abs(float(total) - 1.0) <= _SUM_TOL:  # one law: Python arithmetic
        return
    total = np.asarray(total, dtype=float)
    dev = np.abs(total - 1.0)
    if dev.ndim == 0 and dev <= _SUM_TOL or dev.ndim and np.all(dev <= _SUM_TOL):
        return
    if not np.all(np.isfinite(total)):
        raise _negative(name)
    worst = float(np.ravel(total)[np.argmax(np.ravel(dev))])
    raise DistributionError(f"{name} must sum to 1 along its last axis, but a row sums to {worst:.6g}; "
                            "normalise it (x / x.sum())")


# Short laws (up to ``_FUSE_MIN`` entries): a check costs its numpy calls, not its arithmetic, so it takes the
# cheapest call that decides it.  ``argmin`` (a NaN is its own answer) instead of ``minimum.reduce``; a BLAS dot
# with ones as a first look at a total, trusted only where it is clearly inside the tolerance: the dot and the
# pairwise sum of up to 4,096 non-negative entries summing to about 1 differ by < 1e-12, so "inside by the slack"
# for the one means inside for the other, and anything else is decided by the sum itself (same outcome, same
# message as before).
_DOT_TOL = _SUM_TOL - 1e-9  # |dot − 1| within this: the total is fine


@lru_cache(maxsize=64)
def _ones(v: int) -> np.ndarray:
    o = np.ones(v)
    o.flags.writeable = False
    return o


def _check_total(name: str, x: np.ndarray) -> None:
    """The total of the 1-D non-negative (already checked) law ``x`` is 1 within the tolerance, or a named error.

    Short laws get a dot with ones first (see ``_DOT_TOL``); the pairwise sum decides anything else, as
    :func:`_check_totals`.  Not on long laws: OpenBLAS runs a dot over more than ~10,000 entries on several
    threads of its own, which then fight the threads of a batch (``.row_threads``) and a busy machine's other work.
    """
    v = x.shape[0]
    if v <= _FUSE_MIN and abs(x.dot(_ones(v)) - 1.0) <= _DOT_TOL:
        return
    _check_totals(name, float(_sum(x)))


def _short_min(p: np.ndarray, r: np.ndarray, names, r_total: bool = False) -> np.ndarray:
    """``min(p, r)`` of two short 1-D laws, with both checked for negative and NaN entries, ``p``'s total, and
    ``r``'s total too if ``r_total``."""
    mn = _minimum(p, r)
    if not mn.item(mn.argmin()) >= 0:  # argmin stops at the first NaN: a NaN fails too
        _check_nonnegative(names, p, r)
    ones = _ones(p.shape[0])
    if not abs(p.dot(ones) - 1.0) <= _DOT_TOL:
        _check_totals(names[0], float(_sum(p)))
    if r_total and not abs(r.dot(ones) - 1.0) <= _DOT_TOL:
        _check_totals(names[1], float(_sum(r)))
    return mn


# The last short pair ``checked_acceptance`` passed: weak references to ``p`` and ``r``, copies of their bytes,
# and ``min(p, r)``.  The usual ``acceptance(p, q)`` then ``sample(rng, p, q)`` checks the same arrays twice; a
# short step on the very same array objects skips its checks where their bytes still equal the copies -- the
# same numbers, so the same outcome -- and checks as usual otherwise (an array changed in between, in place or
# through a view, is checked again), so every bad input still raises what it raised.  Weak references: the
# caller's arrays (and what they are views of) are not kept alive.  Laws of up to ``_FUSE_MIN`` entries only:
# there a check costs numpy calls, and copying and comparing the bytes costs less.
def _nobody() -> None:
    return None


_passed: tuple = (_nobody, _nobody, b"", b"", None)


def check_distribution(name: str, x, axis: int = -1) -> np.ndarray:
    """``x`` as a float array of probabilities along ``axis``, or a :class:`DistributionError`.

    Two passes over ``x``, no temporaries: its minimum (a NaN or a negative
    entry fails ``>= 0``) and its sums (an infinite entry makes one infinite).
    """
    arr = _as_float(x)
    if arr.ndim == 0 or arr.shape[axis] == 0:
        raise DistributionError(f"{name} must be a non-empty vector of probabilities")
    if not arr.min() >= 0:
        raise _negative(name)
    _check_totals(name, arr.sum(axis=axis))
    return arr


def check_same_vocabulary(p: np.ndarray, r: np.ndarray, names: tuple[str, str] = ("p", "q")) -> None:
    """Both laws must range over one vocabulary: a length mismatch would otherwise broadcast silently."""
    if (p.shape[-1] if type(p) is np.ndarray else np.shape(p)[-1]) != \
            (r.shape[-1] if type(r) is np.ndarray else np.shape(r)[-1]):
        raise VocabularyError(
            f"{names[0]} has {np.shape(p)[-1]} entries but {names[1]} has {np.shape(r)[-1]}; both must range "
            "over the target's vocabulary (map a drafter's law first: tli_proposal, rdk_proposal)"
        )


def check_pair(p, r, names: tuple[str, str] = ("p", "q")) -> tuple[np.ndarray, np.ndarray]:
    """Both laws checked (:func:`check_distribution`) and over one vocabulary."""
    p = check_distribution(names[0], p)
    r = check_distribution(names[1], r)
    check_same_vocabulary(p, r, names)
    return p, r


def acceptance(p, r) -> np.ndarray:
    """``α = Σ min(p, r)``: the probability that a proposal ``x ~ r`` is accepted (laws not checked)."""
    p = _as_float(p)
    r = _as_float(r)
    if p.ndim != 2 or p.shape != r.shape or p.size <= _ROWS_CHUNK:
        return np.minimum(p, r).sum(axis=-1)
    return _acceptance_rows(p, r, None)


_alpha = acceptance  # under another name, for functions whose keyword ``acceptance`` hides it


def checked_acceptance(p, r, names: tuple[str, str] = ("p", "q")) -> np.ndarray:
    """:func:`acceptance` with both laws checked once, sharing its passes (``min(p, r)`` shows a negative of either).

    A short pair (1-D, up to ``_FUSE_MIN`` entries) that passes is remembered, weakly, with a copy of its
    bytes: :func:`checked_sample_step` on the same, unchanged arrays right after does not check them again.
    """
    if (type(p) is np.ndarray and type(r) is np.ndarray and p.dtype is _F64 and r.dtype is _F64
            and p.ndim == 1 and p.shape == r.shape and 0 < p.shape[0] <= _FUSE_MIN):  # one short law: fewest calls
        global _passed
        mn = _short_min(p, r, names, True)
        _passed = (_ref(p), _ref(r), p.tobytes(), r.tobytes(), mn)
        return _sum(mn)
    p = _as_float(p)
    r = _as_float(r)
    if p.ndim == 0 or r.ndim == 0 or p.shape != r.shape or p.shape[-1] == 0:
        return acceptance(*check_pair(p, r, names))
    if p.ndim == 2 and p.size > _ROWS_CHUNK:
        return _acceptance_rows(p, r, names)
    return _checked_min_sum(p, r, names)


def _checked_min_sum(p: np.ndarray, r: np.ndarray, names, out: np.ndarray | None = None) -> np.ndarray:
    mn = np.minimum(p, r, out=out)
    if not _min(mn, axis=None) >= 0:  # NaN propagates through minimum: one of the two is bad; say which
        _check_nonnegative(names, p, r)
    if p.ndim == 1:
        _check_total(names[0], p)
        _check_total(names[1], r)
    else:
        _check_totals(names[0], _sum(p, axis=-1))
        _check_totals(names[1], _sum(r, axis=-1))
    return _sum(mn, axis=-1)


def _acceptance_rows(p: np.ndarray, r: np.ndarray, names) -> np.ndarray:
    """Row chunks of a cache-sized ``min(p, r)``, in one buffer: a batch costs what its rows cost one at a time.

    Long rows go one at a time, 1-D, so that a row's checks run on floats, as :func:`checked_acceptance` of
    that row alone does (checks on one-element arrays cost ~10 numpy calls a row).
    """
    m, v = p.shape
    out = np.empty(m)
    step = max(1, _ROWS_CHUNK // v)
    if step == 1:
        def rows(lo: int, hi: int) -> None:
            buf = np.empty(v)
            for i in range(lo, hi):
                out[i] = (_sum(np.minimum(p[i], r[i], out=buf)) if names is None
                          else _checked_min_sum(p[i], r[i], names, buf))

        run_row_chunks(rows, m, v)  # on several threads where rows are long (see .row_threads)
        return out
    buf = np.empty((min(step, m), v))
    for lo in range(0, m, step):
        hi = min(m, lo + step)
        if names is None:
            out[lo:hi] = _sum(np.minimum(p[lo:hi], r[lo:hi], out=buf[:hi - lo]), axis=1)
        else:
            out[lo:hi] = _checked_min_sum(p[lo:hi], r[lo:hi], names, buf[:hi - lo])
    return out


def residual(p, r) -> np.ndarray:
    """``norm((p − r)_+)``, the law sampled after a rejection (``p`` itself where ``p = r``)."""
    p = np.asarray(p, dtype=float)
    excess = _residual_weights(p, np.asarray(r, dtype=float), None)
    mass = excess.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = excess / mass
    # any positive excess defines the residual; only p == r (no excess) leaves it free, and then it is never used
    return np.where(mass > 0, out, p)


def output_law(p, r) -> np.ndarray:
    """Exact law of the token one verification step emits (accepted proposal or residual sample).

    Computed from the mechanism, not assumed: the tests compare it with ``p``.
    """
    p = np.asarray(p, dtype=float)
    r = np.asarray(r, dtype=float)
    acc = np.minimum(p, r)
    return acc + (1.0 - acc.sum(axis=-1, keepdims=True)) * residual(p, r)


def check_draws(n: int | None, name: str = "n") -> int | None:
    """``n`` draws checked: None (one per row), or an integer >= 1 whose arrays fit in memory."""
    if n is None:
        return None
    n = int_at_least(name, n, 1, "the number of verification steps to sample")
    check_work(f"{name} = {n} steps", 48.0 * n, MAX_DRAW_BYTES,  # proposal, uniforms, emitted, accepted and temporaries
               f"sample at most {MAX_DRAW_BYTES // 48} steps per call and combine the samples", unit="bytes")
    return n


# ---- inverse-CDF draws --------------------------------------------------------------------------
#
# A draw finds the index ``i`` with ``c[i-1] <= u·W < c[i]``, ``c`` the running sums of the
# non-negative weights and ``W`` their total: the law is ``w/W`` up to rounding, and an entry of
# weight 0 is never drawn (its running sum equals its predecessor's).  ``np.cumsum`` is a
# sequential loop, several times slower per entry than a (SIMD) sum, so above ``_SMALL`` entries a
# draw sums blocks of ``B ≈ √V`` entries first (one pass that only reads), finds the block on the
# running sums of the block sums, and runs ``cumsum`` over that one block: the same rule with ``W``
# and ``c`` formed in a different order, so the law is the same to rounding.  Rounding can put
# ``u·W`` at or past the last running sum; the draw then takes the last entry of positive weight.

_FUSE_MIN = 4096  # up to this many entries a checked step checks both laws through one min(p, r)
_SMALL = 768  # up to this many entries a draw runs one cumsum over them all
_PY_SEARCH = 4096  # up to this many entries the two searches run on Python lists (fewer numpy calls)
_ROWS_CHUNK = 1 << 15  # rows of a batch go this many entries at a time: temporaries (256 KB) stay in cache and
# are reused by the allocator (at 512 KB each call page-faulted them afresh: ~250 faults per 64 x 1,000 batch)


_reduceat = np.add.reduceat


@lru_cache(maxsize=64)
def _blocks(v: int) -> tuple[int, np.ndarray]:
    b = 1 << max(4, v.bit_length() // 2)
    return b, np.arange(0, v, b)


def _last_positive(w: np.ndarray) -> int:
    return int(np.flatnonzero(w)[-1])


def _draw(w: np.ndarray, u: float) -> tuple[int, float]:
    """One draw from the 1-D non-negative weights ``w`` (any positive total) with uniform ``u``; and ``Σ w``."""
    v = w.shape[0]
    if v <= _SMALL:
        c = w.cumsum()
        total = c.item(-1)
        i = int(c.searchsorted(u * total, "right"))
        return (i if i < v else _last_positive(w)), total
    b, starts = _blocks(v)
    s = _reduceat(w, starts)
    if v <= _PY_SEARCH:  # few, short blocks: Python's running sums (the same additions, in the same order) and bisect
        c = list(accumulate(s.tolist()))
        total = c[-1]
        t = u * total
        k = bisect_right(c, t)
        if k >= len(c):
            k = _last_positive(s)
        lo = k * b
        block = w[lo:lo + b]
        j = bisect_right(list(accumulate(block.tolist())), t - c[k - 1] if k else t)
        return lo + (j if j < block.shape[0] else _last_positive(block)), total
    c = s.cumsum()
    total = c.item(-1)
    t = u * total
    k = int(c.searchsorted(t, "right"))
    if k >= c.shape[0]:
        k = _last_positive(s)
    lo = k * b
    block = w[lo:lo + b]
    j = int(block.cumsum().searchsorted(t - c.item(k - 1) if k else t, "right"))
    return lo + (j if j < block.shape[0] else _last_positive(block)), total


def _draw_blocks(w: np.ndarray, c: np.ndarray, t: np.ndarray, b: int, rows: np.ndarray | None) -> np.ndarray:
    """Second stage of block draws: ``t`` (one per draw) located in block sums' running sums ``c``.

    ``w`` is ``(V,)`` (every draw from it) or ``(m, V)`` (draw ``i`` from row ``rows[i]``); ``c`` is
    ``(nb,)`` or ``(m, nb)``.
    """
    v = w.shape[-1]
    nb = c.shape[-1]
    n = t.shape[0]
    if rows is None:
        k = c.searchsorted(t, "right")
    else:
        k = (c <= t[:, None]).sum(axis=1)
    over = np.flatnonzero(k >= nb)
    for i in over:  # rounding put t at or past the total: the last block of positive weight
        s_i = np.add.reduceat(w if rows is None else w[rows[i]], _blocks(v)[1])
        k[i] = _last_positive(s_i)
    prev = np.maximum(k - 1, 0)
    off = (c[prev] if rows is None else c[np.arange(n), prev])
    off = np.where(k > 0, off, 0.0)
    cols = k[:, None] * b + np.arange(b)
    cols = np.minimum(cols, v - 1)
    valid = np.minimum(v - k * b, b)  # entries of each draw's block that exist (the last block is short)
    block = w[cols] if rows is None else w[rows[:, None], cols]
    block = np.where(np.arange(b) < valid[:, None], block, 0.0)
    j = (block.cumsum(axis=1) <= (t - off)[:, None]).sum(axis=1)
    bad = np.flatnonzero(j >= valid)
    for i in bad:
        j[i] = _last_positive(block[i, :valid[i]])
    return k * b + j


def _draw_many(w: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
    """``u.size`` draws from the 1-D weights ``w``; and ``Σ w``."""
    v = w.shape[0]
    b, starts = _blocks(v)
    if v <= _SMALL or u.shape[0] * b * 4 > v:  # many draws: one cumsum serves them all
        c = w.cumsum()
        total = float(c[-1])
        idx = c.searchsorted(u * total, "right")
        over = idx >= v
        if over.any():
            idx[over] = _last_positive(w)
        return idx, total
    c = np.add.reduceat(w, starts).cumsum()
    total = float(c[-1])
    return _draw_blocks(w, c, u * total, b, None), total


def _draw_rows(w: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One draw per row of the ``(m, V)`` weights ``w``; and the row totals."""
    m, v = w.shape
    if v <= _SMALL:
        c = w.cumsum(axis=1)
        total = c[:, -1].copy()
        idx = (c <= (u * total)[:, None]).sum(axis=1)
        for i in np.flatnonzero(idx >= v):
            idx[i] = _last_positive(w[i])
        return idx, total
    b, starts = _blocks(v)
    c = np.add.reduceat(w, starts, axis=1).cumsum(axis=1)
    total = c[:, -1].copy()
    return _draw_blocks(w, c, u * total, b, np.arange(m)), total


def sample_categorical(rng: np.random.Generator, probs: np.ndarray, n: int | None = None) -> np.ndarray:
    """Draw one index per row of ``probs`` (``(V,)`` with ``n`` draws, or ``(m, V)`` with one each).

    Inverse CDF (see the comment above ``_draw``): ``rng.random(n)`` (or
    ``rng.random(m)``) uniforms, each mapped through the running sums of its
    row; an entry of probability 0 is never drawn.  Rows need not be normalised.
    """
    probs = _as_float(probs)
    n = check_draws(n)
    if probs.ndim == 1:
        return _draw_many(probs, rng.random(n if n is not None else 1))[0]
    return _draw_rows(probs, rng.random(probs.shape[0]))[0]


@dataclass(frozen=True)
class StepSample:
    """Vectorised outcome of verification steps: the proposal, whether it was accepted, the token emitted."""

    proposal: np.ndarray
    accepted: np.ndarray
    emitted: np.ndarray
    #: ``α = Σ min(p, r)`` (per row for ``(m, V)`` laws) when the step was asked for it, else ``None``
    acceptance: np.ndarray | None = None


_TRUE, _FALSE = np.array((True,)), np.array((False,))  # copied, not shared: a caller may write to its result


def _one_sample(x: int, accepted: bool, y: int, alpha) -> StepSample:
    """``StepSample`` of one step, built without the frozen ``__init__`` (four ``object.__setattr__`` calls
    cost as much as a tenth of a whole step over 1,000 tokens); the fields are set once, here."""
    out = object.__new__(StepSample)
    xy = np.array((x, y))
    out.__dict__.update(proposal=xy[:1], accepted=(_TRUE if accepted else _FALSE).copy(), emitted=xy[1:],
                        acceptance=alpha)
    return out


def sample_step(rng: np.random.Generator, p, r, n: int | None = None, proposal: np.ndarray | None = None,
                accept_ratio=None, *, acceptance: bool = False) -> StepSample:
    """Run verification steps: ``n`` draws for one ``(p, r)`` pair, or one per row of ``(m, V)`` arrays.

    The trusted path: ``p`` and ``r`` are taken to be laws (the verifier
    modules check them once, see :func:`checked_sample_step`); only their
    lengths are compared.  ``proposal`` lets a caller draw the proposals itself
    (e.g. RDK's two-stage draw ``i ~ q'``, ``x ~ M[i]``), as long as their law
    is ``r``.  ``accept_ratio`` replaces ``min(1, p/r)`` — only the
    deliberately lossy variants in the tests use it.

    ``acceptance=True`` also returns ``α = Σ min(p, r)`` (``StepSample.acceptance``),
    computed in the same passes: cheaper than a separate :func:`acceptance` call.

    Random numbers, in order: one uniform per proposal, one per accept coin,
    then (one law, ``n`` draws) one per rejected proposal, or (rows) one per row
    drawn up front, used where the row's proposal is rejected.
    """
    if (n is None and proposal is None and accept_ratio is None and type(p) is np.ndarray and type(r) is np.ndarray
            and p.dtype is _F64 and r.dtype is _F64 and p.ndim == 1 and p.shape == r.shape):  # the common case
        return _step_one(rng, p, r, None, acceptance)
    p = _as_float(p)
    r = _as_float(r)
    check_same_vocabulary(p, r, ("p", "r"))
    n = check_draws(n)
    if proposal is None and accept_ratio is None and p.shape == r.shape:
        return _step(rng, p, r, n, None, acceptance)
    rows = p.ndim == 2
    x = proposal if proposal is not None else sample_categorical(rng, r, None if rows else n)
    m = x.shape[0]
    take = (np.arange(m), x) if rows else (x,)
    px, rx = p[take], r[take]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rx > 0, np.minimum(1.0, px / rx), 0.0) if accept_ratio is None else accept_ratio(px, rx)
    accepted = rng.random(m) < ratio
    emitted = x.copy()
    rejected = np.flatnonzero(~accepted)
    if rejected.size:  # the residual is needed only where a proposal was rejected
        if rows:
            emitted[rejected] = sample_categorical(rng, residual(p[rejected], r[rejected]))
        else:
            emitted[rejected] = sample_categorical(rng, residual(p, r), rejected.size)
    return StepSample(x, accepted, emitted, _alpha(p, r) if acceptance else None)


def checked_sample_step(rng: np.random.Generator, p, r, n: int | None = None,
                        names: tuple[str, str] = ("p", "q"), *, acceptance: bool = False) -> StepSample:
    """:func:`sample_step` with both laws checked, once, inside the step.

    The checks (:func:`check_distribution`'s rules and messages) share the
    step's passes over the data: ``r``'s total comes from the sums its
    proposals are drawn with, so a checked step reads ``p`` twice and ``r``
    twice more than an unchecked one — instead of the ~16 passes of checking
    each law separately with temporaries.
    """
    if (n is None and type(p) is np.ndarray and type(r) is np.ndarray and p.dtype is _F64 and r.dtype is _F64
            and p.ndim == 1 and p.shape == r.shape and p.shape[0]):  # the common case, with no detour
        return _step_one(rng, p, r, names, acceptance)
    n = check_draws(n)
    p = _as_float(p)
    r = _as_float(r)
    if p.ndim == 0 or p.shape[-1] == 0 or r.ndim == 0 or r.shape[-1] == 0:
        check_distribution(names[0], p)
        check_distribution(names[1], r)
    check_same_vocabulary(p, r, names)
    if p.shape != r.shape:
        p = check_distribution(names[0], p)
        r = check_distribution(names[1], r)
        return sample_step(rng, p, r, n, acceptance=acceptance)
    if p.ndim == 1 and (n is None or n == 1):
        return _step_one(rng, p, r, names, acceptance)
    return _step(rng, p, r, n, names, acceptance)


def _check_nonnegative(names, p, r) -> None:
    """Both laws' minima: a negative entry or a NaN fails ``>= 0``."""
    if not _min(p, axis=None) >= 0:
        raise _negative(names[0])
    if not _min(r, axis=None) >= 0:
        raise _negative(names[1])


def _step(rng, p: np.ndarray, r: np.ndarray, n, names, alpha: bool = False) -> StepSample:
    """The verification step proper; checks the laws first when ``names`` is given, returns α if ``alpha``."""
    if p.ndim == 1:
        if n is None or n == 1:
            return _step_one(rng, p, r, names, alpha)
        return _step_many(rng, p, r, int(n), names, alpha)
    if p.ndim == 2:
        return _step_rows(rng, p, r, names, alpha)
    m = int(np.prod(p.shape[:-1]))
    out = _step_rows(rng, p.reshape(m, -1), r.reshape(m, -1), names, alpha)
    shape = p.shape[:-1]
    return StepSample(out.proposal.reshape(shape), out.accepted.reshape(shape), out.emitted.reshape(shape),
                      None if out.acceptance is None else out.acceptance.reshape(shape))


def _prepare(p: np.ndarray, r: np.ndarray, names, alpha: bool, out: np.ndarray | None = None):
    """Checks (``names`` given) and ``min(p, r)`` (when α is wanted, or when it is the cheaper check).

    ``min(p, r)`` propagates a NaN and shows a negative of either law in one
    reduction; on long laws (``> _FUSE_MIN``) two minima cost less than
    writing it, unless α needs it anyway.  Returns ``min(p, r)`` or ``None``.
    """
    mn = None
    if alpha or (names is not None and p.shape[-1] <= _FUSE_MIN):
        mn = np.minimum(p, r, out=out)
        if names is not None and not _min(mn, axis=None) >= 0:
            _check_nonnegative(names, p, r)  # says which law is at fault
    elif names is not None:
        _check_nonnegative(names, p, r)
    if names is not None:
        if p.ndim == 1:
            _check_total(names[0], p)
        else:
            _check_totals(names[0], _sum(p, axis=-1))
    return mn


def _residual_weights(p: np.ndarray, r: np.ndarray, mn, out: np.ndarray | None = None) -> np.ndarray:
    """``(p − r)_+`` unnormalised (``p − min(p, r)`` when that is at hand: the same numbers)."""
    if mn is not None:
        return np.subtract(p, mn, out=out)
    excess = np.subtract(p, r, out=out)
    # against an array of zeros, not the scalar 0.0: the same numbers, but numpy's scalar form branches per entry
    # (3-4x slower on entries of mixed sign)
    np.maximum(excess, _zeros(p.shape[-1]), out=excess)
    return excess


@lru_cache(maxsize=4)
def _zeros(v: int) -> np.ndarray:
    z = np.zeros(v)
    z.flags.writeable = False
    return z


def _step_one(rng, p: np.ndarray, r: np.ndarray, names, alpha: bool = False) -> StepSample:
    """One verification step for one context: ``O(V)`` reads, one ``√V`` cumsum, a temporary only on rejection."""
    mn = None
    if names is not None and p.shape[0] <= _FUSE_MIN:  # short laws: _prepare inlined (per-call overhead rules)
        seen = _passed
        if seen[0]() is p and seen[1]() is r and p.tobytes() == seen[2] and r.tobytes() == seen[3]:
            mn = seen[4]  # checked by checked_acceptance, and unchanged since
        else:
            mn = _short_min(p, r, names)
    elif names is not None or alpha:
        mn = _prepare(p, r, names, alpha)
    u_prop = rng.random()
    u_coin = rng.random()
    x, total = _draw(r, u_prop)
    if names is not None and not abs(total - 1.0) <= _SUM_TOL:
        _check_totals(names[1], total)
    rx = r.item(x)
    accepted = rx > 0 and u_coin < p.item(x) / rx
    y = x
    if not accepted:
        u_res = rng.random()
        y, mass = _draw(p - mn if mn is not None else _residual_weights(p, r, None), u_res)
        if not mass > 0:  # p == r up to rounding: rejection had probability ~0; the residual is p itself
            y = _draw(p, u_res)[0]
    return _one_sample(x, accepted, y, _sum(mn) if alpha else None)


def _step_many(rng, p: np.ndarray, r: np.ndarray, n: int, names, alpha: bool = False) -> StepSample:
    """``n`` verification steps for one context (one set of running sums serves every draw)."""
    mn = _prepare(p, r, names, alpha) if (names is not None or alpha) else None
    x, total = _draw_many(r, rng.random(n))
    if names is not None:
        _check_totals(names[1], total)
    px, rx = p[x], r[x]
    with np.errstate(divide="ignore", invalid="ignore"):
        accepted = rng.random(n) < np.where(rx > 0, px / rx, 0.0)
    emitted = x.copy()
    rejected = np.flatnonzero(~accepted)
    if rejected.size:
        excess = _residual_weights(p, r, mn)
        if not excess.sum() > 0:
            excess = p
        emitted[rejected] = _draw_many(excess, rng.random(rejected.size))[0]
    return StepSample(x, accepted, emitted, _sum(mn) if alpha else None)


def _step_rows(rng, p: np.ndarray, r: np.ndarray, names, alpha: bool = False) -> StepSample:
    """One verification step per row, rows taken a cache-sized chunk at a time (checks, draws, residuals).

    Long rows go one at a time through the 1-D draws (fewer numpy calls than
    2-D ones over a few rows); short rows go a chunk at a time, vectorised.
    Either way each row is checked, drawn from and (if rejected) resampled
    while it is in cache.
    """
    m, v = p.shape
    u_prop, u_coin, u_res = rng.random(m), rng.random(m), rng.random(m)
    x = np.empty(m, dtype=np.intp)
    accepted = np.empty(m, dtype=bool)
    emitted = np.empty(m, dtype=np.intp)
    alphas = np.empty(m) if alpha else None
    prep = names is not None or alpha
    step = max(1, _ROWS_CHUNK // max(v, 1))
    if step < 8:
        def rows(lo: int, hi: int) -> None:
            # two row-sized buffers for all the rows: a fresh multi-megabyte temporary per row is page-faulted in
            # anew each time (what a loop of single calls pays)
            buf_mn, buf_res = (np.empty(v) if prep else None), np.empty(v)
            for i in range(lo, hi):
                pi, ri = p[i], r[i]
                mn = _prepare(pi, ri, names, alpha, buf_mn) if prep else None
                xi, total = _draw(ri, float(u_prop[i]))
                if names is not None:
                    _check_totals(names[1], total)
                rx = ri.item(xi)
                acc = rx > 0 and float(u_coin[i]) < pi.item(xi) / rx
                yi = xi
                if not acc:
                    yi, mass = _draw(_residual_weights(pi, ri, mn, buf_res), float(u_res[i]))
                    if not mass > 0:
                        yi = _draw(pi, float(u_res[i]))[0]
                x[i], accepted[i], emitted[i] = xi, acc, yi
                if alpha:
                    alphas[i] = _sum(mn)

        run_row_chunks(rows, m, v)  # on several threads where rows are long (see .row_threads)
        return StepSample(x, accepted, emitted, alphas)
    for lo in range(0, m, step):
        hi = min(m, lo + step)
        pc, rc = p[lo:hi], r[lo:hi]
        mn = _prepare(pc, rc, names, alpha) if prep else None
        xc, total = _draw_rows(rc, u_prop[lo:hi])
        if names is not None:
            _check_totals(names[1], total)
        idx = np.arange(hi - lo)
        rx = rc[idx, xc]
        with np.errstate(divide="ignore", invalid="ignore"):
            acc = u_coin[lo:hi] < np.where(rx > 0, pc[idx, xc] / rx, 0.0)
        yc = xc.copy()
        rej = np.flatnonzero(~acc)
        if rej.size:
            y, mass = _draw_rows(_residual_weights(pc[rej], rc[rej], None if mn is None else mn[rej]),
                                 u_res[lo:hi][rej])
            flat = np.flatnonzero(~(mass > 0))  # p == r up to rounding: the residual is p itself
            if flat.size:
                y[flat] = _draw_rows(pc[rej[flat]], u_res[lo:hi][rej[flat]])[0]
            yc[rej] = y
        x[lo:hi], accepted[lo:hi], emitted[lo:hi] = xc, acc, yc
        if alpha:
            alphas[lo:hi] = _sum(mn, axis=1)
    return StepSample(x, accepted, emitted, alphas)
