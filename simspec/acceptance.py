"""Acceptance processes: which draft tokens the target accepts.

For absolute output positions ``j = 1..S`` let ``α_j`` be the probability that
the drafter's proposal at ``j``, made from the *correct* prefix, is accepted,
and ``A_j`` the realised outcome (``docs/model.md`` §3).  Drafts made after a
rejection are discarded, so only ``A`` along the correct prefix matters: one
draw of ``A`` per replication serves every algorithm and every lookahead
(common random numbers), which is what makes simspec's speedups paired.

Every process answers ``sample(rng, n_positions, reps)`` with a boolean array
of shape ``(reps, n_positions)`` and ``draw(...)`` with the same outcomes plus
per-position *signals* that a lookahead policy may read before verification
(here ``"alpha"``: the acceptance probability a perfectly calibrated drafter
would report).

>>> import numpy as np
>>> from simspec import IIDAcceptance, MarkovAcceptance
>>> rng = np.random.default_rng(0)
>>> IIDAcceptance(0.8).sample(rng, n_positions=6, reps=2).shape
(2, 6)
>>> bursty = MarkovAcceptance.from_mean(0.8, burstiness=0.9)
>>> round(bursty.mean, 12)
0.8
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from ._checks import MAX_DRAW_BYTES, MAX_TRACE_POSITIONS, check_work, int_at_least, probability, probability_array
from .errors import InvalidParameterError, TraceFormatError
from .io import decoded_lines

__all__ = [
    "AcceptanceDraw",
    "AcceptanceProcess",
    "IIDAcceptance",
    "ScheduleAcceptance",
    "MarkovAcceptance",
    "TraceAcceptance",
    "PositionalAcceptance",
]


def _clip(line: str, width: int = 60) -> str:
    """A line short enough to quote in an error message."""
    return line if len(line) <= width else line[:width] + "..."


@dataclass(frozen=True)
class AcceptanceDraw:
    """Outcomes ``accepted`` (bool, ``(reps, n_positions)``) and named per-position signals.

    ``units`` labels each row with the independent unit it came from (the trace
    a replay picked); ``None``: every row is independent.  Confidence intervals
    count units, not rows.
    """

    accepted: np.ndarray
    signals: Mapping[str, np.ndarray] = field(default_factory=dict)
    units: np.ndarray | None = None


@runtime_checkable
class AcceptanceProcess(Protocol):
    """What every acceptance process provides."""

    @property
    def mean(self) -> float:
        """Long-run fraction of accepted drafts (the marginal acceptance rate)."""

    @property
    def iid_rate(self) -> float | None:
        """The rate ``a`` if outcomes are i.i.d. Bernoulli(a) (closed forms apply), else None."""

    def draw(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> AcceptanceDraw: ...

    def sample(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> np.ndarray: ...


def _check_shape(n_positions: int, reps: int, bytes_per_position: float = 17.0,
                 fixed_bytes: float = 0.0) -> tuple[int, int]:
    """``(n_positions, reps)`` checked: integers >= 1 whose draw fits in :data:`~simspec._checks.MAX_DRAW_BYTES`.

    ``bytes_per_position``: what one ``(rep, position)`` cell of the draw holds at
    its peak (uniforms, outcomes, signals); ``fixed_bytes``: memory that does not
    grow with ``reps`` (a trace table).
    """
    n, r = int_at_least("n_positions", n_positions, 1), int_at_least("reps", reps, 1)
    fit = int((MAX_DRAW_BYTES - fixed_bytes) // (bytes_per_position * n))
    check_work(
        f"an acceptance draw of reps × n_positions ({r} × {n})", bytes_per_position * r * n + fixed_bytes,
        MAX_DRAW_BYTES,
        (f"draw at most {fit} replications per call and combine the draws (compare and simulate chunk them)"
         if fit >= 1 else f"ask for at most {int(MAX_DRAW_BYTES // (2 * bytes_per_position))} positions (tokens)"),
        unit="bytes",
    )
    return n, r


class _Base:
    def sample(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> np.ndarray:
        """Outcomes ``A`` as a bool array of shape ``(reps, n_positions)``."""
        return self.draw(rng, n_positions, reps).accepted

    @property
    def variance(self) -> float:
        """Variance of one outcome ``A_j`` under the marginal law."""
        m = self.mean
        return m * (1.0 - m)


@dataclass(frozen=True)
class IIDAcceptance(_Base):
    """Every draft is accepted independently with probability ``rate``."""

    rate: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", probability("acceptance rate", self.rate))

    @property
    def mean(self) -> float:
        return self.rate

    @property
    def iid_rate(self) -> float:
        return self.rate

    def draw(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> AcceptanceDraw:
        n, r = _check_shape(n_positions, reps, 8 + 1 + 8)  # uniforms, outcomes, the alpha signal
        accepted = rng.random((r, n)) < self.rate
        # a read-only broadcast view: the same signal everywhere costs no memory
        return AcceptanceDraw(accepted, {"alpha": np.broadcast_to(np.float64(self.rate), (r, n))})


@dataclass(frozen=True)
class ScheduleAcceptance(_Base):
    """An explicit schedule ``α_j`` over absolute positions ``j = 1..len(alphas)``.

    With ``cycle=True`` the schedule repeats; otherwise asking for more positions
    than it holds is an error.
    """

    alphas: tuple[float, ...]
    cycle: bool = False

    def __post_init__(self) -> None:
        arr = probability_array("alphas", self.alphas)
        if arr.ndim != 1:
            raise InvalidParameterError("alphas must be a 1-D sequence of per-position acceptance probabilities")
        object.__setattr__(self, "alphas", tuple(float(x) for x in arr))

    @property
    def mean(self) -> float:
        return float(np.mean(self.alphas))

    @property
    def iid_rate(self) -> float | None:
        first = self.alphas[0]
        return first if all(x == first for x in self.alphas) else None

    def alpha(self, n_positions: int) -> np.ndarray:
        arr = np.asarray(self.alphas)
        if n_positions > arr.size:
            if not self.cycle:
                raise InvalidParameterError(
                    f"the schedule has {arr.size} positions but {n_positions} were asked for; "
                    "give a longer schedule or pass cycle=True"
                )
            arr = np.resize(arr, n_positions)
        return arr[:n_positions]

    def draw(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> AcceptanceDraw:
        n, r = _check_shape(n_positions, reps, 8 + 1, 8.0 * n_positions)  # uniforms, outcomes; one alpha row
        alpha = np.broadcast_to(self.alpha(n), (r, n))
        return AcceptanceDraw(rng.random((r, n)) < alpha, {"alpha": alpha})


@dataclass(frozen=True)
class MarkovAcceptance(_Base):
    """Two hidden states, *easy* and *hard*, switching as a Markov chain.

    Real acceptance is bursty: long runs of accepted drafts (boilerplate, copied
    text) alternate with hard stretches.  In state easy a draft is accepted with
    ``alpha_easy``, in state hard with ``alpha_hard``; the state moves easy→hard
    with probability ``p_easy_to_hard`` and hard→easy with ``p_hard_to_easy``
    after each position.  The first state is drawn from the stationary law.

    ``burstiness`` is the lag-one autocorrelation of the hidden state,
    ``1 − p_easy_to_hard − p_hard_to_easy``: 0 gives an i.i.d. mixture, values
    near 1 give long runs.  Build it from the quantities people think in with
    :meth:`from_mean`.
    """

    alpha_easy: float
    alpha_hard: float
    p_easy_to_hard: float
    p_hard_to_easy: float

    def __post_init__(self) -> None:
        for name in ("alpha_easy", "alpha_hard", "p_easy_to_hard", "p_hard_to_easy"):
            object.__setattr__(self, name, probability(name, getattr(self, name)))
        if self.p_easy_to_hard + self.p_hard_to_easy == 0:
            raise InvalidParameterError(
                "p_easy_to_hard and p_hard_to_easy are both 0, so the chain never mixes; make one positive"
            )

    @classmethod
    def from_mean(
        cls, mean: float, burstiness: float, alpha_easy: float | None = None, alpha_hard: float | None = None
    ) -> "MarkovAcceptance":
        """The chain with stationary acceptance ``mean`` and state autocorrelation ``burstiness``.

        The state acceptances default to ``alpha_easy = max(0.95, (1 + mean)/2)`` and
        ``alpha_hard = min(0.2, mean/2)``: 0.95 and 0.2 for every mean in ``[0.4, 0.9]``, and
        strictly on either side of any mean in ``(0, 1)``, so every such mean can be bursty.  A
        mean of 0 or 1 is deterministic (every draft rejected, or every one accepted): both
        states then accept with that probability and ``burstiness`` changes nothing.  Given
        explicitly, ``alpha_hard ≤ mean ≤ alpha_easy`` must hold.
        """
        mean = probability("mean", mean)
        lam = probability("burstiness", burstiness)
        if lam >= 1:
            raise InvalidParameterError("burstiness must be < 1 (at 1 the hidden state never changes)")
        if alpha_easy is None and alpha_hard is None and mean in (0.0, 1.0):
            return cls(mean, mean, (1 - lam) / 2, (1 - lam) / 2)
        easy = max(0.95, (1 + mean) / 2) if alpha_easy is None else probability("alpha_easy", alpha_easy)
        hard = min(0.2, mean / 2) if alpha_hard is None else probability("alpha_hard", alpha_hard)
        if easy == hard == mean:  # one state in effect: i.i.d. at the mean
            return cls(easy, hard, (1 - lam) / 2, (1 - lam) / 2)
        if not hard <= mean <= easy or hard == easy:
            raise InvalidParameterError(
                f"mean {mean:g} must lie between alpha_hard={hard:g} and alpha_easy={easy:g}, with "
                "alpha_hard < alpha_easy; pass state acceptances that bracket the mean, or leave them "
                "out to derive them from it"
            )
        pi_easy = (mean - hard) / (easy - hard)
        return cls(easy, hard, (1 - lam) * (1 - pi_easy), (1 - lam) * pi_easy)

    @property
    def stationary_easy(self) -> float:
        return self.p_hard_to_easy / (self.p_easy_to_hard + self.p_hard_to_easy)

    @property
    def burstiness(self) -> float:
        return 1.0 - self.p_easy_to_hard - self.p_hard_to_easy

    @property
    def mean(self) -> float:
        pi = self.stationary_easy
        return pi * self.alpha_easy + (1 - pi) * self.alpha_hard

    @property
    def iid_rate(self) -> float | None:
        # equal state acceptances, or a state redrawn independently at every position
        # (burstiness 0), make the outcomes i.i.d. Bernoulli(mean)
        if self.alpha_easy == self.alpha_hard or abs(self.burstiness) < 1e-12:
            return self.mean
        return None

    def draw(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> AcceptanceDraw:
        n, r = _check_shape(n_positions, reps, 8 + 8 + 1 + 8 + 1)  # two uniforms, states, alpha, outcomes
        u_state = rng.random((r, n))
        u_accept = rng.random((r, n))
        easy = np.empty((r, n), dtype=bool)
        state = u_state[:, 0] < self.stationary_easy
        easy[:, 0] = state
        stay_easy, leave_hard = 1.0 - self.p_easy_to_hard, self.p_hard_to_easy
        for j in range(1, n):
            state = np.where(state, u_state[:, j] < stay_easy, u_state[:, j] < leave_hard)
            easy[:, j] = state
        alpha = np.where(easy, self.alpha_easy, self.alpha_hard)
        return AcceptanceDraw(u_accept < alpha, {"alpha": alpha, "easy": easy})


@dataclass(frozen=True)
class TraceAcceptance(_Base):
    """Replay of recorded outcomes, e.g. from a real drafter/target pair.

    Each replication picks one trace uniformly at random (a bootstrap over
    recorded prompts).  The traces, not the replications, are the independent
    units: a draw labels each row with its trace (``AcceptanceDraw.units``) and
    every interval simspec reports counts traces.  A trace shorter than the positions asked for is an error
    unless ``wrap=True``, which repeats it.

    An outcome may be ``None``: *unobserved* (the bonus position after a fully
    accepted round, in a trace taken from real assisted runs, where the drafter
    never proposed).  Replay never counts it as accepted by default: each draw
    fills it with a Bernoulli outcome, drawn with the draw's ``rng``, at the
    trace's :attr:`fill_rates` — its observed rate of acceptance right after an
    observed accepted position (an unobserved bonus position always follows one),
    or its plain observed rate when it has no such pair.  Cutting the trace at
    the first unobserved position instead would keep almost nothing of a trace
    recorded at high acceptance (one bonus position per fully accepted round);
    the fill keeps every observed outcome in place.  :attr:`mean` counts observed
    positions only.

    ``signals`` (optional): per-position drafter signals, ``{name: (one float
    array per trace)}``, NaN where unknown; a draw returns them aligned with its
    rows.  ``provenance``, ``prompts`` and ``prompt_lens`` describe where the
    traces came from (:func:`simspec.traces.load_acceptance_trace` fills them).

    >>> acc = TraceAcceptance.from_arrays([[1, 1, None, 1, 0, 1]])
    >>> acc.fill_rates.tolist(), acc.mean     # right after an accepted position: 1 of 2 accepted
    ([0.5], 0.8)
    >>> acc.sample(np.random.default_rng(0), 6).shape
    (1, 6)
    """

    traces: tuple[tuple[bool | None, ...], ...]
    wrap: bool = False
    signals: Mapping[str, tuple[np.ndarray, ...]] | None = field(default=None, compare=False)
    provenance: Mapping[str, Any] | None = field(default=None, compare=False)
    prompts: tuple[str, ...] | None = None
    prompt_lens: tuple[int | None, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.traces) == 0:
            raise InvalidParameterError("TraceAcceptance needs at least one trace")
        clean, observed, missing = [], [], []
        for i, t in enumerate(self.traces):
            if isinstance(t, np.ndarray) and t.dtype != object:
                arr, miss = t, None
            else:
                t = tuple(t)
                miss = np.fromiter((x is None for x in t), dtype=bool, count=len(t))
                arr = np.asarray([0 if x is None else x for x in t]) if miss.any() else np.asarray(t)
                if not miss.any():
                    miss = None
            if arr.ndim != 1 or arr.size == 0:
                raise InvalidParameterError(f"trace {i} must be a non-empty 1-D sequence of 0/1 outcomes")
            if arr.dtype.kind not in "biuf" or not np.isin(arr, (0, 1)).all():
                raise InvalidParameterError(
                    f"trace {i} must hold only 0 (rejected), 1 (accepted) and None (unobserved)")
            obs = arr.astype(bool)
            if miss is None:
                clean.append(tuple(obs.tolist()))
            else:
                clean.append(tuple(None if m else bool(x) for x, m in zip(obs.tolist(), miss.tolist())))
            observed.append(obs)
            missing.append(miss)
        object.__setattr__(self, "traces", tuple(clean))
        object.__setattr__(self, "_observed", tuple(observed))
        object.__setattr__(self, "_missing", tuple(missing))
        n_seen = sum(o.size - (0 if m is None else int(m.sum())) for o, m in zip(observed, missing))
        if n_seen == 0:
            raise InvalidParameterError("every outcome of every trace is unobserved (None); nothing to replay")
        self._check_labels()
        if self.signals is not None:
            object.__setattr__(self, "signals", self._clean_signals(self.signals))

    def _check_labels(self) -> None:
        n = len(self.traces)
        for name in ("prompts", "prompt_lens"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(value)
                if len(value) != n:
                    raise InvalidParameterError(f"{name} must have one entry per trace: {len(value)} for {n} traces")
                object.__setattr__(self, name, value)

    def _clean_signals(self, signals: Mapping[str, Sequence]) -> dict[str, tuple[np.ndarray, ...]]:
        out = {}
        for name, rows in signals.items():
            if len(rows) != len(self.traces):
                raise InvalidParameterError(
                    f"signal {name!r} must have one array per trace: {len(rows)} for {len(self.traces)} traces")
            arrs = []
            for i, (row, t) in enumerate(zip(rows, self.traces)):
                arr = np.array([np.nan if x is None else x for x in row] if not isinstance(row, np.ndarray) else row,
                               dtype=float)
                if arr.shape != (len(t),):
                    raise InvalidParameterError(
                        f"signal {name!r} of trace {i} has {arr.size} values for {len(t)} positions")
                arr.setflags(write=False)
                arrs.append(arr)
            out[str(name)] = tuple(arrs)
        return out

    def __repr__(self) -> str:  # the outcomes themselves would flood logs and JSON
        lengths = [len(t) for t in self.traces]
        return (
            f"TraceAcceptance({len(self.traces)} trace(s), {min(lengths)}..{max(lengths)} positions, "
            f"mean={self.mean:.4g}, wrap={self.wrap})"
        )

    @property
    def has_unobserved(self) -> bool:
        """Whether some position of some trace is unobserved (``None``)."""
        return any(m is not None for m in self._missing)

    @property
    def fill_rates(self) -> np.ndarray:
        """Per trace, the rate at which a draw fills its unobserved positions (see the class docstring).

        The trace's observed acceptance rate at positions right after an observed
        accepted position; its observed rate if it has no such pair; the rate
        over all traces if it has no observed position at all.
        """
        out = np.empty(len(self.traces))
        pooled = self.mean
        for i, (obs, miss) in enumerate(zip(self._observed, self._missing)):
            seen = np.ones(obs.size, dtype=bool) if miss is None else ~miss
            after = seen[1:] & seen[:-1] & obs[:-1]
            if after.any():
                out[i] = obs[1:][after].mean()
            elif seen.any():
                out[i] = obs[seen].mean()
            else:
                out[i] = pooled
        return out

    @classmethod
    def from_arrays(cls, arrays: Sequence[Sequence[int | None]], wrap: bool = False) -> "TraceAcceptance":
        """Traces from sequences of 1 (accepted), 0 (rejected) and ``None`` (unobserved)."""
        return cls(tuple(tuple(a) for a in arrays), wrap)

    @classmethod
    def from_run_lengths(cls, runs: Sequence[Sequence[int]] | Sequence[int], wrap: bool = False) -> "TraceAcceptance":
        """Traces from run lengths: each run ``n`` is ``n`` accepted drafts then one rejection.

        A flat sequence of ints is one trace; a sequence of sequences is several.
        """
        if len(runs) and np.ndim(runs[0]) == 0:
            runs = [runs]  # type: ignore[list-item]
        traces = []
        total = 0
        for i, trace_runs in enumerate(runs):
            out: list[bool] = []
            for n in trace_runs:
                if isinstance(n, bool) or int(n) != n or n < 0:
                    raise InvalidParameterError(f"run lengths must be integers >= 0; trace {i} has {n!r}")
                total += int(n) + 1
                check_work("the positions these run lengths expand to", total, MAX_TRACE_POSITIONS,
                           f"trace {i} has a run of {int(n)}; record at most {MAX_TRACE_POSITIONS} positions in all",
                           unit="positions")
                out.extend([True] * int(n))
                out.append(False)
            traces.append(tuple(out))
        return cls(tuple(traces), wrap)

    @classmethod
    def from_file(cls, path: str | os.PathLike, wrap: bool = False) -> "TraceAcceptance":
        """Read traces from a text file, one trace a line.

        A line is either a string of ``0``/``1`` outcomes (``1101110``) or
        ``runs:`` followed by whitespace-separated run lengths (``runs: 3 0 5``).
        Blank lines and lines starting with ``#`` are skipped.
        """
        traces: list[tuple[bool, ...]] = []
        total = 0  # positions so far: a line like 'runs: 99999999999' must not exhaust memory
        with open(path, "rb") as fh:  # bytes, decoded line by line, so that an error names its line
            for lineno, raw in decoded_lines(fh, path, "a trace file is text, one trace a line: 0/1 outcomes or "
                                             "'runs: n1 n2 ...'", TraceFormatError):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("runs:"):
                    fields = line[5:].split()
                    if not fields or not all(f.isascii() and f.isdigit() for f in fields):
                        raise TraceFormatError(
                            f"{path}:{lineno}: 'runs:' must be followed by integers >= 0, got {_clip(line)!r}"
                        )
                    runs = [int(f) for f in fields]
                    total += sum(runs) + len(runs)
                else:
                    if set(line) - {"0", "1"}:
                        raise TraceFormatError(
                            f"{path}:{lineno}: expected a string of 0/1 outcomes or 'runs: n1 n2 ...', got {_clip(line)!r}"
                        )
                    total += len(line)
                if total > MAX_TRACE_POSITIONS:
                    raise TraceFormatError(
                        f"{path}:{lineno}: the traces so far hold {total:.3g} positions, more than the limit of "
                        f"{MAX_TRACE_POSITIONS:.3g} (memory); a run length is a count of accepted drafts, so "
                        "check this line, or split the file"
                    )
                if line.startswith("runs:"):
                    traces.extend(cls.from_run_lengths(runs).traces)
                else:
                    traces.append(tuple(ch == "1" for ch in line))
        if not traces:
            raise TraceFormatError(f"{path}: no traces found (every line was blank or a comment)")
        return cls(tuple(traces), wrap)

    @property
    def mean(self) -> float:
        """The fraction of observed positions that were accepted (unobserved ones left out)."""
        seen = acc = 0
        for obs, miss in zip(self._observed, self._missing):
            if miss is None:
                seen += obs.size
                acc += int(obs.sum())
            else:
                seen += int((~miss).sum())
                acc += int((obs & ~miss).sum())
        return acc / seen

    @property
    def iid_rate(self) -> None:
        return None

    def draw(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> AcceptanceDraw:
        names = sorted(self.signals) if self.signals else []
        fill = self.has_unobserved
        per_cell = 1 + 8 * len(names) + (1 + 8 if fill else 0)  # picked rows: outcomes, signals, the fill
        n, r = _check_shape(n_positions, reps, per_cell, float(len(self.traces)) * n_positions * per_cell)
        short = [i for i, t in enumerate(self.traces) if len(t) < n]
        if short and not self.wrap:
            raise InvalidParameterError(
                f"trace {short[0]} has {len(self.traces[short[0]])} positions but {n} were asked for; "
                "simulate fewer tokens or pass wrap=True (--wrap on the command line)"
            )
        table = np.stack([np.resize(o, n) for o in self._observed])
        pick = rng.integers(0, len(self.traces), size=r)
        accepted = table[pick]
        if fill:
            missing = np.stack([np.zeros(n, dtype=bool) if m is None else np.resize(m, n) for m in self._missing])
            rows, cols = np.nonzero(missing[pick])
            accepted[rows, cols] = rng.random(rows.size) < self.fill_rates[pick[rows]]
        signals = {name: np.stack([np.resize(a, n) for a in self.signals[name]])[pick] for name in names}
        return AcceptanceDraw(accepted, signals, units=pick)


@dataclass(frozen=True)
class PositionalAcceptance(_Base):
    """Acceptance that depends on the position in the run of accepted drafts (a renewal process).

    ``alphas[j-1]`` is ``α_j``, the probability that a draft is accepted given
    that the ``j − 1`` drafts before it *in the current run* were (``j = 1..K``);
    beyond ``K`` the tail is geometric with ``α_K`` (an extrapolation: nothing
    was measured there).  Runs of accepted drafts between rejections are i.i.d.
    with ``P(run ≥ j) = α_1 ··· α_j``; the first position starts a run.  This is
    what serving engines' per-position counters measure (:mod:`simspec.engine_metrics`).
    With all ``α_j`` equal the outcomes are i.i.d. Bernoulli(α).

    The signal ``"alpha"`` is the ``α_j`` in force at each position (what a
    perfectly calibrated drafter would report there).

    >>> acc = PositionalAcceptance((0.9, 0.8, 0.7))
    >>> round(acc.mean, 4), acc.iid_rate
    (0.7674, None)
    >>> PositionalAcceptance((0.8, 0.8)).iid_rate
    0.8
    >>> PositionalAcceptance.from_counts(drafts=100, accepted_at_position=[90, 72, 50]).alphas
    (0.9, 0.8, 0.6944444444444444)
    """

    alphas: tuple[float, ...]

    def __post_init__(self) -> None:
        arr = probability_array("alphas", self.alphas)
        if arr.ndim != 1 or arr.size == 0:
            raise InvalidParameterError(
                "alphas must be a non-empty 1-D sequence: alphas[j-1] is the acceptance of the j-th draft of a run")
        object.__setattr__(self, "alphas", tuple(float(x) for x in arr))

    @classmethod
    def from_counts(cls, drafts: float, accepted_at_position: Sequence[float]) -> "PositionalAcceptance":
        """``α_1 = c_0/drafts``, ``α_j = c_{j−1}/c_{j−2}`` from counts of accepted drafts by position.

        ``drafts``: rounds that proposed drafts; ``accepted_at_position[i]``: rounds
        whose draft at position ``i`` (0-based) was accepted — accepted drafts form a
        prefix of the round, so the counts cannot grow with ``i``.  A position no round
        reached (a zero count before it) ends the schedule: its ``α`` is unknown.
        """
        d = float(drafts)
        c = np.asarray(accepted_at_position, dtype=float)
        if not (np.isfinite(d) and d > 0):
            raise InvalidParameterError(f"drafts must be a count > 0, got {drafts!r}")
        if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)) or np.any(c < 0):
            raise InvalidParameterError(
                f"accepted_at_position must be a non-empty sequence of counts >= 0, got {accepted_at_position!r}")
        chain = np.concatenate([[d], c])
        up = np.flatnonzero(chain[1:] > chain[:-1] * (1 + 1e-9))
        if up.size:
            j = int(up[0])
            before = "drafts" if j == 0 else f"accepted_at_position[{j - 1}]"
            raise InvalidParameterError(
                f"accepted_at_position[{j}] = {c[j]:g} exceeds {before} = {chain[j]:g}: accepted drafts form a "
                "prefix of each round, so the count at a position cannot exceed the count before it")
        k = c.size
        zero = np.flatnonzero(chain[:-1] == 0)
        if zero.size:
            k = int(zero[0])  # positions after a zero count were never reached
        return cls(tuple(float(x) for x in chain[1:k + 1] / chain[:k]))

    def survival(self, j) -> np.ndarray:
        """``P(run ≥ j)`` for run lengths ``j >= 0`` (vectorised; geometric beyond ``K``)."""
        j = np.asarray(j, dtype=np.int64)
        a = np.asarray(self.alphas)
        k = a.size
        head = np.concatenate([[1.0], np.cumprod(a)])
        with np.errstate(under="ignore"):
            tail = head[k] * a[-1] ** np.maximum(j - k, 0).astype(float)
        return np.where(j <= k, head[np.minimum(j, k)], tail)

    @property
    def mean_run(self) -> float:
        """``E[run]`` = Σ_j P(run ≥ j): accepted drafts between two rejections (inf if runs never end)."""
        a = np.asarray(self.alphas)
        s = np.cumprod(a)
        if a[-1] >= 1.0:
            return math.inf if s[-1] > 0 else float(s.sum())
        return float(s.sum() + s[-1] * a[-1] / (1.0 - a[-1]))

    @property
    def mean(self) -> float:
        r = self.mean_run
        return 1.0 if math.isinf(r) else r / (1.0 + r)

    @property
    def iid_rate(self) -> float | None:
        first = self.alphas[0]
        return first if all(x == first for x in self.alphas) else None

    def draw(self, rng: np.random.Generator, n_positions: int, reps: int = 1) -> AcceptanceDraw:
        # peak per cell: uniforms, run lengths, their ends (8 each), outcomes (1), run position, alpha (8 each)
        n, r = _check_shape(n_positions, reps, 8 * 5 + 1)
        a = np.asarray(self.alphas)
        k = a.size
        s = np.cumprod(a)  # s[j-1] = P(run >= j), non-increasing
        # one run per position is always enough: each run covers at least one position
        u = rng.random((r, n))
        run = np.searchsorted(-s, -u, side="left").astype(np.int64)  # #{j <= K: P(run >= j) > u}
        deep = run == k
        if deep.any():  # the geometric tail: #{m >= 1: s_K α_K^m > u} = ceil(log(u/s_K)/log α_K) - 1
            if a[-1] >= 1.0:
                extra = np.full(int(deep.sum()), n, dtype=np.int64)
            else:
                with np.errstate(divide="ignore"):
                    x = np.log(u[deep] / s[-1]) / np.log(a[-1])
                extra = np.minimum(np.ceil(np.minimum(x, n + 1.0)) - 1, n).astype(np.int64)
            run[deep] += extra
        del u, deep
        np.minimum(run, n, out=run)
        run += 1
        ends = np.cumsum(run, axis=1, out=run)  # one past each run's rejection
        ends -= 1
        accepted = np.ones((r, n), dtype=bool)
        rows, cols = np.nonzero(ends < n)
        accepted[rows, ends[rows, cols]] = False
        del ends, rows, cols
        # position in the run (1-based) of every position: distance to the last rejection before it
        idx = np.where(accepted, np.int64(-1), np.arange(n, dtype=np.int64))
        np.maximum.accumulate(idx, axis=1, out=idx)
        last = np.empty_like(idx)
        last[:, 0] = -1
        last[:, 1:] = idx[:, :-1]
        del idx
        depth = np.arange(n, dtype=np.int64) - last
        np.minimum(depth, k, out=depth)
        return AcceptanceDraw(accepted, {"alpha": a[depth - 1]})
