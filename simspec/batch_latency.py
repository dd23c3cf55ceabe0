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

Two models price batches properly: :class:`ProfileBatchLatency`, measured forwards
at several batch sizes (:func:`load_batch_profile`, the files ``simspec measure
--batch`` writes), and :class:`~simspec.RooflineLatency`, a roofline from the model's
shape and the hardware's facts (:mod:`simspec.roofline`).

>>> from simspec import AffineLatency
>>> m = BatchedLatency(AffineLatency(tpot_ms=30.0, per_extra_token_ms=0.5))
>>> m.step_ms([1], [100])                 # one sequence decoding: one TPOT
30.0
>>> m.step_ms([5, 5, 1], [100, 80, 40])   # 11 new tokens in one forward
35.0
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import InvalidParameterError, ProfileFormatError
from .latency import LatencyModel, Phase, check_latency_model, sample_latency

__all__ = ["BatchLatencyModel", "BatchedLatency", "as_batch_latency", "check_step", "ProfileBatchLatency",
           "load_batch_profile"]


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


# -- measured batch profiles ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ProfileBatchLatency:
    """Measured forwards at several batch sizes: a latency profile interpolated over batch, width and context.

    Build it with :func:`load_batch_profile`.  ``profiles`` holds one
    :class:`~simspec.ProfileLatency` per measured batch size ``batches`` (ascending);
    every one measures the same widths and contexts (a complete grid, checked at load).
    The rules:

    * **a step onto a cell**: batch = the number of sequences; width = the widest
      sequence's new tokens (a batched forward pads every sequence to the widest, and a
      measured cell of batch ``B`` and width ``w`` is ``B`` sequences of ``w`` tokens);
      context = the mean of the sequences' contexts (attention reads the KV of every
      context, ``Σ c``, which a cell of ``B`` sequences at the mean context reads too);
    * **interpolation**: linear in the batch between measured batch sizes, bilinear in
      width and context within each (:class:`~simspec.ProfileLatency`'s rule); outside the
      measured range, the nearest measured value with one
      :class:`~simspec.ProfileRangeWarning` per phase, axis and side; one measured batch
      size is constant along the batch;
    * a phase without rows (a profile with no prefill) costs 0, as in
      :class:`~simspec.ProfileLatency`; a phase measured at only some batch sizes is
      interpolated over those;
    * ``single()`` is the batch-1 profile (the smallest measured batch, with a warning,
      when batch 1 was not measured); ``stochastic=True`` at load replays the quartiles'
      spread (a log-normal per step, median and σ interpolated like the medians).

    >>> p = load_batch_profile(io.StringIO(
    ...     "model,phase,width,context_len,median_ms,batch\\n"
    ...     "m,decode,1,0,20,1\\nm,decode,4,0,22,1\\nm,decode,1,0,24,3\\nm,decode,4,0,36,3\\n"))
    >>> p
    ProfileBatchLatency('m', batches [1, 3], decode 2 widths x 1 context, source='<stream>')
    >>> p.step_ms([1], [0]), p.step_ms([1, 1, 1], [0, 0, 0]), p.step_ms([4, 1], [0, 0])   # the last: batch 2, width 4
    (20.0, 24.0, 29.0)
    >>> p.single().forward(4)
    22.0
    """

    model: str
    source: str
    batches: tuple[int, ...]
    profiles: tuple
    deterministic: bool = True
    _warned: set = field(default_factory=set, repr=False, compare=False)

    def _entries(self, phase: str) -> list[tuple[int, object]]:
        if phase == "decode":
            return [(b, p.decode) for b, p in zip(self.batches, self.profiles)]
        if phase == "prefill":
            return [(b, p.prefill) for b, p in zip(self.batches, self.profiles) if p.prefill is not None]
        raise InvalidParameterError(f"phase must be 'decode' or 'prefill', got {phase!r}")

    def _warn(self, phase: str, axis: str, xs: Sequence, x: float) -> None:
        from .profiles import warn_out_of_range

        warn_out_of_range(self._warned, f"batch profile {self.model!r} ({self.source})", phase, axis, xs, x, x)

    def _cell(self, phase: str, n: np.ndarray, c: np.ndarray) -> tuple[float, float] | None:
        """Median and σ of the step, or None when the phase has no rows."""
        from .profiles import _axis

        entries = self._entries(phase)
        if not entries:
            return None
        batch, width, context = int(n.size), int(n.max()), float(c.mean())
        batches = tuple(b for b, _ in entries)
        grid = entries[0][1]
        self._warn(phase, "batch", batches, batch)
        self._warn(phase, "width", grid.widths, width)
        self._warn(phase, "context_len", grid.contexts, context)
        i0, i1, t = _axis(batches, batch)
        g0, g1 = entries[i0][1], entries[i1][1]
        m0, m1 = g0.at("m", width, context), g1.at("m", width, context)
        s0, s1 = g0.at("s", width, context), g1.at("s", width, context)
        return m0 + t * (m1 - m0), s0 + t * (s1 - s0)

    # -- BatchLatencyModel ---------------------------------------------------------------------------------
    def step_ms(self, new_tokens, context_lens, phase: Phase = "decode") -> float:
        """Time in ms of one step (its mean, ``median·exp(σ²/2)``, for a stochastic profile)."""
        n, c = check_step(new_tokens, context_lens)
        cell = self._cell(phase, n, c)
        if cell is None:
            return 0.0
        m, s = cell
        return float(m if self.deterministic else m * math.exp(s * s / 2))

    def sample_step(self, rng: np.random.Generator, new_tokens, context_lens, phase: Phase = "decode") -> float:
        """One realised step time: the median when deterministic, else a log-normal draw around it."""
        n, c = check_step(new_tokens, context_lens)
        cell = self._cell(phase, n, c)
        if cell is None:
            return 0.0
        m, s = cell
        return float(m * math.exp(s * rng.standard_normal()) if not self.deterministic and s > 0 else m)

    def single(self) -> LatencyModel:
        """The profile at batch 1 (a :class:`~simspec.ProfileLatency`)."""
        if self.batches[0] != 1:
            self._warn("decode", "batch", self.batches, 1)
        return self.profiles[0]

    def __repr__(self) -> str:
        g = self.profiles[0].decode
        nw, nc = len(g.widths), len(g.contexts)
        extra = "" if self.deterministic else ", stochastic"
        return (f"ProfileBatchLatency({self.model!r}, batches {list(self.batches)}, decode {nw} width"
                f"{'s' * (nw != 1)} x {nc} context{'s' * (nc != 1)}{extra}, source={self.source!r})")


