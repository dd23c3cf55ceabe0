"""Ready-made drafter/target pairs for the CLI and the docs: one text process, two vocabularies.

>>> pair = synthetic_pair(overlap=0.8, seed=0)
>>> round(pair.vocab_map.overlap, 2) < 1.0
True
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidParameterError
from .models import CharLanguage, MixedLanguage, TokenLM, prune_by_frequency, token_frequencies, vocabulary_pair
from .rdk import affinity_kernel
from .verifiers import TokenPair
from .vocab import VocabularyMap

__all__ = ["synthetic_pair", "evaluation_contexts"]

ALPHABET = "abcdefg "


def synthetic_pair(overlap: float = 1.0, prune: float = 0.0, temperature: float = 1.0, closeness: float = 0.9,
                   seed: int = 0, n_words: int = 48, kernel: bool = True) -> TokenPair:
    """Target and drafter over one order-2 character process (alphabet ``"abcdefg "``).

    ``overlap``: fraction of the target's multi-character words the drafter
    also has; ``prune``: fraction of the drafter's vocabulary removed, least
    frequent first (single characters are always kept, so any text stays
    writable); ``closeness``: how much of the target's text process the
    drafter sees (1 = all); ``kernel``: build RDK's affinity kernel from the
    target's laws over a corpus of its own contexts.
    """
    for name, x in (("overlap", overlap), ("prune", prune), ("closeness", closeness)):
        if not 0.0 <= x <= 1.0:
            raise InvalidParameterError(f"--{name} must be in [0, 1], got {x}")
    if prune >= 1.0:
        raise InvalidParameterError("prune must be < 1: a drafter needs some vocabulary")
    lang = CharLanguage(ALPHABET, order=2, seed=seed)
    noise = CharLanguage(ALPHABET, order=2, seed=seed + 10_007)
    T, D = vocabulary_pair(ALPHABET, n_words, overlap, seed=seed)
    target = TokenLM(lang, T, temperature)
    drafter_process = MixedLanguage(lang, noise, closeness)
    if prune > 0:
        freqs = token_frequencies(TokenLM(drafter_process, D), seed=seed)
        D = prune_by_frequency(D, freqs, 1.0 - prune, always=list(ALPHABET))
    drafter = TokenLM(drafter_process, D, temperature)
    M = None
    if kernel:
        contexts = evaluation_contexts(target, 150, seed=seed + 1)
        dists = np.stack([target.next_token_probs(c) for c in contexts])
        M = affinity_kernel(dists, VocabularyMap(T, D))
    return TokenPair(target, drafter, M)


def evaluation_contexts(target: TokenLM, n: int, seed: int = 0, length: int = 24) -> list[str]:
    """``n`` contexts taken along text the target writes itself (its own law)."""
    rng = np.random.default_rng(seed)
    text, out = "", []
    for _ in range(n):
        ctx = text[-length:]
        out.append(ctx)
        p = target.next_token_probs(ctx)
        text += target.vocab.tokens[int(rng.choice(p.size, p=p))]
    return out
