"""Batch-aware latency: how long one forward over a *batch* of sequences takes.

A serving engine runs one forward per step for every running sequence at once:
sequence ``i`` adds ``new_tokens[i]`` tokens (1 to decode, ``k + 1`` to verify
``k`` drafts, a prompt chunk to prefill) on top of ``context_lens[i]`` tokens
already in its KV cache.  A :class:`BatchLatencyModel` answers the time of that
step.  At batch 1 it is a :class:`~simspec.LatencyModel`: :meth:`single` gives
that view, which the single-request engines use.

:class:`BatchedLatency` turns any single-sequence latency model into a batch
model by the *token-count rule*: a step costs what one forward of all its new
tokens costs on the longest context.  At batch 1 it is the model itself, bit
for bit, so the serving engine at batch 1 equals the single-request engines.

>>> from simspec import AffineLatency
>>> m = BatchedLatency(AffineLatency(tpot_ms=30.0, per_extra_token_ms=0.5))
>>> m.step_ms([1], [100])                 # one sequence decoding: one TPOT
30.0
>>> m.step_ms([5, 5, 1], [100, 80, 40])   # 11 new tokens in one forward
35.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import InvalidParameterError
from .latency import LatencyModel, Phase, check_latency_model, sample_latency

__all__ = ["BatchLatencyModel", "BatchedLatency", "as_batch_latency", "check_step"]


@runtime_checkable
class BatchLatencyModel(Protocol):
    """What a batch-aware latency model answers.

    ``step_ms(new_tokens, context_lens, phase)`` is the mean time in ms of one
    forward over the batch; ``phase`` is ``"prefill"`` when the step holds any
    prompt tokens, else ``"decode"``.  ``sample_step`` draws one realised time
    (``step_ms`` itself when ``deterministic``).  ``single()`` is the batch-1
    view as a :class:`~simspec.LatencyModel`.
    """

    @property
    def deterministic(self) -> bool:
        """Whether every step of the same shape takes the same time."""

    def step_ms(self, new_tokens: Sequence[int], context_lens: Sequence[int], phase: Phase = "decode") -> float:
        """Mean time in ms of one forward over the batch."""

    def sample_step(self, rng: np.random.Generator, new_tokens: Sequence[int], context_lens: Sequence[int],
                    phase: Phase = "decode") -> float:
        """One realised step time in ms."""

    def single(self) -> LatencyModel:
        """The model at batch 1, for the single-request engines."""


def check_step(new_tokens, context_lens) -> tuple[np.ndarray, np.ndarray]:
    """The step's arrays, checked: same length >= 1, new tokens >= 1, contexts >= 0."""
    n = np.asarray(new_tokens, dtype=np.int64).reshape(-1)
    c = np.asarray(context_lens, dtype=np.int64).reshape(-1)
    if n.size == 0:
        raise InvalidParameterError("a step needs at least one sequence (new_tokens is empty)")
    if n.shape != c.shape:
        raise InvalidParameterError(
            f"new_tokens and context_lens must have one entry per sequence, got {n.size} and {c.size}")
    if n.min() < 1:
        raise InvalidParameterError(f"every sequence in a step adds at least one token, got {n.tolist()}")
    if c.min() < 0:
        raise InvalidParameterError(f"context lengths must be >= 0, got {c.tolist()}")
    return n, c


@dataclass(frozen=True)
class BatchedLatency:
    """A single-sequence model as a batch model: a step costs one forward of all its new tokens.

    The step's time is ``model.forward(sum(new_tokens), max(context_lens), phase)``.
    That is exact at batch 1 and a first approximation above it (a GPU's forward
    is memory-bound until the batch's tokens fill its compute); a roofline or a
    profile measured at several batch sizes models the batch properly.
    """

    model: LatencyModel

    def __post_init__(self) -> None:
        check_latency_model("model", self.model)

    @property
    def deterministic(self) -> bool:
        return bool(self.model.deterministic)

    def step_ms(self, new_tokens, context_lens, phase: Phase = "decode") -> float:
        n, c = check_step(new_tokens, context_lens)
        return float(self.model.forward(int(n.sum()), int(c.max()), phase))

    def sample_step(self, rng: np.random.Generator, new_tokens, context_lens, phase: Phase = "decode") -> float:
        n, c = check_step(new_tokens, context_lens)
        return sample_latency(self.model, rng, int(n.sum()), int(c.max()), phase)

    def single(self) -> LatencyModel:
        return self.model


def as_batch_latency(name: str, model) -> BatchLatencyModel:
    """``model`` as a batch model: a batch model as it is, a single-sequence model wrapped."""
    if isinstance(model, BatchLatencyModel):
        return model
    if isinstance(model, LatencyModel):
        return BatchedLatency(model)
    raise InvalidParameterError(
        f"{name} must be a latency model (e.g. ConstantLatency(tpot_ms=...)) or a batch latency model "
        f"(e.g. simspec.RooflineLatency), got {model!r}")
