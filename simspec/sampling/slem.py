"""SLEM — String-Level Exact Match (Timor, Mamou, Korat et al., arXiv 2502.05202, ICML 2025, Algorithm 2).

The drafter writes ``k`` tokens of text; the text is re-tokenized with the
target's tokenizer; one target forward checks it: each position is accepted
while the target's *own* token (greedy, or sampled independently under
sampling) equals the re-tokenized draft, and the target's token at the first
mismatch (or the bonus) is emitted.  Every emitted token is the target's own
choice, so the output is the target's — greedy: token for token; sampling: in
law.  Acceptance of one position: ``Σ_t p(t) ψ(t)`` (sampling) or
``ψ(argmax p)`` (greedy), ``ψ`` from :mod:`.retokenize`.

>>> import numpy as np
>>> p, psi = np.array([0.6, 0.4]), np.array([0.5, 0.5])
>>> float(acceptance(p, psi)), float(greedy_acceptance(p, psi))
(0.5, 0.5)
"""

from __future__ import annotations

import numpy as np

from . import core

__all__ = ["acceptance", "greedy_acceptance", "output_law", "sample"]


def acceptance(p, psi) -> np.ndarray:
    """``Σ_t p(t) ψ(t)``: the target's independent sample equals the re-tokenized draft."""
    p, psi = core.check_pair(p, psi, ("p", "psi"))
    return (p * psi).sum(axis=-1)


def greedy_acceptance(p, psi) -> np.ndarray:
    """``ψ(argmax p)``: the re-tokenized draft equals the target's greedy token."""
    p, psi = core.check_pair(p, psi, ("p", "psi"))
    return np.take_along_axis(psi, np.argmax(p, axis=-1)[..., None], axis=-1)[..., 0]


def output_law(p, psi) -> np.ndarray:
    """Law of the emitted token, from the mechanism: draft ``t ~ ψ``, target ``y ~ p`` independently, emit ``y``."""
    p, psi = core.check_pair(p, psi, ("p", "psi"))
    joint = psi[..., :, None] * p[..., None, :]  # (draft t, target y)
    return joint.sum(axis=-2)


def sample(rng: np.random.Generator, p, psi, n: int) -> core.StepSample:
    """``n`` steps: the draft's first target token ``t ~ ψ``, the target's ``y ~ p``; accepted iff equal."""
    p, psi = core.check_pair(p, psi, ("p", "psi"))
    t = core.sample_categorical(rng, psi, n)
    y = core.sample_categorical(rng, p, n)
    return core.StepSample(t, t == y, y)
