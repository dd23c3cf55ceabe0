"""Standard speculative sampling over one shared vocabulary, and its greedy (exact-match) form.

Leviathan, Kalman & Matias 2023; Chen et al. 2023.  Sampling: see :mod:`.core`
(proposal = the drafter's ``q``).  Greedy, temperature 0 (transformers'
exact-match path): a draft is accepted iff it equals ``argmax p``; at the first
mismatch ``argmax p`` is emitted, so the output is token for token the
target's greedy output.

>>> import numpy as np
>>> p, q = np.array([0.6, 0.3, 0.1]), np.array([0.3, 0.5, 0.2])
>>> float(acceptance(p, q)), float(greedy_acceptance(p, q))
(0.7, 0.3)
"""

from __future__ import annotations

import numpy as np

from . import core

__all__ = ["acceptance", "output_law", "sample", "greedy_acceptance", "greedy_output", "greedy_sample"]


def acceptance(p, q) -> np.ndarray:
    """``Σ min(p, q) = 1 − TV(p, q)``."""
    return core.checked_acceptance(p, q, ("p", "q"))


def output_law(p, q) -> np.ndarray:
    """Exact law of the emitted token (equals ``p``)."""
    return core.output_law(*core.check_pair(p, q, ("p", "q")))


def sample(rng: np.random.Generator, p, q, n: int | None = None, *, acceptance: bool = False) -> core.StepSample:
    """Vectorised verification steps with proposals drawn from ``q`` (both laws checked once, inside the step).

    ``acceptance=True`` also returns ``α = Σ min(p, q)`` in ``.acceptance``, from
    the same passes over the data (cheaper than calling :func:`acceptance` too).
    """
    return core.checked_sample_step(rng, p, q, n, ("p", "q"), acceptance=acceptance)


def greedy_acceptance(p, q) -> np.ndarray:
    """Probability that a draft sampled from ``q`` equals ``argmax p`` (``q(argmax p)``)."""
    p, q = core.check_pair(p, q, ("p", "q"))
    return np.take_along_axis(q, np.argmax(p, axis=-1)[..., None], axis=-1)[..., 0]


def greedy_output(p) -> np.ndarray:
    """The token greedy verification always emits: ``argmax p``."""
    return np.argmax(core.check_distribution("p", p), axis=-1)


def greedy_sample(rng: np.random.Generator, p, q, n: int) -> core.StepSample:
    """Greedy verification of ``n`` drafts sampled from ``q`` (a drafter at temperature 0 would use argmax q)."""
    p, q = core.check_pair(p, q, ("p", "q"))
    x = core.sample_categorical(rng, q, n)
    top = int(np.argmax(p))
    acc = x == top
    return core.StepSample(x, acc, np.full(n, top))
