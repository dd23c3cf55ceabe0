"""Requests of a serving workload: when they arrive, how long their prompts and outputs are.

A :class:`Workload` is an arrival process, a prompt-length and an output-length
distribution, and a number of requests; :meth:`Workload.generate` draws them as a
:class:`RequestTable` (arrival times in ms, prompt and output lengths), with the
generator it is given.  A recorded request trace replays as it is
(:class:`RequestTrace`, :func:`load_request_trace`).

Arrival processes (``rate`` in requests per second):

* :class:`PoissonArrivals` — independent exponential gaps (an open system of many users);
* :class:`BurstyArrivals` — gamma-distributed gaps with a coefficient of variation
  ``cv > 1`` (requests come in bursts at the same mean rate; ``cv = 1`` is Poisson).

Lengths are an int (every request the same) or a :class:`LengthDistribution`:
:class:`UniformLengths` or :class:`EmpiricalLengths` (drawn from recorded lengths).

>>> import numpy as np
>>> w = Workload(PoissonArrivals(rate=2.0), prompt_len=128, output_len=UniformLengths(50, 150), requests=4)
>>> t = w.generate(np.random.default_rng(0))
>>> t.arrival_ms.round(1), t.prompt_len, t.output_len
(array([340. , 849.8, 859.7, 860.8]), array([128, 128, 128, 128]), array([ 67, 132, 115, 142]))
>>> PoissonArrivals(2.0).mean_gap_ms, BurstyArrivals(2.0, cv=3.0).variance_gap_ms
(500.0, 2250000.0)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Union, runtime_checkable

import numpy as np

from .._checks import int_at_least, positive
from ..errors import InvalidParameterError, TraceFormatError

__all__ = [
    "ArrivalProcess",
    "PoissonArrivals",
    "BurstyArrivals",
    "LengthDistribution",
    "UniformLengths",
    "EmpiricalLengths",
    "RequestTable",
    "RequestTrace",
    "Workload",
    "load_request_trace",
    "MAX_REQUESTS",
]

#: The most requests one workload may hold (each is a few hundred bytes of engine state).
MAX_REQUESTS = 10_000_000


@runtime_checkable
class ArrivalProcess(Protocol):
    """Arrival times of requests: ``sample(rng, n)`` gives ``n`` increasing times in ms from 0."""

    @property
    def rate(self) -> float:
        """Mean arrivals per second."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray: ...


@dataclass(frozen=True)
class PoissonArrivals:
    """A Poisson process of ``rate`` requests per second: exponential gaps of mean ``1000/rate`` ms."""

    rate: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", positive("rate", self.rate, "requests per second"))

    @property
    def mean_gap_ms(self) -> float:
        return 1000.0 / self.rate

    @property
    def variance_gap_ms(self) -> float:
        return self.mean_gap_ms ** 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.cumsum(rng.exponential(self.mean_gap_ms, size=n))


@dataclass(frozen=True)
class BurstyArrivals:
    """Gamma-distributed gaps: mean ``1000/rate`` ms, coefficient of variation ``cv`` (1: Poisson).

    With ``cv = 3`` the gaps' standard deviation is three times their mean:
    many requests close together, then long lulls.
    """

    rate: float
    cv: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", positive("rate", self.rate, "requests per second"))
        object.__setattr__(self, "cv", positive("cv", self.cv, "the gaps' standard deviation over their mean"))

    @property
    def mean_gap_ms(self) -> float:
        return 1000.0 / self.rate

    @property
    def variance_gap_ms(self) -> float:
        return (self.cv * self.mean_gap_ms) ** 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        shape = 1.0 / self.cv ** 2
        return np.cumsum(rng.gamma(shape, self.mean_gap_ms / shape, size=n))


@runtime_checkable
class LengthDistribution(Protocol):
    """Token counts: ``sample(rng, n)`` gives ``n`` ints >= 1."""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray: ...

    def mean(self) -> float: ...


