"""Every verifier behind one call, ``TokenPair.step(algorithm, context)``, and the registry that names them.

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

**The registry.**  Each verifier is a function ``fn(pair, p, q, context) ->
StepLaw`` (``p``, ``q``: the target's and the drafter's next-token laws in
``context``) registered under a name; :func:`verifiers` lists them in
registration order, and ``simspec vocab --algorithm`` offers exactly those.
Adding a verifier is one module (its function, citing its paper) plus one
:func:`register_verifier` call.  A verifier that proposes a token ``x ~ r``
over the target's vocabulary needs only ``r``: :func:`proposal_law` does the
rest (standard verification, :mod:`.core`, lossless whatever ``r`` is):

>>> def target_as_drafter(pair, p, q, context):   # a toy: the target proposes to itself
...     return proposal_law("oracle", p, q, p)
>>> _ = register_verifier("oracle", target_as_drafter, description="the target drafts for itself (acceptance 1)")
>>> "oracle" in verifiers(), pair.step("oracle", "ab").acceptance
(True, 1.0)
>>> unregister_verifier("oracle")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from ..errors import InvalidParameterError, VocabularyError
from . import core, rdk, slem, tli
from .models import TokenLM
from .retokenize import first_token_law
from .vocab import VocabularyMap

__all__ = ["StepLaw", "TokenPair", "Verifier", "register_verifier", "unregister_verifier", "verifiers",
           "proposal_law", "ALGORITHMS"]


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


def proposal_law(name: str, p, q, r, drafter_forwards: float = 1.0) -> StepLaw:
    """The :class:`StepLaw` of standard verification of proposals ``x ~ r`` (``r`` over the target's vocabulary)."""
    p = np.asarray(p, dtype=float)
    r = np.asarray(r, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc_y = np.where(p > 0, np.minimum(p, r) / p, 0.0)
    return StepLaw(name, p, np.asarray(q, dtype=float), float(core.acceptance(p, r)), core.output_law(p, r),
                   float(drafter_forwards), lambda rng, k: core.sample_step(rng, p, r, k), acc_y)


@dataclass(frozen=True)
class Verifier:
    """A registered verifier: its name, its step function and a one-line description.

    ``shared_vocabulary``: it needs the drafter to use the target's vocabulary;
    ``kernel``: it reads the pair's RDK kernel (the CLI builds one for it).
    """

    name: str
    step: Callable[..., StepLaw] = field(repr=False)
    description: str = ""
    shared_vocabulary: bool = False
    kernel: bool = False


_REGISTRY: dict[str, Verifier] = {}


def register_verifier(name: str, fn: Callable[..., StepLaw], description: str = "", *,
                      shared_vocabulary: bool = False, kernel: bool = False, replace: bool = False) -> Verifier:
    """Register ``fn(pair, p, q, context) -> StepLaw`` under ``name``; returns the :class:`Verifier`.

    ``name`` must be a non-empty word (letters, digits, ``-``, ``_``: it becomes a
    CLI choice); a name already taken needs ``replace=True``.
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise InvalidParameterError(f"a verifier's name must be a non-empty word of letters, digits, '-' or '_', "
                                    f"got {name!r}")
    if not callable(fn):
        raise InvalidParameterError(f"verifier {name!r}: fn must be callable as fn(pair, p, q, context) -> StepLaw, "
                                    f"got {type(fn).__name__}")
    if name in _REGISTRY and not replace:
        raise InvalidParameterError(f"a verifier named {name!r} is already registered; pick another name or pass "
                                    "replace=True")
    v = Verifier(name, fn, str(description), bool(shared_vocabulary), bool(kernel))
    _REGISTRY[name] = v
    return v


def unregister_verifier(name: str) -> None:
    """Remove a registered verifier (the built-in ones too)."""
    if name not in _REGISTRY:
        raise InvalidParameterError(f"no verifier named {name!r} is registered; registered: {', '.join(_REGISTRY)}")
    del _REGISTRY[name]


def verifiers() -> Mapping[str, Verifier]:
    """The registered verifiers, by name, in registration order (a read-only view)."""
    return MappingProxyType(_REGISTRY)


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
        v = _REGISTRY.get(algorithm)
        if v is None:
            raise InvalidParameterError(f"algorithm must be one of {', '.join(_REGISTRY)}, got {algorithm!r} "
                                        "(register_verifier adds one)")
        if v.shared_vocabulary and self.target.vocab != self.drafter.vocab:
            others = ", ".join(n for n, w in _REGISTRY.items() if not w.shared_vocabulary)
            raise VocabularyError(f"{algorithm} needs one shared vocabulary; use {others}")
        p = self.target.next_token_probs(context)
        q = self.drafter.next_token_probs(context)
        with np.errstate(divide="ignore", invalid="ignore"):
            return v.step(self, p, q, context)


# ---- the built-in verifiers (each module names its paper) -------------------------------------------


def _std(pair: TokenPair, p, q, context) -> StepLaw:
    return proposal_law("std", p, q, q)


def _union(pair: TokenPair, p, q, context) -> StepLaw:
    vm = pair.vocab_map
    p_u, q_u = tli.union_space(p, q, vm)
    law = core.output_law(p_u, q_u)
    n = len(vm.target)
    acc_y = np.where(p > 0, np.minimum(p_u, q_u)[:n] / p, 0.0)
    return StepLaw("union", p, q, float(core.acceptance(p_u, q_u)), law[:n] + 0 * law[n:].sum(), 1.0,
                   lambda rng, k: core.sample_step(rng, p_u, q_u, k), acc_y)


def _tli(pair: TokenPair, p, q, context) -> StepLaw:
    return proposal_law("tli", p, q, tli.tli_proposal(q, pair.vocab_map))


def _rdk(pair: TokenPair, p, q, context) -> StepLaw:
    vm = pair.vocab_map
    M = pair.kernel if pair.kernel is not None else rdk.identity_kernel(vm)
    return proposal_law("rdk", p, q, rdk.rdk_proposal(q, vm, M))


def _slem(pair: TokenPair, p, q, context) -> StepLaw:
    f = first_token_law(pair.drafter, pair.target.vocab, context)
    return StepLaw("slem", p, q, float(slem.acceptance(p, f.psi)), slem.output_law(p, f.psi),
                   f.expected_path_forwards, lambda rng, k: slem.sample(rng, p, f.psi, k), f.psi)


def _slrs(pair: TokenPair, p, q, context) -> StepLaw:
    f = first_token_law(pair.drafter, pair.target.vocab, context)
    return proposal_law("slrs", p, q, f.psi, float(f.enumeration_forwards))


register_verifier("std", _std, "standard speculative sampling over one shared vocabulary (Leviathan et al. 2023)",
                  shared_vocabulary=True)
register_verifier("union", _union, "padded union of the two vocabularies, the baseline (Timor et al. 2025, Alg. 1)")
register_verifier("tli", _tli, "token-level intersection (Timor et al. 2025, Alg. 4)")
register_verifier("slem", _slem, "string-level exact match (Timor et al. 2025, Alg. 2)")
register_verifier("slrs", _slrs, "string-level rejection sampling (Timor et al. 2025, Alg. 3)")
register_verifier("rdk", _rdk, "redistributing drafter kernels, out-of-vocabulary proposals (Timor et al. 2025b)",
                  kernel=True)

#: the built-in verifiers' names (the registry, :func:`verifiers`, is the live list)
ALGORITHMS = tuple(_REGISTRY)
