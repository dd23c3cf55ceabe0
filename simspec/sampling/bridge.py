"""From token-level verification to the timing engines: acceptance outcomes along generated text.

:class:`TokenLevelAcceptance` is one of the shared acceptance processes
(:mod:`simspec.acceptance`): each replication generates text with the target
(its own law — what any lossless verifier emits) and, at every position, draws
whether the drafter's proposal would have been accepted, from the exact joint
law of (accepted, emitted token): ``P(accepted | emitted y) = min(p, r)(y)/p(y)``
for proposal-based verifiers, ``ψ(y)`` for SLEM.  Signals a lookahead policy may
read: the drafter's top-1 probability (``"top1"``) and entropy (``"entropy"``).

A pruned drafter vocabulary makes the drafter faster: :func:`vocabulary_latency`
models the LM head's cost as proportional to the vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .._checks import int_at_least, positive
from ..acceptance import AcceptanceDraw
from ..latency import ConstantLatency
from .verifiers import TokenPair, verifiers

__all__ = ["TokenLevelAcceptance", "vocabulary_latency"]


@dataclass(frozen=True, eq=False)
class TokenLevelAcceptance:
    """Acceptance outcomes produced by running ``algorithm`` on a drafter/target pair over generated text."""

    pair: TokenPair
    algorithm: str = "tli"
    prompt: str = ""
    context_chars: int = 64
    _pilot: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.algorithm not in verifiers():
            from ..errors import InvalidParameterError

            raise InvalidParameterError(f"algorithm must be one of {', '.join(verifiers())}, got {self.algorithm!r} "
                                        "(register_verifier adds one)")

    def draw(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> AcceptanceDraw:
        n = int_at_least("n_positions", n_positions, 1)
        r = int_at_least("reps", reps, 1)
        accepted = np.zeros((r, n), dtype=bool)
        top1 = np.zeros((r, n))
        entropy = np.zeros((r, n))
        alpha = np.zeros((r, n))
        tokens = self.pair.target.vocab.tokens
        for i in range(r):
            text = self.prompt
            for j in range(n):
                law = self.pair.step(self.algorithm, text[-self.context_chars:])
                y = int(rng.choice(law.p.size, p=law.p))
                accepted[i, j] = rng.random() < law.accept_given_emitted[y]
                q = law.q
                top1[i, j] = q.max()
                nz = q[q > 0]
                entropy[i, j] = float(-(nz * np.log(nz)).sum())
                alpha[i, j] = law.acceptance
                text += tokens[y]
        return AcceptanceDraw(accepted, {"top1": top1, "entropy": entropy, "alpha": alpha})

    def sample(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> np.ndarray:
        return self.draw(rng, n_positions, reps).accepted

    @cached_property
    def mean(self) -> float:
        """Acceptance rate estimated from a fixed-seed pilot run (200 positions): the process has no closed form."""
        d = self.draw(np.random.default_rng(0), 200, 1)
        return float(d.signals["alpha"].mean())

    @property
    def variance(self) -> float:
        return self.mean * (1.0 - self.mean)

    @property
    def iid_rate(self) -> None:
        return None

    def __repr__(self) -> str:
        return (f"TokenLevelAcceptance({self.algorithm}, |T|={len(self.pair.target.vocab)}, "
                f"|D|={len(self.pair.drafter.vocab)})")


def vocabulary_latency(body_ms: float, head_ms_per_1k_tokens: float, vocab_size: int, ttft_ms: float = 0.0):
    """A drafter's TPOT: its transformer body plus an LM head whose cost grows with the vocabulary.

    >>> vocabulary_latency(2.0, 0.05, 32_000).tpot_ms
    3.6
    """
    positive("body_ms", body_ms)
    int_at_least("vocab_size", vocab_size, 1)
    return ConstantLatency(round(body_ms + head_ms_per_1k_tokens * vocab_size / 1000.0, 12), ttft_ms)