@dataclass(frozen=True)
class UniformLengths:
    """Integers uniform on ``low .. high`` (both included)."""

    low: int
    high: int

    def __post_init__(self) -> None:
        int_at_least("low", self.low, 0)
        int_at_least("high", self.high, int(self.low), "high must be >= low")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(self.low, self.high + 1, size=n)

    def mean(self) -> float:
        return (self.low + self.high) / 2

    def variance(self) -> float:
        m = self.high - self.low + 1
        return (m * m - 1) / 12


@dataclass(frozen=True, eq=False)
class EmpiricalLengths:
    """Lengths drawn uniformly, with replacement, from recorded ones (e.g. a dataset's outputs)."""

    values: tuple[int, ...]

    def __post_init__(self) -> None:
        vals = tuple(int_at_least("lengths", v, 0) for v in self.values)
        if not vals:
            raise InvalidParameterError("EmpiricalLengths needs at least one recorded length")
        object.__setattr__(self, "values", vals)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.asarray(self.values, dtype=np.int64)[rng.integers(0, len(self.values), size=n)]

    def mean(self) -> float:
        return float(np.mean(self.values))

    def variance(self) -> float:
        return float(np.var(self.values))


Lengths = Union[int, LengthDistribution]


def _lengths(name: str, value, low: int) -> Lengths:
    if isinstance(value, LengthDistribution):
        return value
    return int_at_least(name, value, low)


def _draw(lengths: Lengths, rng: np.random.Generator, n: int, name: str, low: int) -> np.ndarray:
    if isinstance(lengths, int):
        return np.full(n, lengths, dtype=np.int64)
    out = np.asarray(lengths.sample(rng, n), dtype=np.int64)
    if out.shape != (n,) or (n and out.min() < low):
        raise InvalidParameterError(f"{name} distribution {lengths!r} must give {n} integers >= {low}")
    return out


@dataclass(frozen=True, eq=False)
class RequestTable:
    """Requests as arrays: ``arrival_ms`` (non-decreasing), ``prompt_len`` and ``output_len`` (>= 1)."""

    arrival_ms: np.ndarray
    prompt_len: np.ndarray
    output_len: np.ndarray

    def __post_init__(self) -> None:
        a = np.asarray(self.arrival_ms, dtype=float).reshape(-1)
        p = np.asarray(self.prompt_len, dtype=np.int64).reshape(-1)
        o = np.asarray(self.output_len, dtype=np.int64).reshape(-1)
        if not (a.size == p.size == o.size) or a.size == 0:
            raise InvalidParameterError(
                f"a request table needs one arrival, prompt length and output length per request, got "
                f"{a.size}, {p.size} and {o.size}")
        if not np.all(np.isfinite(a)) or a.min() < 0 or np.any(np.diff(a) < 0):
            raise InvalidParameterError("arrival times must be finite, >= 0 and non-decreasing (sort the requests)")
        if p.min() < 1 or o.min() < 1:
            raise InvalidParameterError("prompt and output lengths must be >= 1 (a request has a prompt to prefill "
                                        "and asks for at least one token)")
        for name, v in (("arrival_ms", a), ("prompt_len", p), ("output_len", o)):
            object.__setattr__(self, name, v)

    def __len__(self) -> int:
        return int(self.arrival_ms.size)

    @property
    def output_tokens(self) -> int:
        return int(self.output_len.sum())


@dataclass(frozen=True, eq=False)
class RequestTrace:
    """A recorded workload replayed as it is: the same requests whatever the generator."""

    table: RequestTable
    source: str = "<arrays>"

    @property
    def requests(self) -> int:
        return len(self.table)

    def generate(self, rng: np.random.Generator | None = None) -> RequestTable:
        return self.table

    @property
    def rate(self) -> float:
        span = float(self.table.arrival_ms[-1] - self.table.arrival_ms[0])
        return (len(self.table) - 1) / span * 1000.0 if span > 0 else math.inf

    def __repr__(self) -> str:
        return f"RequestTrace({self.source}, {len(self.table)} requests)"


