"""SLRS — String-Level Rejection Sampling (Timor, Mamou, Korat et al., arXiv 2502.05202, Algorithm 3).

Standard verification (:mod:`.core`) between the target's ``p(t)`` and the law
``ψ(t)`` of the target token the drafter's text starts with (:mod:`.retokenize`),
so ``α = Σ_t min(p(t), ψ(t)) ≥ α_SLEM = Σ_t p(t) ψ(t)`` (``min(p, ψ) ≥ p ψ``) and
the output law is ``p``.  The price is ``ψ`` itself: the residual needs it for
every ``t``, i.e. every drafter tokenization of every target token's text — its
drafter forwards are reported as the cost.

Note on ``ψ``: the spec's "sum over all drafter tokenizations of ``t``'s string"
counts token sequences that end exactly at ``t``'s last character; as a
proposal that is not a distribution (with target tokens ``he`` and ``hey``, the
drafter's ``he`` counts for both).  simspec uses the law of the first target
token of the drafter's text, which sums the same tokenizations plus those that
cross ``t``'s end, and is a distribution — which rejection sampling needs
(``theory/string_level.md``).

>>> import numpy as np
>>> p, psi = np.array([0.6, 0.4]), np.array([0.5, 0.5])
>>> float(acceptance(p, psi))
0.9
"""

from __future__ import annotations

import numpy as np

from . import core

__all__ = ["acceptance", "output_law", "sample"]


def acceptance(p, psi) -> np.ndarray:
    """``Σ_t min(p(t), ψ(t))``."""
    return core.checked_acceptance(p, psi, ("p", "psi"))


def output_law(p, psi) -> np.ndarray:
    return core.output_law(*core.check_pair(p, psi, ("p", "psi")))


def sample(rng: np.random.Generator, p, psi, n: int | None = None, *, acceptance: bool = False) -> core.StepSample:
    """Verification steps with proposals ``t ~ ψ`` (the first target token of a fresh draft); α too if asked."""
    return core.checked_sample_step(rng, p, psi, n, ("p", "psi"), acceptance=acceptance)
