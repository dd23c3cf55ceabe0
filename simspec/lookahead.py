"""Lookahead policies: how many drafts to propose before each verification.

A policy changes speed only, never the emitted tokens (verification is
lossless whatever ``k`` is).  Policies are frozen parameter objects; ``start``
returns a small mutable controller that the vectorised engines drive, one
controller lane per replication:

* ``propose(view)`` → the lookahead of the next round, an int array over lanes;
* ``observe(drafted, accepted)`` → what the round did (arrays over lanes).

``view`` is a :class:`RoundView`: the next position of each lane, the signals
of the acceptance draw (what a real drafter could know before verification) and
the outcomes themselves, which only :class:`OracleLookahead` may read.

Sources: static — Leviathan et al. 2023; heuristic schedule — transformers
``candidate_generator.py`` (``num_assistant_tokens_schedule="heuristic"``);
confidence threshold — transformers ``assistant_confidence_threshold`` (the
default of its assisted generation since v4.45: θ = 0.4, k_max = 20); oracle —
Mamou et al. 2024 (DISCO, arXiv 2405.04304), its upper bound.  See
``docs/model.md`` §6.

>>> from simspec import StaticLookahead
>>> StaticLookahead(5)
StaticLookahead(k=5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping, Protocol, runtime_checkable

import numpy as np

from ._checks import int_at_least
from .errors import InvalidParameterError

__all__ = [
    "checked_proposal",
    "RoundView",
    "LookaheadPolicy",
    "StaticLookahead",
    "HeuristicLookahead",
    "ConfidenceLookahead",
    "AdaptiveConfidenceLookahead",
    "roc_threshold",
    "OracleLookahead",
    "across_rounds",
]


@dataclass(frozen=True)
class RoundView:
    """What a policy may look at before a round (arrays over lanes).

    ``position``: 0-based index of the next position to emit; ``remaining``:
    positions left; ``rows``: each lane's row in the acceptance draw;
    ``signals``: per-position signals, shape ``(rows, positions)``;
    ``next_rejection``: index of the first rejected position at or after each
    position (``positions`` if none) — the future, for oracles only.
    """

    position: np.ndarray
    remaining: np.ndarray
    rows: np.ndarray
    signals: Mapping[str, np.ndarray]
    next_rejection: np.ndarray

    def signal(self, name: str, policy: str, fix: str) -> np.ndarray:
        """The named signal, ``(rows, positions)``; a clear error naming the policy and the fix when it is absent."""
        sig = self.signals.get(name) if self.signals else None
        if sig is None:
            raise InvalidParameterError(f"{policy} reads the acceptance draw's {name!r} signal, which this draw "
                                        f"lacks: {fix}")
        return sig


def checked_proposal(k, active=None, policy: str = "the lookahead policy") -> np.ndarray:
    """A controller's proposal ``k`` (one lookahead per lane) as int64, every active lane's ``k >= 1``.

    Every SI engine reads ``controller.propose(view)`` through this, *before* it
    cuts ``k`` at the end of generation (that cut may legitimately reach 0).  A
    policy proposing ``k < 1`` (or a non-integer) is a bug in the policy: raising
    here names it, where an engine would otherwise run rounds that draft nothing.
    ``active``: bool mask of lanes still generating (finished lanes may propose
    anything); ``None``: all lanes.

    >>> checked_proposal([1, 3])
    array([1, 3])
    >>> checked_proposal([0, 3])
    Traceback (most recent call last):
    ...
    simspec.errors.InvalidParameterError: the lookahead policy proposed k = 0 for lane 0; a round drafts at least one token (k >= 1): fix the policy's propose()
    """
    arr = np.asarray(k)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise InvalidParameterError(f"{policy} proposed {k!r}; propose() must return integer lookaheads >= 1")
    mask = np.ones(arr.shape, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    arr, mask = np.broadcast_arrays(arr, mask)
    check = arr[mask]
    if arr.dtype.kind == "f" and not np.all(np.isfinite(check) & (check == np.round(check))):
        raise InvalidParameterError(f"{policy} proposed {k!r}; propose() must return integer lookaheads >= 1")
    if check.size and check.min() < 1:
        lanes = np.flatnonzero((arr < 1) & mask)
        raise InvalidParameterError(
            f"{policy} proposed k = {int(arr.ravel()[lanes[0]])} for lane {int(lanes[0])}; a round drafts at least "
            "one token (k >= 1): fix the policy's propose()"
        )
    return arr.astype(np.int64)


@runtime_checkable
class LookaheadController(Protocol):
    def propose(self, view: RoundView) -> np.ndarray: ...

    def observe(self, drafted: np.ndarray, accepted: np.ndarray) -> None: ...


@runtime_checkable
class LookaheadPolicy(Protocol):
    """A lookahead policy: a frozen description that starts controllers."""

    @property
    def name(self) -> str: ...

    @property
    def static_k(self) -> int | None:
        """The fixed lookahead if the policy is static (DSI and the closed forms need one), else None."""

    def start(self, lanes: int) -> LookaheadController: ...


class _Constant:
    def __init__(self, k: int, lanes: int) -> None:
        self._k = np.full(lanes, k, dtype=np.int64)

    def propose(self, view: RoundView) -> np.ndarray:
        return self._k

    def observe(self, drafted: np.ndarray, accepted: np.ndarray) -> None:
        pass


@dataclass(frozen=True)
class StaticLookahead:
    """The same lookahead ``k`` in every round (Leviathan et al. 2023)."""

    k: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", int_at_least("lookahead", self.k, 1, "propose at least one draft per round"))

    @property
    def name(self) -> str:
        return f"static k={self.k}"

    @property
    def static_k(self) -> int:
        return self.k

    def start(self, lanes: int) -> _Constant:
        return _Constant(self.k, lanes)


class _Heuristic:
    def __init__(self, k0: int, k_max: int, lanes: int) -> None:
        self.k = np.full(lanes, k0, dtype=np.int64)
        self.k_max = k_max

    def propose(self, view: RoundView) -> np.ndarray:
        return self.k

    def observe(self, drafted: np.ndarray, accepted: np.ndarray) -> None:
        # transformers compares with the lookahead it asked for; a round that
        # was cut short by the end of generation changes nothing that matters.
        all_in = accepted >= drafted
        self.k = np.where(all_in, np.minimum(self.k + 2, self.k_max), np.maximum(self.k - 1, 1))

    def observe_task(self, view: RoundView, drafted: int, accepted: int) -> None:
        """DSI: one verification of ``drafted`` drafts from ``view.position``, applied in order."""
        self.observe(np.array([drafted]), np.array([accepted]))


def across_rounds(policy) -> bool:
    """Whether ``policy`` learns from finished rounds (a schedule), rather than deciding within a round (a stop rule).

    In DSI a schedule learns from each verification as the coordinator applies it (in position
    order), and its lookahead sets the drafter blocks that start afterwards.
    """
    return bool(getattr(policy, "learns_across_rounds", False))


@dataclass(frozen=True)
class HeuristicLookahead:
    """transformers' "heuristic" schedule: all drafts accepted → ``k += 2``, else ``k − 1`` (at least 1).

    Starts at ``k0`` (transformers' default 5); ``k_max`` caps it.  A simspec run is one
    ``generate`` call, where ``"heuristic"`` and ``"heuristic_transient"`` act alike; they differ
    across calls (the persistent one starts the next call where this one ended), which
    :func:`simspec.real.client_rounds` and :func:`simspec.assisted.assisted_rounds` (``initial_k``)
    model for real runs.
    """

    learns_across_rounds: ClassVar[bool] = True
    k0: int = 5
    k_max: int = 1000

    def __post_init__(self) -> None:
        int_at_least("k0", self.k0, 1)
        int_at_least("k_max", self.k_max, self.k0)

    @property
    def name(self) -> str:
        return f"heuristic k0={self.k0}"

    @property
    def static_k(self) -> None:
        return None

    def start(self, lanes: int) -> _Heuristic:
        return _Heuristic(self.k0, self.k_max, lanes)


class _Confidence:
    def __init__(self, threshold: float, k_max: int, signal: str) -> None:
        self.threshold, self.k_max, self.signal = threshold, k_max, signal
        self.offsets = np.arange(k_max)

    def propose(self, view: RoundView) -> np.ndarray:
        sig = view.signal(self.signal, "ConfidenceLookahead", "use a recorded trace with that signal (simspec "
                          "record writes top1_prob) or an acceptance process that models it")
        return self._stop(sig, view, self.threshold)

    def _stop(self, sig: np.ndarray, view: RoundView, threshold) -> np.ndarray:
        positions = sig.shape[1]
        at = view.position[:, None] + self.offsets
        values = sig[view.rows[:, None], np.minimum(at, positions - 1)]
        # NaN (no signal recorded there) is never below the threshold: the drafter goes on
        low = (values < threshold) & (at < positions)
        return np.where(low.any(axis=1), low.argmax(axis=1) + 1, self.k_max).astype(np.int64)

    def observe(self, drafted: np.ndarray, accepted: np.ndarray) -> None:
        pass


@dataclass(frozen=True)
class ConfidenceLookahead:
    """Draft until a token whose drafter probability is below ``threshold`` (that token is still verified).

    transformers' ``assistant_confidence_threshold`` stop rule, the default of its assisted
    generation (``threshold=0.4``, ``k_max=20`` = ``num_assistant_tokens``): after drafting each
    token the drafter stops when its probability (the ``signal``, default ``"top1_prob"``) is
    below the threshold, and at ``k_max`` drafts in any case.  It reads the signal at the
    positions it drafts — what the drafter computes while drafting, before any verification.
    On a teacher-forced trace the signal after a round's first mismatch is the drafter's
    probability along the target's tokens, a stand-in for its own (diverged) ones.

    >>> ConfidenceLookahead().name
    'confidence θ=0.4 k_max=20'
    """

    threshold: float = 0.4
    k_max: int = 20
    signal: str = "top1_prob"

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise InvalidParameterError(f"threshold must be a probability in [0, 1] (0 never stops), "
                                        f"got {self.threshold!r}")
        int_at_least("k_max", self.k_max, 1)

    @property
    def name(self) -> str:
        return f"confidence θ={self.threshold:g} k_max={self.k_max}"

    @property
    def static_k(self) -> None:
        return None

    def start(self, lanes: int) -> _Confidence:
        return _Confidence(float(self.threshold), int(self.k_max), self.signal)


def roc_threshold(matches, probs, fn_cost: float = 3.0) -> float:
    """The threshold on ``probs`` at the ROC point minimising ``fpr + fn_cost·fnr`` (transformers' adaptive rule).

    The ROC curve is scikit-learn's ``roc_curve(matches, probs)`` (with its default
    ``drop_intermediate=True``, and a first point at threshold ``+inf``); the first of
    equal-cost points wins (``argmin``).  ``matches``: 1 for an accepted draft, 0 for a
    rejected one; both classes must be present.

    >>> roc_threshold([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.3, 0.2])
    0.6
    """
    y = np.asarray(matches, dtype=np.int64)
    score = np.asarray(probs, dtype=float)
    if y.shape != score.shape or y.ndim != 1:
        raise InvalidParameterError("matches and probs must be 1-d sequences of the same length")
    if not (y.min(initial=1) == 0 and y.max(initial=0) == 1):
        raise InvalidParameterError("the ROC curve needs at least one accepted (1) and one rejected (0) draft")
    order = np.argsort(-score, kind="mergesort")
    score, y = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(score)), y.size - 1]  # the last index of each distinct score
    tps = np.cumsum(y)[last]
    fps = 1 + last - tps
    thresholds = score[last]
    if fps.size > 2:  # drop the points inside straight stretches of the curve
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps, thresholds = np.r_[0, fps], np.r_[0, tps], np.r_[np.inf, thresholds]
    fpr, fnr = fps / fps[-1], 1.0 - tps / tps[-1]
    return float(thresholds[np.argmin(fpr + fn_cost * fnr)])


class _AdaptiveConfidence(_Confidence):
    def __init__(self, threshold: float, k_max: int, signal: str, lanes: int, min_samples: int) -> None:
        super().__init__(threshold, k_max, signal)
        self.lane_threshold = np.full(lanes, threshold, dtype=float)
        self.min_samples = min_samples
        self.probs: list[list[float]] = [[] for _ in range(lanes)]
        self.matches: list[list[int]] = [[] for _ in range(lanes)]
        self.round: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def propose(self, view: RoundView) -> np.ndarray:
        sig = view.signal(self.signal, "AdaptiveConfidenceLookahead", "use a recorded trace with that signal "
                          "(simspec record writes top1_prob) or an acceptance process that models it")
        k = self._stop(sig, view, self.lane_threshold[:, None])
        self.round = (view.rows, view.position, sig)
        return k

    def observe_task(self, view: RoundView, drafted: int, accepted: int) -> None:
        """DSI: one verification of ``drafted`` drafts from ``view.position``, applied in order."""
        self.round = (view.rows, view.position, view.signal(self.signal, "AdaptiveConfidenceLookahead",
                                                           "use a trace with that signal"))
        self.observe(np.array([drafted]), np.array([accepted]))

    def observe(self, drafted: np.ndarray, accepted: np.ndarray) -> None:
        rows, position, sig = self.round
        positions = sig.shape[1]
        for lane in range(len(drafted)):
            n_draft = int(drafted[lane])
            if n_draft <= 0:
                continue
            at = np.minimum(position[lane] + np.arange(n_draft), positions - 1)
            probs, matches = self.probs[lane], self.matches[lane]
            # transformers: every drafted token's probability, then the matches; the drafts after the
            # first rejection are dropped
            probs.extend(np.asarray(sig[rows[lane], at], dtype=float).tolist())
            matches.extend([1] * int(accepted[lane]))
            if len(probs) > len(matches):
                matches.append(0)
            del probs[len(matches):]
            if len(probs) > self.min_samples and 0 in matches and 1 in matches:
                self.lane_threshold[lane] = roc_threshold(matches, probs)


@dataclass(frozen=True)
class AdaptiveConfidenceLookahead:
    """transformers' adaptive confidence threshold: the confidence stop, with ``θ`` refitted after each round.

    After each round the drafted tokens' probabilities and whether each was accepted (the
    drafts after the first rejection dropped) are added to the lane's history; once it holds
    more than ``min_samples`` (5) drafts of both classes, ``θ`` becomes the ROC threshold
    minimising ``fpr + 3·fnr`` (:func:`roc_threshold`), in force from the next round.  transformers
    runs it when scikit-learn is installed, the assistant has a threshold, and the vocabularies
    are shared (``AssistedCandidateGenerator`` exactly, not universal assisted generation).
    """

    learns_across_rounds: ClassVar[bool] = True
    threshold: float = 0.4
    k_max: int = 20
    signal: str = "top1_prob"
    min_samples: int = 5

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise InvalidParameterError(f"threshold must be in (0, 1] (transformers adapts only a set threshold), "
                                        f"got {self.threshold!r}")
        int_at_least("k_max", self.k_max, 1)
        int_at_least("min_samples", self.min_samples, 0)

    @property
    def name(self) -> str:
        return f"adaptive confidence θ0={self.threshold:g} k_max={self.k_max}"

    @property
    def static_k(self) -> None:
        return None

    def start(self, lanes: int) -> _AdaptiveConfidence:
        return _AdaptiveConfidence(float(self.threshold), int(self.k_max), self.signal, lanes, int(self.min_samples))


class _Oracle:
    def __init__(self, k_max: int) -> None:
        self.k_max = k_max

    def propose(self, view: RoundView) -> np.ndarray:
        to_reject = view.next_rejection[view.rows, np.minimum(view.position, view.next_rejection.shape[1] - 1)]
        return np.minimum(to_reject - view.position + 1, self.k_max)

    def observe(self, drafted: np.ndarray, accepted: np.ndarray) -> None:
        pass


@dataclass(frozen=True)
class OracleLookahead:
    """Draft until the first rejected draft, inclusive (DISCO's upper bound).

    It reads the future outcomes, so no real system can run it; it bounds what
    any dynamic policy can gain.  I.i.d. closed form: ``c + 1 − a`` per token.
    """

    k_max: int = 10**9

    def __post_init__(self) -> None:
        int_at_least("k_max", self.k_max, 1)

    @property
    def name(self) -> str:
        return "oracle"

    @property
    def static_k(self) -> None:
        return None

    def start(self, lanes: int) -> _Oracle:
        return _Oracle(self.k_max)