def load_request_trace(path: str | os.PathLike) -> RequestTrace:
    """A request trace from a JSON-lines file: one object per request with ``arrival_ms`` (or
    ``arrival_s``), ``prompt_len`` and ``output_len``; errors name the file and the line."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise TraceFormatError(f"{p}: cannot read the request trace ({exc.strerror})") from None
    rows = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue
        try:
            obj = json.loads(line)
        except (UnicodeDecodeError, ValueError):
            raise TraceFormatError(f"{p}:{lineno}: not a JSON object (one request per line)") from None
        if not isinstance(obj, dict):
            raise TraceFormatError(f"{p}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        try:
            t = float(obj["arrival_ms"]) if "arrival_ms" in obj else 1000.0 * float(obj["arrival_s"])
            row = (t, int(obj["prompt_len"]), int(obj["output_len"]))
        except KeyError as exc:
            raise TraceFormatError(f"{p}:{lineno}: missing key {exc.args[0]!r} (needs arrival_ms or arrival_s, "
                                   "prompt_len, output_len)") from None
        except (TypeError, ValueError):
            raise TraceFormatError(f"{p}:{lineno}: arrival, prompt_len and output_len must be numbers") from None
        if not math.isfinite(t) or t < 0 or row[1] < 1 or row[2] < 1:
            raise TraceFormatError(f"{p}:{lineno}: needs arrival >= 0, prompt_len >= 1 and output_len >= 1")
        rows.append(row)
    if not rows:
        raise TraceFormatError(f"{p}: holds no request")
    if len(rows) > MAX_REQUESTS:
        raise TraceFormatError(f"{p}: {len(rows):,} requests exceed the limit of {MAX_REQUESTS:,}; split the trace")
    rows.sort(key=lambda r: r[0])
    a, pl, ol = (np.array(c) for c in zip(*rows))
    return RequestTrace(RequestTable(a - a[0] if a[0] > 0 else a, pl, ol), source=str(p))


@dataclass(frozen=True)
class Workload:
    """``requests`` requests arriving by ``arrivals``, with prompt and output lengths drawn per request."""

    arrivals: ArrivalProcess
    prompt_len: Lengths = 128
    output_len: Lengths = 128
    requests: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.arrivals, ArrivalProcess):
            raise InvalidParameterError(
                f"arrivals must be an arrival process (e.g. PoissonArrivals(rate=2.0)), got {self.arrivals!r}")
        object.__setattr__(self, "prompt_len", _lengths("prompt_len", self.prompt_len, 1))
        object.__setattr__(self, "output_len", _lengths("output_len", self.output_len, 1))
        n = int_at_least("requests", self.requests, 1)
        if n > MAX_REQUESTS:
            raise InvalidParameterError(f"requests = {n:,} exceeds {MAX_REQUESTS:,}; run several smaller workloads")
        object.__setattr__(self, "requests", n)

    def generate(self, rng: np.random.Generator) -> RequestTable:
        """The requests, drawn with ``rng``: arrivals first, then prompt lengths, then output lengths."""
        n = self.requests
        arrival = self.arrivals.sample(rng, n)
        prompt = _draw(self.prompt_len, rng, n, "prompt_len", 1)
        output = _draw(self.output_len, rng, n, "output_len", 1)
        return RequestTable(arrival, prompt, output)


def as_workload(value: "Workload | RequestTrace | RequestTable") -> "Workload | RequestTrace":
    """A workload, a trace, or a table (replayed as a trace)."""
    if isinstance(value, (Workload, RequestTrace)):
        return value
    if isinstance(value, RequestTable):
        return RequestTrace(value)
    raise InvalidParameterError(
        f"workload must be a Workload(...), a RequestTrace or a RequestTable, got {value!r}")


def constant_table(n: int, gap_ms: float, prompt_len: int, output_len: int) -> RequestTable:
    """``n`` requests ``gap_ms`` apart (a deterministic workload, for tests and examples)."""
    return RequestTable(np.arange(n) * float(gap_ms), np.full(n, prompt_len), np.full(n, output_len))

