"""How a serving engine batches: the continuous-batching scheduler, the KV cache, the drafter's place.

:class:`Batching` holds the scheduler's limits (sequences per step, new tokens per
step, chunked prefill), the KV-cache budget in blocks (draft slots included), where
the drafter runs, and how many independent copies of the engine serve the
requests (``replicas``: data parallelism, one GPU each).

:class:`BatchSizeLookahead` sets SI's lookahead from the batch size: the larger the
batch, the closer a decode step is to compute-bound and the less a wide
verification is free, so a serving engine proposes fewer drafts.

>>> b = Batching(max_batch=16, kv_blocks=4096)
>>> b.blocks_for(100)                 # 100 tokens in blocks of 16
7
>>> BatchSizeLookahead({1: 5, 8: 3, 32: 1}).k_for(12)   # batch 12: the row for batch >= 8
3
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping

from .._checks import finite_nonneg, int_at_least
from ..errors import InvalidParameterError

__all__ = ["Batching", "BatchSizeLookahead", "DrafterPlacement"]

DrafterPlacement = Literal["separate", "shared"]


@dataclass(frozen=True)
class Batching:
    """A continuous-batching scheduler (vLLM, TGI, SGLang style) and the memory it schedules.

    * ``max_batch``: sequences running at once (prefilling or decoding);
    * ``max_tokens_per_step``: new tokens one forward may process (prompt tokens and
      verification widths together); without ``chunked_prefill`` a prompt longer than
      this is refused, with it a prompt is split into chunks that share steps with decoding;
    * ``kv_blocks``, ``block_size``: the KV cache, in blocks of ``block_size`` tokens
      (``None``: unlimited).  A running sequence holds the blocks of its context plus
      the slots its step writes (``k + 1`` when it verifies ``k`` drafts); when a step
      cannot get them, the most recently admitted sequence is preempted (its blocks
      freed; it recomputes its prefix when readmitted, vLLM's recompute preemption);
    * ``drafter``: ``"separate"`` (its own device: its prefill runs beside the target's)
      or ``"shared"`` (time-shared with the target: every drafter forward delays the
      step, and its KV cache takes ``drafter_kv_ratio`` of a target token's space per token);
    * ``replicas``: independent copies of the engine; a request joins the copy with the
      fewest unfinished requests (the lowest index on ties).
    """

    max_batch: int = 32
    max_tokens_per_step: int = 8192
    chunked_prefill: bool = False
    kv_blocks: int | None = None
    block_size: int = 16
    drafter: DrafterPlacement = "separate"
    drafter_kv_ratio: float = 0.0
    replicas: int = 1

    def __post_init__(self) -> None:
        int_at_least("max_batch", self.max_batch, 1, "at least one sequence runs per step")
        int_at_least("max_tokens_per_step", self.max_tokens_per_step, 1)
        if self.kv_blocks is not None:
            int_at_least("kv_blocks", self.kv_blocks, 1, "or None for an unlimited KV cache")
        int_at_least("block_size", self.block_size, 1)
        if self.drafter not in ("separate", "shared"):
            raise InvalidParameterError(f"drafter must be 'separate' or 'shared', got {self.drafter!r}")
        object.__setattr__(self, "drafter_kv_ratio", finite_nonneg(
            "drafter_kv_ratio", self.drafter_kv_ratio, "the drafter's KV bytes per token over the target's"))
        int_at_least("replicas", self.replicas, 1)
        if not isinstance(self.chunked_prefill, bool):
            raise InvalidParameterError(f"chunked_prefill must be True or False, got {self.chunked_prefill!r}")

    def blocks_for(self, tokens: int, drafter_shares: bool = False) -> int:
        """Blocks that ``tokens`` tokens of one sequence take (with the drafter's share on a shared GPU)."""
        scale = 1.0 + self.drafter_kv_ratio if drafter_shares and self.drafter == "shared" else 1.0
        return math.ceil(tokens * scale / self.block_size)

    def gpus(self, speculative: bool) -> int:
        """GPUs the deployment holds: one per replica, plus one per replica for a separate drafter."""
        return self.replicas * (2 if speculative and self.drafter == "separate" else 1)


@dataclass(frozen=True, eq=False)
class BatchSizeLookahead:
    """SI's lookahead as a function of the batch size: ``table[b]`` applies from batch ``b`` up.

    The smallest key must be 1 (every batch size gets a lookahead).
    """

    table: Mapping[int, int] = field(default_factory=lambda: {1: 4})

    def __post_init__(self) -> None:
        rows = {}
        for b, k in dict(self.table).items():
            rows[int_at_least("batch size", b, 1)] = int_at_least(f"lookahead at batch {b}", k, 1)
        if not rows or min(rows) != 1:
            raise InvalidParameterError("BatchSizeLookahead needs a row for batch 1 (its smallest key must be 1)")
        object.__setattr__(self, "table", dict(sorted(rows.items())))
        object.__setattr__(self, "_keys", sorted(rows))

    def k_for(self, batch: int) -> int:
        k = 1
        for b in self._keys:  # a handful of rows: a scan beats bisect's call overhead
            if b > batch:
                break
            k = self.table[b]
        return k

    @property
    def name(self) -> str:
        return "by batch " + ", ".join(f"{b}+: {k}" for b, k in self.table.items())

    def __repr__(self) -> str:
        return f"BatchSizeLookahead({self.table})"
