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

>>> import numpy as np
>>> p, r = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.2, 0.6])
>>> float(acceptance(p, r))
0.6
>>> output_law(p, r)
array([0.5, 0.3, 0.2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import MAX_DRAW_BYTES, check_work, int_at_least
from ..errors import DistributionError

__all__ = ["check_distribution", "check_same_vocabulary", "check_pair", "acceptance", "residual", "output_law", "StepSample", "sample_step",
           "sample_categorical"]

_ATOL = 1e-9


def check_distribution(name: str, x, axis: int = -1) -> np.ndarray:
    """``x`` as a float array of probabilities along ``axis``, or a :class:`DistributionError`."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0 or arr.shape[axis] == 0:
        raise DistributionError(f"{name} must be a non-empty vector of probabilities")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise DistributionError(f"{name} has negative or non-finite entries; probabilities are >= 0")
    total = arr.sum(axis=axis)
    bad = np.abs(total - 1.0) > 1e-6
    if np.any(bad):
        worst = float(np.ravel(total)[np.argmax(np.ravel(np.abs(total - 1.0)))])
        raise DistributionError(f"{name} must sum to 1 along its last axis, but a row sums to {worst:.6g}; "
                                "normalise it (x / x.sum())")
    return arr


def check_same_vocabulary(p: np.ndarray, r: np.ndarray, names: tuple[str, str] = ("p", "q")) -> None:
    """Both laws must range over one vocabulary: a length mismatch would otherwise broadcast silently."""
    from ..errors import VocabularyError

    if np.shape(p)[-1] != np.shape(r)[-1]:
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
    """``α = Σ min(p, r)``: the probability that a proposal ``x ~ r`` is accepted."""
    return np.minimum(p, r).sum(axis=-1)


def residual(p, r) -> np.ndarray:
    """``norm((p − r)_+)``, the law sampled after a rejection (``p`` itself where ``p = r``)."""
    p = np.asarray(p, dtype=float)
    excess = np.maximum(p - np.asarray(r, dtype=float), 0.0)
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


def sample_categorical(rng: np.random.Generator, probs: np.ndarray, n: int | None = None) -> np.ndarray:
    """Draw one index per row of ``probs`` (``(V,)`` with ``n`` draws, or ``(m, V)`` with one each).

    Inverse CDF on a cumulative sum: a binary search per draw for one law, a
    vectorised count per row for many.
    """
    probs = np.asarray(probs, dtype=float)
    n = check_draws(n)
    if probs.ndim == 1:
        cdf = np.cumsum(probs)
        u = rng.random(n if n is not None else 1) * cdf[-1]
        return np.minimum(np.searchsorted(cdf, u, side="right"), probs.size - 1)
    m, v = probs.shape
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(m) * cdf[:, -1]
    # count the entries of each row's CDF at or below its u: exact per row (no shared offsets to lose
    # precision in), O(m·V) comparisons, vectorised
    idx = (cdf <= u[:, None]).sum(axis=1)
    return np.minimum(idx, v - 1)


@dataclass(frozen=True)
class StepSample:
    """Vectorised outcome of verification steps: the proposal, whether it was accepted, the token emitted."""

    proposal: np.ndarray
    accepted: np.ndarray
    emitted: np.ndarray


def sample_step(rng: np.random.Generator, p, r, n: int | None = None, proposal: np.ndarray | None = None,
                accept_ratio=None) -> StepSample:
    """Run verification steps: ``n`` draws for one ``(p, r)`` pair, or one per row of ``(m, V)`` arrays.

    ``proposal`` lets a caller draw the proposals itself (e.g. RDK's two-stage
    draw ``i ~ q'``, ``x ~ M[i]``), as long as their law is ``r``.
    ``accept_ratio`` replaces ``min(1, p/r)`` — only the deliberately lossy
    variants in the tests use it.
    """
    p = np.asarray(p, dtype=float)
    r = np.asarray(r, dtype=float)
    check_same_vocabulary(p, r, ("p", "r"))
    n = check_draws(n)
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
    return StepSample(x, accepted, emitted)
