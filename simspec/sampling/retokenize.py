"""The law of the target token a drafter's text starts with: ``ψ``, by enumerating drafter tokenizations.

String-level verifiers (SLEM, SLRS; Timor et al. 2025, arXiv 2502.05202) let a
drafter write text in its own tokens and read it back with the target's
tokenizer.  ``ψ(t)`` is the probability that the target's greedy tokenizer,
reading the drafter's continuation, takes ``t`` first.  It is a sum over every
drafter token sequence that produces text starting with ``t`` (and no longer
target token) — e.g. ``q('hey') + q('he')q('y'|'he') + …`` — which is why SLRS
pays up to exponentially many drafter forwards.  Enumeration stops on each path
as soon as the first target token is decided: when the text is no longer a
proper prefix of any target token.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .models import TokenLM
from .vocab import GreedyTokenizer, Vocabulary

__all__ = ["FirstTokenLaw", "first_token_law"]


@dataclass(frozen=True)
class FirstTokenLaw:
    """``psi`` over the target's vocabulary, and what computing and sampling it costs.

    ``enumeration_forwards``: drafter forwards to compute ``psi`` exactly (every
    node of the enumeration: SLRS's price); ``expected_path_forwards``: drafter
    forwards along one sampled draft until the first target token is decided
    (what drafting costs SLEM).
    """

    psi: np.ndarray
    enumeration_forwards: int
    expected_path_forwards: float


@lru_cache(maxsize=64)
def _proper_prefixes(vocab: Vocabulary) -> frozenset[str]:
    return frozenset(t[:n] for t in vocab.tokens for n in range(1, len(t)))


def first_token_law(drafter: TokenLM, target: Vocabulary, context: str, min_mass: float = 0.0) -> FirstTokenLaw:
    """``ψ`` for the drafter continuing ``context``, read by the target's greedy tokenizer.

    ``min_mass`` > 0 stops expanding paths lighter than it (their mass goes to
    the token decided so far), trading exactness for speed; the default is exact.
    """
    tok = GreedyTokenizer(target)
    undecided = _proper_prefixes(target)
    psi = np.zeros(len(target))
    d_tokens = drafter.vocab.tokens
    forwards = 0
    path_forwards = 0.0
    stack = [("", 1.0)]
    while stack:
        w, mass = stack.pop()
        if w and (w not in undecided or mass < min_mass):
            psi[tok.first_token(w)] += mass
            continue
        q = drafter.next_token_probs(context + w)
        forwards += 1
        path_forwards += mass
        for j in np.flatnonzero(q):
            stack.append((w + d_tokens[j], mass * q[j]))
    return FirstTokenLaw(psi / psi.sum(), forwards, path_forwards)
