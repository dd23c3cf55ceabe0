"""Latency models: how long one forward of a model takes.

A forward processes ``n_new`` tokens on top of ``context_len`` tokens of
context.  Autoregressive decoding is ``n_new = 1``; verifying ``k`` drafts is
one forward with ``n_new = k + 1``; the prefill processes the whole prompt and
costs the time to first token (TTFT).  The papers assume a constant time per
output token (TPOT); measured GPUs verify ``k + 1`` tokens in more than one
TPOT but far less than ``k + 1`` of them, which :class:`AffineLatency` models.

All times are in milliseconds.  ``forward`` is vectorised over ``n_new``.

>>> from simspec import ConstantLatency, AffineLatency
>>> target = ConstantLatency(tpot_ms=30.0, ttft_ms=120.0)
>>> target.forward(n_new=6)
30.0
>>> AffineLatency(tpot_ms=30.0, per_extra_token_ms=0.5).forward(n_new=[1, 6])
array([30. , 32.5])

Every model declares whether it is ``deterministic`` and how to ``sample`` one
realised forward time; :class:`LatencyBase` supplies both for a deterministic
model, so a user-defined model needs only ``tpot_ms``, ``ttft_ms``,
``context_dependent`` and ``forward``:

>>> class Measured(LatencyBase):
...     tpot_ms, ttft_ms, context_dependent = 25.0, 0.0, False
...     def forward(self, n_new=1, context_len=0, phase="decode"):
...         return 25.0 + 2.0 * (np.asarray(n_new) - 1)
>>> m = Measured()
>>> isinstance(m, LatencyModel), is_deterministic(m), sample_latency(m, np.random.default_rng(0), 3)
(True, True, 29.0)

A model that samples declares ``deterministic = False``; the engines call
:func:`sample_latency` and :func:`is_deterministic` and nothing else, so every
engine treats a model the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, Union, runtime_checkable

import numpy as np

from ._checks import MAX_LATENCY_CV, finite_nonneg, positive
from .errors import InvalidParameterError

__all__ = [
    "LatencyModel",
    "LatencyBase",
    "ConstantLatency",
    "AffineLatency",
    "StochasticLatency",
    "ScaledLatency",
    "Phase",
    "sample_latency",
    "is_deterministic",
]

Phase = Literal["prefill", "decode"]
ArrayLike = Union[int, float, np.ndarray, list]


@runtime_checkable
class LatencyModel(Protocol):
    """What every latency model answers (constant, affine, stochastic, measured profiles).

    ``deterministic`` says whether ``sample`` always returns ``forward`` (the
    closed forms and the Monte Carlo need deterministic models); ``sample``
    draws one realised forward time with the generator it is given.
    """

    @property
    def tpot_ms(self) -> float:
        """Time of one autoregressive decode forward (``n_new = 1``)."""

    @property
    def ttft_ms(self) -> float:
        """Time of the prefill over the prompt."""

    @property
    def context_dependent(self) -> bool:
        """Whether ``forward`` depends on ``context_len`` (the Monte Carlo needs False)."""

    @property
    def deterministic(self) -> bool:
        """Whether every forward of the same shape takes the same time (``sample == forward``)."""

    def forward(self, n_new: ArrayLike = 1, context_len: int = 0, phase: Phase = "decode"):
        """Latency in ms of one forward processing ``n_new`` new tokens (its mean, if stochastic)."""

    def sample(self, rng: np.random.Generator, n_new: ArrayLike = 1, context_len: int = 0,
               phase: Phase = "decode"):
        """One realised forward time in ms (``forward`` itself for a deterministic model)."""


class LatencyBase:
    """Mix-in for deterministic latency models: ``deterministic = True`` and ``sample = forward``."""

    deterministic = True

    def sample(self, rng: np.random.Generator, n_new: ArrayLike = 1, context_len: int = 0,
               phase: Phase = "decode"):
        return self.forward(n_new, context_len, phase)  # type: ignore[attr-defined]


def is_deterministic(model: LatencyModel) -> bool:
    """The one rule every engine uses: a model is deterministic iff it says so."""
    return bool(model.deterministic)


def sample_latency(model: LatencyModel, rng: np.random.Generator, n_new=1, context_len: int = 0,
                   phase: Phase = "decode") -> float:
    """One realised forward time: ``forward`` for a deterministic model, else ``model.sample``."""
    if model.deterministic:
        return float(model.forward(n_new, context_len, phase))
    return float(model.sample(rng, n_new, context_len, phase))


def prefill_ms(model: LatencyModel, prompt_len: int, rng: np.random.Generator | None = None) -> float:
    """The prefill every engine charges: one forward over the prompt's tokens on an empty cache.

    A prompt length of 0 means unknown, and a model answers its TTFT.  ``rng`` draws a realised
    time from a random model (``None``: its mean).
    """
    if rng is None:
        return float(model.forward(prompt_len, 0, "prefill"))
    return sample_latency(model, rng, prompt_len, 0, "prefill")


def check_latency_model(name: str, model) -> LatencyModel:
    """``model`` if it implements :class:`LatencyModel`, else an error that says what is missing."""
    if isinstance(model, LatencyModel):
        return model
    missing = [m for m in ("tpot_ms", "ttft_ms", "context_dependent", "deterministic", "forward", "sample")
               if not hasattr(model, m)]
    hint = (f"; it lacks {', '.join(missing)} — subclass simspec.LatencyBase for a deterministic model, or "
            "declare `deterministic` and `sample(rng, n_new, context_len, phase)` for a random one") if missing else ""
    raise InvalidParameterError(
        f"{name} must be a latency model (e.g. ConstantLatency(tpot_ms=...)), got {model!r}{hint}"
    )


def _check_n_new(n_new: ArrayLike) -> np.ndarray:
    n = np.asarray(n_new)
    if np.any(n < 1):
        raise InvalidParameterError(f"n_new must be >= 1 (one forward processes at least one token), got {n_new!r}")
    return n


@dataclass(frozen=True)
class ConstantLatency(LatencyBase):
    """Constant time per phase: every decode forward costs ``tpot_ms``, whatever its width.

    This is the model of the SI and DSI papers: verifying ``k`` drafts costs the
    same as generating one token.
    """

    tpot_ms: float
    ttft_ms: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tpot_ms", positive("tpot_ms", self.tpot_ms, "latencies are in milliseconds"))
        object.__setattr__(self, "ttft_ms", finite_nonneg("ttft_ms", self.ttft_ms, "latencies are in milliseconds"))

    @property
    def context_dependent(self) -> bool:
        return False

    def forward(self, n_new: ArrayLike = 1, context_len: int = 0, phase: Phase = "decode"):
        if phase == "prefill":
            return self.ttft_ms
        n = _check_n_new(n_new)
        if n.ndim == 0:
            return self.tpot_ms
        return np.full(n.shape, self.tpot_ms)


@dataclass(frozen=True)
class AffineLatency(LatencyBase):
    """Decode time affine in the forward's width: ``T(n) = tpot + per_extra_token·(n − 1)``.

    Fits measured verification costs ``T(1) < T(k+1) < (k+1)·T(1)``.
    """

    tpot_ms: float
    per_extra_token_ms: float
    ttft_ms: float = 0.0
    per_context_token_ms: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tpot_ms", positive("tpot_ms", self.tpot_ms, "latencies are in milliseconds"))
        object.__setattr__(
            self,
            "per_extra_token_ms",
            finite_nonneg("per_extra_token_ms", self.per_extra_token_ms, "a wider forward is never faster"),
        )
        object.__setattr__(self, "ttft_ms", finite_nonneg("ttft_ms", self.ttft_ms))
        object.__setattr__(
            self,
            "per_context_token_ms",
            finite_nonneg("per_context_token_ms", self.per_context_token_ms, "a longer context is never faster"),
        )

    @property
    def context_dependent(self) -> bool:
        return self.per_context_token_ms > 0

    def forward(self, n_new: ArrayLike = 1, context_len: int = 0, phase: Phase = "decode"):
        """``tpot + per_extra_token·(n_new − 1) + per_context_token·context_len`` (decode)."""
        if phase == "prefill":
            return self.ttft_ms
        n = _check_n_new(n_new)
        out = self.tpot_ms + self.per_extra_token_ms * (n - 1) + self.per_context_token_ms * context_len
        return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True)
class StochasticLatency:
    """A latency model with multiplicative log-normal jitter of coefficient of variation ``cv``.

    ``forward`` is the mean (the wrapped model's value); ``sample(rng, ...)``
    draws one realised time.  Only the discrete-event engine samples; the closed
    forms and the Monte Carlo refuse stochastic latencies rather than silently
    using the mean.

    >>> import numpy as np
    >>> jit = StochasticLatency(ConstantLatency(30.0), cv=0.1)
    >>> jit.forward(), round(float(np.mean([jit.sample(np.random.default_rng(i)) for i in range(4000)])), 0)
    (30.0, 30.0)
    """

    base: LatencyModel
    cv: float

    def __post_init__(self) -> None:
        check_latency_model("base", self.base)
        object.__setattr__(self, "cv", finite_nonneg("cv", self.cv, "cv is the standard deviation / mean"))
        if self.cv > MAX_LATENCY_CV:
            raise InvalidParameterError(
                f"cv must be <= {MAX_LATENCY_CV:g}, got {self.cv:g}: a log-normal with this cv has its median at "
                f"{1 / np.sqrt(1 + self.cv**2):.2g} of the mean, so almost every forward takes nearly no time and "
                "the mean rests on rare huge ones that a run of finite length does not draw (it would report "
                "latencies far below the mean); measured GPU forwards vary with cv well below 1"
            )

    @property
    def tpot_ms(self) -> float:
        return self.base.tpot_ms

    @property
    def ttft_ms(self) -> float:
        return self.base.ttft_ms

    @property
    def context_dependent(self) -> bool:
        return self.base.context_dependent

    @property
    def deterministic(self) -> bool:
        return self.cv == 0

    def forward(self, n_new: ArrayLike = 1, context_len: int = 0, phase: Phase = "decode"):
        return self.base.forward(n_new, context_len, phase)

    def sample(self, rng: np.random.Generator, n_new: ArrayLike = 1, context_len: int = 0, phase: Phase = "decode"):
        mean = self.base.sample(rng, n_new, context_len, phase)
        if self.cv == 0:
            return mean
        s2 = np.log1p(self.cv**2)
        return mean * rng.lognormal(-s2 / 2, np.sqrt(s2), size=np.shape(mean) or None)


@dataclass(frozen=True)
class ScaledLatency:
    """Another model's forwards, each taking ``factor`` of its time (e.g. the first ``L`` of ``N`` layers).

    >>> part = ScaledLatency(AffineLatency(30.0, 2.0), 0.25)
    >>> part.tpot_ms, part.forward([1, 3]).tolist()
    (7.5, [7.5, 8.5])
    """

    base: LatencyModel
    factor: float

    def __post_init__(self) -> None:
        check_latency_model("base", self.base)
        object.__setattr__(self, "factor", positive("factor", self.factor, "a share of the base model's time"))

    @property
    def tpot_ms(self) -> float:
        return self.factor * self.base.tpot_ms

    @property
    def ttft_ms(self) -> float:
        return self.factor * self.base.ttft_ms

    @property
    def context_dependent(self) -> bool:
        return self.base.context_dependent

    @property
    def deterministic(self) -> bool:
        return bool(self.base.deterministic)

    def forward(self, n_new: ArrayLike = 1, context_len: int = 0, phase: Phase = "decode"):
        return self.factor * self.base.forward(n_new, context_len, phase)

    def sample(self, rng: np.random.Generator, n_new: ArrayLike = 1, context_len: int = 0, phase: Phase = "decode"):
        return self.factor * self.base.sample(rng, n_new, context_len, phase)
