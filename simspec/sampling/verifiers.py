"""Every verifier behind one call: ``TokenPair.step(algorithm, context)``.

A :class:`TokenPair` is a target and a drafter :class:`~.models.TokenLM` (and,
for RDK, a kernel).  ``step`` returns a :class:`StepLaw` for one context: the
target's law, the closed-form acceptance, the exact output law (from the
mechanism — the tests compare it with ``p``), a vectorised sampler and the
drafter forwards one verification costs.  The CLI, the experiments and the
bridge to the timing engines go through it.

>>> from simspec.sampling.models import CharLanguage, TokenLM
>>> from simspec.sampling.vocab import alphabet_vocabulary
>>> lang = CharLanguage("ab", seed=2)
>>> pair = TokenPair(TokenLM(lang, alphabet_vocabulary("ab", ["ab"])), TokenLM(lang, alphabet_vocabulary("ab", ["ba"])))
>>> law = pair.step("tli", "ab")
>>> bool(abs(law.output_law - law.p).max() < 1e-12), 0 <= law.acceptance <= 1
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

from ..errors import InvalidParameterError, VocabularyError
from . import core, rdk, slem, slrs, std, tli
from .models import TokenLM
from .retokenize import first_token_law
from .vocab import VocabularyMap

__all__ = ["ALGORITHMS", "StepLaw", "TokenPair"]

ALGORITHMS = ("std", "union", "tli", "slem", "slrs", "rdk")


@dataclass(frozen=True)
class StepLaw:
    """One verification step of ``algorithm`` in one context (laws over the target's vocabulary)."""

    algorithm: str
    p: np.ndarray
    q: np.ndarray
    acceptance: float
    output_law: np.ndarray
    drafter_forwards: float
    sample: Callable[[np.random.Generator, int], core.StepSample] = field(repr=False)
    #: P(accepted | the emitted token is y), for drawing acceptance outcomes along target-sampled text
    accept_given_emitted: np.ndarray = field(repr=False, default=None)


@dataclass(frozen=True, eq=False)
class TokenPair:
    """A target and a drafter model, and RDK's kernel (``None``: the identity, i.e. TLI)."""

    target: TokenLM
    drafter: TokenLM
    kernel: object = None

    @cached_property
    def vocab_map(self) -> VocabularyMap:
        return VocabularyMap(self.target.vocab, self.drafter.vocab)

    def step(self, algorithm: str, context: str) -> StepLaw:
        if algorithm not in ALGORITHMS:
            raise InvalidParameterError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
        p = self.target.next_token_probs(context)
        q = self.drafter.next_token_probs(context)
        vm = self.vocab_map
        with np.errstate(divide="ignore", invalid="ignore"):
            if algorithm == "std":
                if self.target.vocab != self.drafter.vocab:
                    raise VocabularyError("std needs one shared vocabulary; use union, tli, slem, slrs or rdk")
                return self._proposal_law("std", p, q, q, 1.0)
            if algorithm == "union":
                p_u, q_u = tli.union_space(p, q, vm)
                law = core.output_law(p_u, q_u)
                n = len(vm.target)
                acc_y = np.where(p > 0, np.minimum(p_u, q_u)[:n] / p, 0.0)
                return StepLaw("union", p, q, float(core.acceptance(p_u, q_u)), law[:n] + 0 * law[n:].sum(), 1.0,
                               lambda rng, k: core.sample_step(rng, p_u, q_u, k), acc_y)
            if algorithm == "tli":
                return self._proposal_law("tli", p, q, tli.tli_proposal(q, vm), 1.0)
            if algorithm == "rdk":
                M = self.kernel if self.kernel is not None else rdk.identity_kernel(vm)
                return self._proposal_law("rdk", p, q, rdk.rdk_proposal(q, vm, M), 1.0)
            f = first_token_law(self.drafter, self.target.vocab, context)
            if algorithm == "slrs":
                return self._proposal_law("slrs", p, q, f.psi, float(f.enumeration_forwards))
            return StepLaw("slem", p, q, float(slem.acceptance(p, f.psi)), slem.output_law(p, f.psi),
                           f.expected_path_forwards, lambda rng, k: slem.sample(rng, p, f.psi, k), f.psi)

    @staticmethod
    def _proposal_law(name: str, p, q, r, forwards: float) -> StepLaw:
        with np.errstate(divide="ignore", invalid="ignore"):
            acc_y = np.where(p > 0, np.minimum(p, r) / p, 0.0)
        return StepLaw(name, p, q, float(core.acceptance(p, r)), core.output_law(p, r), forwards,
                       lambda rng, k: core.sample_step(rng, p, r, k), acc_y)
