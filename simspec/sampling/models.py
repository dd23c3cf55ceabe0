"""Synthetic language models small enough to enumerate and rich enough to matter.

Real drafter/target pairs disagree in two ways: their next-token beliefs differ,
and their vocabularies cut the same text into different tokens.  Here both
models read one *text process*, an order-``n`` Markov chain over characters
(:class:`CharLanguage`), through their own vocabulary and greedy tokenizer
(:class:`TokenLM`): ``p(t | s)`` is the probability that the text continuing
``s`` starts with ``t`` *and* greedy longest match picks ``t``, computed
exactly on the vocabulary's trie.  A drafter reads a perturbed process
(:class:`MixedLanguage`: ``closeness`` 1 = the target's own, 0 = unrelated) and
may use another or a pruned vocabulary; both take a temperature.

>>> lang = CharLanguage("ab ", order=2, seed=1)
>>> from simspec.sampling.vocab import alphabet_vocabulary
>>> lm = TokenLM(lang, alphabet_vocabulary("ab ", ["ab", "ba", "a b"]))
>>> round(float(lm.next_token_probs("ab").sum()), 12)
1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol, Sequence

import numpy as np

from ..errors import InvalidParameterError, VocabularyError
from .vocab import GreedyTokenizer, Vocabulary, alphabet_vocabulary

__all__ = [
    "TextProcess", "CharLanguage", "MixedLanguage", "TokenLM", "vocabulary_pair", "prune_by_frequency",
    "token_frequencies",
]


class TextProcess(Protocol):
    alphabet: str

    def char_probs(self, context: str) -> np.ndarray:
        """Law of the next character given the text so far (over ``alphabet``)."""


@dataclass(frozen=True, eq=False)
class CharLanguage:
    """An order-``order`` Markov chain over ``alphabet``; each context's row is Dirichlet(``concentration``).

    Rows are generated lazily from ``seed`` and the context, so the process is
    reproducible and needs no table up front.
    """

    alphabet: str
    order: int = 2
    seed: int = 0
    concentration: float = 0.4

    def __post_init__(self) -> None:
        if len(set(self.alphabet)) != len(self.alphabet) or not self.alphabet:
            raise InvalidParameterError("alphabet must be a non-empty string of distinct characters")
        if self.order < 0 or self.concentration <= 0:
            raise InvalidParameterError("order must be >= 0 and concentration > 0")

    def char_probs(self, context: str) -> np.ndarray:
        return _row(self.alphabet, self.order, self.seed, self.concentration, context[-self.order:] if self.order else "")


@lru_cache(maxsize=200_000)
def _row(alphabet: str, order: int, seed: int, conc: float, suffix: str) -> np.ndarray:
    key = [seed, order, len(suffix)] + [alphabet.index(ch) if ch in alphabet else len(alphabet) for ch in suffix]
    row = np.random.default_rng(key).dirichlet(np.full(len(alphabet), conc))
    row.setflags(write=False)
    return row


@dataclass(frozen=True, eq=False)
class MixedLanguage:
    """``closeness · base + (1 − closeness) · other``, row by row: a drafter's view of the text."""

    base: TextProcess
    other: TextProcess
    closeness: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.closeness <= 1.0:
            raise InvalidParameterError(f"closeness must be in [0, 1], got {self.closeness}")
        if self.base.alphabet != self.other.alphabet:
            raise InvalidParameterError("both processes must share one alphabet")

    @property
    def alphabet(self) -> str:
        return self.base.alphabet

    def char_probs(self, context: str) -> np.ndarray:
        c = self.closeness
        return c * self.base.char_probs(context) + (1.0 - c) * self.other.char_probs(context)


