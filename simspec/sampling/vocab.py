"""Vocabularies as sets of strings, the maps between two of them, and tokenizers.

A vocabulary is an ordered tuple of distinct, non-empty strings; a token is its
index.  Two vocabularies meet in their *intersection* ``I = T ∩ D`` (equal
strings, Timor et al. 2025, arXiv 2502.05202): :class:`VocabularyMap` holds the
index arrays both ways.  Tokenizers turn text into tokens: greedy longest match
(what a maximum-prefix-encoding tokenizer does), and a deliberately
non-injective one whose ``decode(encode(s))`` differs from ``s`` — the
practical trouble of string-level verification (SLEM).

>>> v = Vocabulary(("a", "b", "ab", "abc"))
>>> tok = GreedyTokenizer(v)
>>> [v.tokens[i] for i in tok.encode("abcab")]
['abc', 'ab']
>>> vm = VocabularyMap(target=v, drafter=Vocabulary(("a", "ab", "z")))
>>> vm.intersection
('a', 'ab')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence

import numpy as np

from ..errors import VocabularyError

__all__ = ["Vocabulary", "VocabularyMap", "GreedyTokenizer", "LowercasingTokenizer", "alphabet_vocabulary"]


@dataclass(frozen=True)
class Vocabulary:
    """Distinct non-empty strings; index ``i`` is token ``i``."""

    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        toks = tuple(self.tokens)
        if not toks:
            raise VocabularyError("a vocabulary needs at least one token")
        if any(not isinstance(t, str) or t == "" for t in toks):
            raise VocabularyError("tokens must be non-empty strings")
        if len(set(toks)) != len(toks):
            dup = next(t for t in toks if toks.count(t) > 1)
            raise VocabularyError(f"token {dup!r} appears twice; a vocabulary holds distinct strings")
        object.__setattr__(self, "tokens", toks)

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    @cached_property
    def max_len(self) -> int:
        return max(len(t) for t in self.tokens)

    def subset(self, keep: Sequence[int]) -> "Vocabulary":
        """The vocabulary of the tokens ``keep`` (in that order): a pruned drafter vocabulary."""
        return Vocabulary(tuple(self.tokens[i] for i in keep))


def alphabet_vocabulary(alphabet: str, words: Sequence[str] = ()) -> Vocabulary:
    """Every single character of ``alphabet`` plus ``words``: any text over the alphabet is encodable."""
    seen = dict.fromkeys(list(alphabet) + [w for w in words if w])
    return Vocabulary(tuple(seen))


@dataclass(frozen=True)
class VocabularyMap:
    """The intersection of a target and a drafter vocabulary, as index arrays.

    ``drafter_to_target[j]`` is the target index of drafter token ``j``, or
    ``-1`` outside the intersection; ``target_to_drafter`` likewise.
    """

    target: Vocabulary
    drafter: Vocabulary
    drafter_to_target: np.ndarray = field(init=False, repr=False)
    target_to_drafter: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        d2t = np.array([self.target.index.get(t, -1) for t in self.drafter.tokens], dtype=np.int64)
        t2d = np.full(len(self.target), -1, dtype=np.int64)
        inside = d2t >= 0
        t2d[d2t[inside]] = np.flatnonzero(inside)
        object.__setattr__(self, "drafter_to_target", d2t)
        object.__setattr__(self, "target_to_drafter", t2d)

    @property
    def intersection(self) -> tuple[str, ...]:
        return tuple(t for t, j in zip(self.drafter.tokens, self.drafter_to_target) if j >= 0)

    @property
    def overlap(self) -> float:
        """``|I| / |T|``: the fraction of the target's vocabulary the drafter also has."""
        return float((self.drafter_to_target >= 0).sum()) / len(self.target)

    def require_intersection(self) -> None:
        if not np.any(self.drafter_to_target >= 0):
            raise VocabularyError(
                "the target and drafter vocabularies share no token, so TLI/RDK have nothing to propose; "
                "use a string-level verifier (SLEM, SLRS) or a drafter with overlapping tokens"
            )

    def check_target(self, p: np.ndarray) -> None:
        if np.shape(p)[-1] != len(self.target):
            raise VocabularyError(
                f"p has {np.shape(p)[-1]} entries but the target vocabulary has {len(self.target)} tokens"
            )

    def check_drafter(self, q: np.ndarray) -> None:
        if np.shape(q)[-1] != len(self.drafter):
            raise VocabularyError(
                f"q has {np.shape(q)[-1]} entries but the drafter vocabulary has {len(self.drafter)} tokens"
            )


@dataclass(frozen=True)
class GreedyTokenizer:
    """Greedy longest match: at each point, the longest vocabulary token that the text starts with.

    Every character the text uses must be a token (build the vocabulary with
    :func:`alphabet_vocabulary`), so encoding never fails and
    ``decode(encode(s)) == s``.
    """

    vocab: Vocabulary

    def first_token(self, text: str) -> int:
        """Index of the token greedy longest match takes first from ``text``."""
        for n in range(min(self.vocab.max_len, len(text)), 0, -1):
            i = self.vocab.index.get(text[:n])
            if i is not None:
                return i
        raise VocabularyError(f"{text[:1]!r} is not a token; add every character of the alphabet to the vocabulary")

    def encode(self, text: str) -> list[int]:
        out, pos = [], 0
        while pos < len(text):
            i = self.first_token(text[pos:])
            out.append(i)
            pos += len(self.vocab.tokens[i])
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.vocab.tokens[i] for i in ids)


@dataclass(frozen=True)
class LowercasingTokenizer(GreedyTokenizer):
    """Greedy longest match after folding upper case: ``decode(encode("Ab")) == "ab"``.

    A non-injective tokenizer (as normalising tokenizers are): two strings map to
    the same tokens, so a string-level verifier that compares strings after a
    round trip sees mismatches the models never made.

    >>> t = LowercasingTokenizer(alphabet_vocabulary("ab"))
    >>> t.decode(t.encode("Ab"))
    'ab'
    """

    def encode(self, text: str) -> list[int]:
        return super().encode(text.lower())
