"""Heterogeneous vocabularies at the token level: the union baseline and TLI.

Timor, Mamou, Korat et al., "Accelerating LLM Inference with Lossless
Speculative Decoding Algorithms for Heterogeneous Vocabularies", arXiv
2502.05202 (ICML 2025): Algorithm 1 (union) and Algorithm 4 (TLI, Token-Level
Intersection).  Target vocabulary ``T``, drafter vocabulary ``D``,
intersection ``I``.

* union: pad ``p`` and ``q`` with zeros to ``T ∪ D`` and run standard
  verification; a drafter-only token has ``p = 0`` and is always rejected.
  ``α = Σ_{t∈I} min(p, q)``.
* TLI: the drafter samples from ``q' = q/q(I)`` on ``I`` only, mapped into
  ``T``; ``α = Σ_{t∈I} min(p(t), q(t)/q(I))``, and ``α_union ≤ α_TLI ≤ p(I)``.

Both are standard verification with a proposal over ``T`` (or ``T ∪ D``), so
both are lossless at any temperature (:mod:`.core`).

>>> import numpy as np
>>> from simspec.sampling.vocab import Vocabulary, VocabularyMap
>>> vm = VocabularyMap(Vocabulary(("a", "b", "c")), Vocabulary(("a", "b", "z")))
>>> p, q = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.2, 0.4])
>>> round(float(union_acceptance(p, q, vm)), 12), round(float(tli_acceptance(p, q, vm)), 12)
(0.6, 0.8)
"""

from __future__ import annotations

import numpy as np

from ..errors import DistributionError
from . import core
from .vocab import VocabularyMap

__all__ = [
    "union_space", "union_acceptance", "union_output_law", "union_sample",
    "tli_proposal", "tli_acceptance", "tli_output_law", "tli_sample",
]


def _check(p, q, vm: VocabularyMap) -> tuple[np.ndarray, np.ndarray]:
    p = core.check_distribution("p", p)
    q = core.check_distribution("q", q)
    vm.check_target(p)
    vm.check_drafter(q)
    return p, q


def union_space(p, q, vm: VocabularyMap) -> tuple[np.ndarray, np.ndarray]:
    """``p`` and ``q`` padded to ``T ∪ D``: target tokens first, then drafter-only tokens."""
    p, q = _check(p, q, vm)
    d2t = vm.drafter_to_target
    only = np.flatnonzero(d2t < 0)
    lead = p.shape[:-1]
    p_u = np.concatenate([p, np.zeros(lead + (only.size,))], axis=-1)
    q_u = np.zeros(lead + (len(vm.target) + only.size,))
    inside = np.flatnonzero(d2t >= 0)
    q_u[..., d2t[inside]] = q[..., inside]
    q_u[..., len(vm.target):] = q[..., only]
    return p_u, q_u


def union_acceptance(p, q, vm: VocabularyMap) -> np.ndarray:
    """``Σ_{t∈I} min(p(t), q(t))``."""
    return core.acceptance(*union_space(p, q, vm))


def union_output_law(p, q, vm: VocabularyMap) -> np.ndarray:
    """Exact law of the emitted token over ``T ∪ D`` (mass 0 on drafter-only tokens)."""
    return core.output_law(*union_space(p, q, vm))


def union_sample(rng: np.random.Generator, p, q, vm: VocabularyMap, n: int | None = None) -> core.StepSample:
    """Verification steps in the union space (emitted indices ``< |T|`` are target tokens)."""
    p_u, q_u = union_space(p, q, vm)
    return core.sample_step(rng, p_u, q_u, n)


def tli_proposal(q, vm: VocabularyMap) -> np.ndarray:
    """``q' = q/q(I)`` on the intersection, as a distribution over the target's vocabulary."""
    q = core.check_distribution("q", q)
    vm.check_drafter(q)
    return _tli_proposal(q, vm)


def _tli_proposal(q: np.ndarray, vm: VocabularyMap) -> np.ndarray:
    """:func:`tli_proposal` for a ``q`` already checked (the verifiers below check their inputs once)."""
    vm.require_intersection()
    d2t = vm.drafter_to_target
    inside = np.flatnonzero(d2t >= 0)
    mass = q[..., inside].sum(axis=-1, keepdims=True)
    if np.any(mass <= 0):
        raise DistributionError("q puts no mass on the intersection, so TLI has nothing to propose")
    out = np.zeros(q.shape[:-1] + (len(vm.target),))
    out[..., d2t[inside]] = q[..., inside] / mass
    return out


def tli_acceptance(p, q, vm: VocabularyMap) -> np.ndarray:
    """``Σ_{t∈I} min(p(t), q(t)/q(I))``."""
    p, q = _check(p, q, vm)
    return core.acceptance(p, _tli_proposal(q, vm))


def tli_output_law(p, q, vm: VocabularyMap) -> np.ndarray:
    p, q = _check(p, q, vm)
    return core.output_law(p, _tli_proposal(q, vm))


def tli_sample(rng: np.random.Generator, p, q, vm: VocabularyMap, n: int | None = None) -> core.StepSample:
    """Verification steps with proposals from ``q'`` (drafted from ``q`` restricted to ``I``)."""
    p, q = _check(p, q, vm)
    return core.sample_step(rng, p, _tli_proposal(q, vm), n)