def _check_batch_grids(rows, source: str, model: str) -> None:
    """Every phase's cells must form one grid over the batch sizes measuring that phase: same widths and contexts."""
    from .profiles import FORWARD_PHASES

    for phase in FORWARD_PHASES:
        grids: dict[int, dict] = {}
        for r in rows:
            if r.phase == phase:
                grids.setdefault(r.batch, {})[(r.width, r.context_len)] = r
        if len(grids) < 2:
            continue
        first = min(grids)
        ref = set(grids[first])
        for b in sorted(grids):
            if set(grids[b]) != ref:
                widths, contexts = sorted({w for w, _ in grids[b]}), sorted({c for _, c in grids[b]})
                rw, rc = sorted({w for w, _ in ref}), sorted({c for _, c in ref})
                line = min(r.line for r in grids[b].values())
                raise ProfileFormatError(
                    f"{source}:{line}:1: model {model!r} {phase}: batch {b} measures widths {widths} x contexts "
                    f"{contexts}, but batch {first} measures widths {rw} x contexts {rc}; a batch profile "
                    "interpolates over a complete batch x width x context grid: measure the same widths and "
                    "contexts at every batch size (simspec measure --batch does), or load one batch with "
                    "load_profile(path, batch=...)")


def load_batch_profile(path, model: str | None = None, *, stochastic: bool = False) -> ProfileBatchLatency:
    """The :class:`ProfileBatchLatency` of ``model`` in the profile at ``path``, over all its batch sizes.

    ``path``: a file, ``"builtin:NAME"`` or an open text stream, as for
    :func:`~simspec.load_profile`.  ``model`` may be left out when the file holds one
    model.  Raises :class:`~simspec.errors.ProfileFormatError` naming the file and
    line when the batch sizes measure different widths or contexts.
    """
    from .profiles import _from_rows, _parse, read_profile_table

    if isinstance(path, io.TextIOBase):
        rows, source = _parse(path.read().encode("utf-8"), "<stream>"), "<stream>"
    else:
        rows, source = read_profile_table(path), os.fspath(path)
    models = list(dict.fromkeys(r.model for r in rows))
    if model is None:
        if len(models) > 1:
            raise InvalidParameterError(
                f"{source} holds profiles of {len(models)} models ({', '.join(models)}); choose one with model=...")
        model = models[0]
    elif model not in models:
        raise InvalidParameterError(f"{source} has no model {model!r}; its models: {', '.join(models)}")
    mine = [r for r in rows if r.model == model]
    _check_batch_grids(mine, source, model)
    batches = tuple(sorted({r.batch for r in mine}))
    profiles = tuple(_from_rows(mine, source, model, b, stochastic) for b in batches)
    return ProfileBatchLatency(model, source, batches, profiles, not stochastic)