@dataclass(frozen=True, eq=False)
class TokenLM:
    """A next-token model over ``vocab``: the text process read through greedy longest match.

    ``temperature`` reshapes the law (``p^{1/T}``, renormalised; 0 = argmax).
    """

    process: TextProcess
    vocab: Vocabulary
    temperature: float = 1.0
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        missing = [ch for ch in self.process.alphabet if ch not in self.vocab.index]
        if missing:
            raise VocabularyError(f"the vocabulary lacks the characters {missing!r}; every character must be a token")
        if self.temperature < 0:
            raise InvalidParameterError(f"temperature must be >= 0, got {self.temperature}")

    @property
    def tokenizer(self) -> GreedyTokenizer:
        return GreedyTokenizer(self.vocab)

    def next_token_probs(self, context: str) -> np.ndarray:
        """``p(t | context)`` for every token ``t`` (cached per context)."""
        out = self._cache.get(context)
        if out is None:
            out = _apply_temperature(self._exact(context), self.temperature)
            out.setflags(write=False)
            self._cache[context] = out
        return out

    def _exact(self, context: str) -> np.ndarray:
        """Mass of each token as the deepest vocabulary token on the continuation's path through the trie."""
        probs = np.zeros(len(self.vocab))
        alphabet = self.process.alphabet
        index = self.vocab.index
        prefixes = _prefix_set(self.vocab)
        stack = [("", 1.0, -1)]
        while stack:
            u, mass, last = stack.pop()
            row = self.process.char_probs(context + u)
            leaving = 0.0
            for ch, pc in zip(alphabet, row):
                v = u + ch
                if v in prefixes:
                    stack.append((v, mass * pc, index.get(v, last)))
                else:
                    leaving += pc
            if leaving > 0:
                probs[last] += mass * leaving
        return probs


def _apply_temperature(p: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return p
    if temperature == 0.0:
        out = np.zeros_like(p)
        out[np.argmax(p)] = 1.0
        return out
    with np.errstate(divide="ignore"):
        logp = np.log(p) / temperature
    logp -= logp.max()
    w = np.exp(logp)
    return w / w.sum()


@lru_cache(maxsize=64)
def _prefix_set(vocab: Vocabulary) -> frozenset[str]:
    """Every non-empty prefix of every token: the nodes of the vocabulary's trie."""
    return frozenset(t[:n] for t in vocab.tokens for n in range(1, len(t) + 1))


def token_frequencies(lm: TokenLM, n_contexts: int = 200, length: int = 40, seed: int = 0) -> np.ndarray:
    """Average next-token law of ``lm`` over contexts sampled from its own text (for pruning by frequency)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(len(lm.vocab))
    text = ""
    for _ in range(n_contexts):
        p = lm.next_token_probs(text[-length:])
        total += p
        text += lm.vocab.tokens[int(rng.choice(len(p), p=p))]
    return total / n_contexts


def prune_by_frequency(vocab: Vocabulary, freqs: np.ndarray, keep: float, always: Sequence[str] = ()) -> Vocabulary:
    """The most frequent ``keep`` fraction of ``vocab`` (plus ``always``, e.g. single characters)."""
    if not 0.0 < keep <= 1.0:
        raise InvalidParameterError(f"keep must be in (0, 1], got {keep}")
    n = max(1, int(round(keep * len(vocab))))
    order = np.argsort(-np.asarray(freqs), kind="stable")
    chosen = set(order[:n].tolist()) | {vocab.index[t] for t in always if t in vocab.index}
    return vocab.subset(sorted(chosen))


def vocabulary_pair(alphabet: str, n_words: int, overlap: float, seed: int = 0,
                    lengths: tuple[int, int] = (2, 4)) -> tuple[Vocabulary, Vocabulary]:
    """A target and a drafter vocabulary: every character, plus ``n_words`` multi-character words each.

    A fraction ``overlap`` of the target's words are also the drafter's; the
    rest of the drafter's words are its own.  ``|I|/|T|`` is then close to
    ``(|alphabet| + overlap · n_words) / (|alphabet| + n_words)``.
    """
    if not 0.0 <= overlap <= 1.0:
        raise InvalidParameterError(f"overlap must be in [0, 1], got {overlap}")
    rng = np.random.default_rng(seed)
    pool: list[str] = []
    seen = set(alphabet)
    while len(pool) < 2 * n_words:
        n = int(rng.integers(lengths[0], lengths[1] + 1))
        w = "".join(rng.choice(list(alphabet), size=n))
        if w not in seen:
            seen.add(w)
            pool.append(w)
    target_words = pool[:n_words]
    shared = int(round(overlap * n_words))
    drafter_words = target_words[:shared] + pool[n_words:2 * n_words - shared]
    return alphabet_vocabulary(alphabet, target_words), alphabet_vocabulary(alphabet, drafter_words)
