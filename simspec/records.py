"""Result records: one family for the closed forms, the Monte Carlo and the discrete-event engine.

Every number that comes from simulation carries its confidence interval as an
:class:`Estimate`, computed over the **independent units** of the run: one per
replication for a random acceptance process, one per recorded trace when traces
are replayed (replaying the same trace twice is not new evidence).

* :class:`AlgorithmResult` — one algorithm by closed form or Monte Carlo;
* :class:`Comparison` — non-SI, SI and DSI on one scenario, with paired speedups (and any extra algorithms);
* :class:`RunRecord` — one discrete-event run; :class:`SimulationResult` — its replications.

The records share field names (``latency_per_token_ms``, ``gpu_seconds_per_token``,
``lookahead``, ``target_servers``, ``replications``, ``independent_units``),
print as the table the command line prints (``str``, and ``_repr_html_`` in a
notebook), and turn into plain data: ``to_dict()`` (JSON-ready) and
``to_frame()`` (a pandas DataFrame, without pandas being a dependency; each row
keeps its interval columns and the scenario's columns, so frames of many runs
concatenate).

>>> e = Estimate.from_samples([11.2, 11.3, 11.25, 11.29], unit="ms")
>>> print(e)
11.26 ± 0.045 ms
>>> print(Estimate.exact(8.4, unit="ms"))
8.4 ms
"""

from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import OptionalDependencyError

__all__ = ["Estimate", "AlgorithmResult", "Comparison", "RunRecord", "SimulationResult", "TableRecord",
           "format_number", "render_table", "render_html", "to_frame"]

_Z95 = 1.959963984540054


def format_number(x: float, digits: int = 4) -> str:
    """Plain digits for people: 30000 → ``30,000``, 12.15, 8.4, 0.01215 (no exponents in the usual range)."""
    if x is None:
        return "-"
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    ax = abs(x)
    if ax >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    if ax == 0 or ax >= 1e-4:
        return f"{x:.{digits}g}" if ax < 1 else f"{float(f'{x:.{digits}g}'):g}"
    return f"{x:.{digits - 1}e}"


def _unit_means(x: np.ndarray, units) -> np.ndarray:
    """Each row's means within each independent unit (the rows themselves when every value is its own unit)."""
    if units is None:
        return x
    units = np.asarray(units).ravel()
    if units.size != x.shape[1]:
        raise ValueError(f"units must have one label per value: {units.size} labels for {x.shape[1]} values")
    labels, inv = np.unique(units, return_inverse=True)
    if labels.size == x.shape[1]:
        return x
    counts = np.bincount(inv)
    return np.stack([np.bincount(inv, weights=row) / counts for row in x])


@dataclass(frozen=True)
class Estimate:
    """A mean with a confidence interval (``low``, ``high``) at ``level``, over ``n`` independent units.

    Exact values (closed forms) have ``low == mean == high`` and ``n = 0``.
    ``unit`` is what the number measures in (``"ms"``, ``"x"``, ``""``).
    """

    mean: float
    low: float
    high: float
    stderr: float = 0.0
    n: int = 0
    level: float = 0.95
    unit: str = ""

    @classmethod
    def exact(cls, value: float, unit: str = "") -> "Estimate":
        v = float(value)
        return cls(v, v, v, 0.0, 0, unit=unit)

    @classmethod
    def from_samples(cls, x, units=None, unit: str = "") -> "Estimate":
        """Normal-approximation 95% interval of the mean, over independent units.

        ``units`` labels each value with its independent unit (a trace, a
        prompt); values sharing a label are averaged first, so the interval
        counts units, not values.  ``None``: every value is independent.

        >>> Estimate.from_samples([1.0, 1.0, 3.0, 3.0], units=[0, 0, 1, 1]).n   # two traces, not four runs
        2
        """
        return cls.from_rows(np.asarray(x, dtype=float).ravel()[None, :], units, [unit])[0]

    @classmethod
    def from_rows(cls, rows, units=None, unit_names=None) -> list["Estimate"]:
        """:meth:`from_samples` of every row of a 2-D array at once (one numpy pass, the same numbers).

        >>> [str(e) for e in Estimate.from_rows([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], unit_names=["ms", ""])]
        ['2 ± 1.1 ms', '5']
        """
        x = _unit_means(np.asarray(rows, dtype=float), units)
        n = x.shape[1]
        m = x.sum(axis=1) / n
        if n > 1:
            dev = x - m[:, None]
            se = np.sqrt(np.einsum("ij,ij->i", dev, dev) / (n - 1) / n)
        else:
            se = np.full(m.shape, math.nan)
        names = unit_names if unit_names is not None else [""] * len(m)
        lo, hi = m - _Z95 * se, m + _Z95 * se
        return [cls._fast(mi, li, hi_, si, n, u) for mi, li, hi_, si, u in
                zip(m.tolist(), lo.tolist(), hi.tolist(), se.tolist(), names)]

    @classmethod
    def _fast(cls, mean: float, low: float, high: float, stderr: float, n: int, unit: str) -> "Estimate":
        """An Estimate from values already checked (plain floats): skips the frozen dataclass's per-field
        ``object.__setattr__``, which costs more than the statistics for small runs."""
        obj = object.__new__(cls)
        obj.__dict__.update(mean=mean, low=low, high=high, stderr=stderr, n=n, level=0.95, unit=unit)
        return obj

    @classmethod
    def ratio_rows(cls, num, den, units=None, unit: str = "x") -> list["Estimate"]:
        """:meth:`ratio` of every row pair of two 2-D arrays at once (one numpy pass, the same numbers)."""
        num = _unit_means(np.asarray(num, dtype=float), units)
        den = _unit_means(np.asarray(den, dtype=float), units)
        n = num.shape[1]
        mx, my = num.sum(axis=1) / n, den.sum(axis=1) / n
        q = mx / my
        if n < 2:
            return [cls(float(qi), math.nan, math.nan, math.nan, n, unit=unit) for qi in q]
        resid = (num - q[:, None] * den) / my[:, None]
        dev = resid - resid.sum(axis=1, keepdims=True) / n
        se = np.sqrt(np.einsum("ij,ij->i", dev, dev) / (n - 1) / n)
        lo, hi = q - _Z95 * se, q + _Z95 * se
        return [cls._fast(qi, li, hi_, si, n, unit) for qi, li, hi_, si in
                zip(q.tolist(), lo.tolist(), hi.tolist(), se.tolist())]

    @classmethod
    def ratio(cls, num, den, units=None, unit: str = "x") -> "Estimate":
        """``mean(num)/mean(den)`` for paired replications, delta-method interval over independent units.

        Pairing (common random numbers) makes the covariance term shrink the
        interval of a speedup far below that of either latency.
        """
        num = np.asarray(num, dtype=float).ravel()[None, :]
        return cls.ratio_rows(num, np.asarray(den, dtype=float).ravel()[None, :], units, unit)[0]

    @classmethod
    def proportion(cls, p_hat: float, n: int, unit: str = "") -> "Estimate":
        """A rate in [0, 1] over ``n`` independent units, with a Wilson 95% interval (never past 0 or 1).

        ``p_hat`` may be the mean of ``n`` independent values in [0, 1] (not only
        of 0/1 outcomes): their variance is at most ``p(1 − p)``, so the
        interval is conservative.

        >>> e = Estimate.proportion(39 / 40, 40)
        >>> e.high <= 1.0, round(e.low, 3)
        (True, 0.871)
        >>> print(e)                      # an interval that is not symmetric prints its ends
        0.975 [0.8712, 0.9956]
        """
        from .stats import wilson_interval

        lo, hi = wilson_interval(p_hat, n)
        se = math.sqrt(p_hat * (1 - p_hat) / n) if n > 0 else math.nan
        return cls(float(p_hat), float(lo), float(hi), se, int(n), unit=unit)

    @property
    def exact_value(self) -> bool:
        return self.n == 0 or math.isnan(self.stderr) or self.stderr <= 1e-12 * abs(self.mean)

    def scaled(self, factor: float, unit: str | None = None) -> "Estimate":
        f = float(factor)
        lo, hi = sorted((self.low * f, self.high * f))
        return Estimate(self.mean * f, lo, hi, abs(self.stderr * f), self.n, self.level,
                        self.unit if unit is None else unit)

    def half_width(self) -> float:
        return max(self.high - self.mean, self.mean - self.low)

    def __str__(self) -> str:
        up, down = self.high - self.mean, self.mean - self.low
        if self.exact_value:
            text = format_number(self.mean)
        elif abs(up - down) > 0.1 * max(up, down):  # an asymmetric interval (a rate near 0 or 1): show its ends
            text = f"{format_number(self.mean)} [{format_number(self.low)}, {format_number(self.high)}]"
        else:
            text = f"{format_number(self.mean)} ± {format_number(self.half_width(), 2)}"
        if self.unit == "x":
            return text + "x"
        return f"{text} {self.unit}" if self.unit else text

    def __format__(self, spec: str) -> str:
        if not spec:
            return str(self)
        if self.exact_value:
            return format(self.mean, spec)
        return f"{format(self.mean, spec)} ± {format(self.half_width(), '.2g')}"

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high, "stderr": self.stderr, "n": self.n}


def _plain(value: Any) -> Any:
    if isinstance(value, Estimate):
        return value.mean
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _cell(value: Any) -> str:
    if isinstance(value, Estimate):
        return str(Estimate(value.mean, value.low, value.high, value.stderr, value.n))  # units are in the label
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return format_number(float(value))
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[Any]]], notes: Sequence[str] = ()) -> str:
    """The plain-text table every record prints (labels left, one right-aligned column per header)."""
    cells = [(label, [_cell(v) for v in values]) for label, values in rows]
    label_w = max([26] + [len(label) + 2 for label, _ in cells])
    col_w = max([12] + [len(h) + 2 for h in headers] + [len(c) + 2 for _, cs in cells for c in cs])
    lines = []
    if any(headers):
        lines.append(" " * label_w + "".join(f"{h:>{col_w}}" for h in headers))
    for label, cs in cells:
        lines.append(f"{label:<{label_w}}" + "".join(f"{c:>{col_w}}" for c in cs))
    lines.extend(notes)
    return "\n".join(lines)


def render_html(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[Any]]], notes: Sequence[str] = ()) -> str:
    """The same table as HTML (what Jupyter shows)."""
    esc = html.escape
    out = ["<table>"]
    if any(headers):
        out.append("<thead><tr><th></th>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>")
    out.append("<tbody>")
    for label, values in rows:
        out.append(f"<tr><th style='text-align:left'>{esc(label)}</th>"
                   + "".join(f"<td style='text-align:right'>{esc(_cell(v))}</td>" for v in values) + "</tr>")
    out.append("</tbody></table>")
    out.extend(f"<p>{esc(n)}</p>" for n in notes)
    return "".join(out)


class TableRecord:
    """Mix-in: a record that prints as a headed table (``str``) and as HTML in a notebook.

    Subclasses define ``_table()`` returning ``(head, headers, rows, notes)``.
    """

    def _table(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:
        head, headers, rows, notes = self._table()
        return head + "\n" + render_table(headers, rows, notes)

    def _repr_html_(self) -> str:
        head, headers, rows, notes = self._table()
        return f"<p>{html.escape(head)}</p>" + render_html(headers, rows, notes)


def _flat_row(values: Mapping[str, Any], scenario: Mapping[str, Any]) -> dict[str, Any]:
    """One frame row: plain values, ``<name>_ci_low/_ci_high`` for every estimate, ``scenario_<key>`` columns."""
    row: dict[str, Any] = {}
    for name, v in values.items():
        row[name] = _plain(v)
        if isinstance(v, Estimate):
            row[name + "_ci_low"] = v.low
            row[name + "_ci_high"] = v.high
    for key, v in scenario.items():
        row["scenario_" + key] = v
    return row


_ALGORITHM_NAMES = {"nonsi": "non-SI", "si": "SI", "dsi": "DSI", "tree": "tree", "pearl": "PEARL",
                    "pipeline": "pipeline"}

#: (label, attribute) of the rows every algorithm table prints, in order.
_ROWS = (
    ("latency per token (ms)", "latency_per_token_ms"),
    ("end-to-end latency (ms)", "latency_ms"),
    ("lookahead", "lookahead"),
    ("target servers", "target_servers"),
    ("target forwards", "target_forwards"),
    ("  of which wasted", "target_forwards_wasted"),
    ("drafter forwards", "drafter_forwards"),
    ("GPU-seconds per token", "gpu_seconds_per_token"),
)


@dataclass(frozen=True)
class AlgorithmResult:
    """Latency and cost of one algorithm on one scenario (closed form or Monte Carlo).

    ``replications``: Monte Carlo replications (``None`` for a closed form);
    ``independent_units``: how many of them are independent (the ``n`` of every
    interval: replications, or distinct traces when traces are replayed).
    """

    algorithm: str
    method: str
    latency_per_token_ms: Estimate
    latency_ms: Estimate
    ttft_ms: float
    tokens: int
    lookahead: int | str | None
    target_servers: int
    target_forwards: Estimate
    target_forwards_wasted: Estimate
    drafter_forwards: Estimate
    gpu_seconds: Estimate
    gpu_seconds_per_token: Estimate
    notes: str = ""
    replications: int | None = None
    independent_units: int | None = None
    #: End-to-end latency of each Monte Carlo replication (empty for closed forms): pair two
    #: results drawn with the same seed, S and replications with ``Estimate.ratio``.
    per_run_latency_ms: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)

    def to_dict(self, ci: bool = True) -> dict[str, Any]:
        """Plain values; with ``ci`` each estimate also gets ``<name>_ci`` = [low, high]."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "per_run_latency_ms":
                continue
            v = getattr(self, f.name)
            out[f.name] = _plain(v)
            if ci and isinstance(v, Estimate) and v.n > 0:
                out[f.name + "_ci"] = [v.low, v.high]
        return out

    def _values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "per_run_latency_ms"}

    def __str__(self) -> str:
        return render_table([_ALGORITHM_NAMES.get(self.algorithm, self.algorithm)],
                            [(label, [getattr(self, attr)]) for label, attr in _ROWS], _interval_notes([self]))

    def _repr_html_(self) -> str:
        return render_html([_ALGORITHM_NAMES.get(self.algorithm, self.algorithm)],
                           [(label, [getattr(self, attr)]) for label, attr in _ROWS], _interval_notes([self]))


def _interval_notes(results: Sequence[Any]) -> list[str]:
    r = results[0]
    if r.replications is None:
        return ["(closed forms, S -> infinity; DSI assumes no verification waits for a server)"]
    units = r.independent_units
    if units is not None and units < r.replications:
        return [f"({r.replications} replications of {units} independent traces: ± is the 95% CI over the "
                f"{units} traces, not the replications)"]
    return [f"({r.replications} replications; ± is the 95% CI half-width)"]


_SPEEDUP_LABELS = {"si_vs_nonsi": "SI vs non-SI", "dsi_vs_si": "DSI vs SI", "dsi_vs_nonsi": "DSI vs non-SI",
                   "dsi_vs_baseline": "DSI vs faster of SI, non-SI"}


@dataclass(frozen=True)
class Comparison(TableRecord):
    """non-SI, SI and DSI on one scenario, with paired speedups, and any extra algorithms.

    ``speedup`` maps ``si_vs_nonsi``, ``dsi_vs_si``, ``dsi_vs_nonsi`` and
    ``dsi_vs_baseline`` (baseline = the faster of SI and non-SI) to estimates.
    ``extras`` maps the extra algorithms ``compare(extra=...)`` ran (``"tree"``,
    ``"pearl"``, ``"pipeline"``) to their results, printed as more columns;
    each adds ``<name>_vs_nonsi`` and ``<name>_vs_si`` to ``speedup``.
    """

    scenario: Mapping[str, Any]
    nonsi: AlgorithmResult
    si: AlgorithmResult
    dsi: AlgorithmResult
    speedup: Mapping[str, Estimate] = field(default_factory=dict)
    extras: Mapping[str, AlgorithmResult] = field(default_factory=dict)

    @property
    def results(self) -> tuple[AlgorithmResult, AlgorithmResult, AlgorithmResult]:
        return (self.nonsi, self.si, self.dsi)

    @property
    def all_results(self) -> tuple[AlgorithmResult, ...]:
        """non-SI, SI, DSI and the extra algorithms, in the table's column order."""
        return (self.nonsi, self.si, self.dsi, *self.extras.values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scenario": dict(self.scenario)}
        for name in ("nonsi", "si", "dsi"):
            out[name] = getattr(self, name).to_dict()
        for name, r in self.extras.items():
            out[name] = r.to_dict()
        out["speedup"] = {k: v.mean for k, v in self.speedup.items()}
        out["speedup_ci"] = {k: [v.low, v.high] for k, v in self.speedup.items() if v.n > 0}
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """One flat row per algorithm, with interval columns, the speedups over non-SI and the scenario.

        Rows of extra algorithms also hold ``speedup_vs_si``.
        """
        rows = []
        for r in self.all_results:
            values = r._values()
            if r.algorithm == "nonsi":
                values["speedup_vs_nonsi"] = Estimate.exact(1.0, "x")
            else:
                values["speedup_vs_nonsi"] = self.speedup.get(f"{r.algorithm}_vs_nonsi")
            if r.algorithm in self.extras:
                values["speedup_vs_si"] = self.speedup.get(f"{r.algorithm}_vs_si")
            rows.append(_flat_row(values, self.scenario))
        return rows

    def to_frame(self):
        """The algorithms as a pandas DataFrame, one row each (needs pandas installed)."""
        return to_frame(self.to_records())

    def _table(self):
        sc = self.scenario
        head = (f"scenario: target {sc['target_tpot_ms']:g} ms/token, drafter {sc['drafter_tpot_ms']:g} ms/token "
                f"(c = {sc['c']:.4g}), acceptance {sc['acceptance']}, S = {sc['tokens']} tokens, "
                f"method {sc.get('method', self.si.method)}")
        results = self.all_results
        rows = [(label, [getattr(r, attr) for r in results]) for label, attr in _ROWS]
        labels = dict(_SPEEDUP_LABELS)
        for name in self.extras:
            shown = _ALGORITHM_NAMES.get(name, name)
            labels[f"{name}_vs_nonsi"] = f"{shown} vs non-SI"
            labels[f"{name}_vs_si"] = f"{shown} vs SI"
        notes = ["speedups:"] + [f"  {label:<28} {_speedup_text(self.speedup[key])}"
                                 for key, label in labels.items() if key in self.speedup]
        if any(r.notes for r in self.extras.values()):
            notes += ["notes:"] + [f"  {_ALGORITHM_NAMES.get(name, name)}: {r.notes}"
                                   for name, r in self.extras.items() if r.notes]
        notes += _interval_notes(self.results)
        return head, [_ALGORITHM_NAMES.get(r.algorithm, r.algorithm) for r in results], rows, notes


def _speedup_text(e: Estimate) -> str:
    return str(Estimate(e.mean, e.low, e.high, e.stderr, e.n, unit="x"))


@dataclass(frozen=True)
class RunRecord:
    """What one discrete-event run measured (times in ms).

    ``verifications``: target forwards whose result was used (a verification or
    chain forward that confirmed at least one position); ``tokens_per_verification``
    is ``tokens`` over that.  ``queueing_delay_ms``: total time tasks waited for
    a server before starting; ``tasks_queued``: tasks that found every server busy
    (0: the run is the same as with unlimited servers).  Busy times include each
    model's prefill.  ``unit``: the independent unit the run's outcomes came
    from (its replication, or the trace it replayed).
    """

    algorithm: str
    latency_ms: float
    ttft_ms: float
    decode_ms: float
    tokens: int
    lookahead: int | str | None
    servers: int | None
    verifications: int
    target_forwards: int
    target_forwards_wasted: int
    drafter_forwards: int
    target_busy_ms: float
    drafter_busy_ms: float
    peak_servers_busy: int
    mean_servers_busy: float
    queueing_delay_ms: float
    rejections: int
    tasks_queued: int = 0
    unit: int | None = None

    @property
    def latency_per_token_ms(self) -> float:
        return self.decode_ms / self.tokens

    @property
    def gpu_seconds(self) -> float:
        return (self.target_busy_ms + self.drafter_busy_ms) / 1000.0

    @property
    def gpu_seconds_per_token(self) -> float:
        return self.gpu_seconds / self.tokens

    @property
    def tokens_per_verification(self) -> float:
        return self.tokens / self.verifications if self.verifications else math.nan

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(latency_per_token_ms=self.latency_per_token_ms, gpu_seconds=self.gpu_seconds,
                 gpu_seconds_per_token=self.gpu_seconds_per_token,
                 tokens_per_verification=self.tokens_per_verification)
        return d


#: Metrics a SimulationResult summarises over its replications, with their units.
SIMULATION_METRICS = {
    "latency_ms": "ms", "latency_per_token_ms": "ms", "ttft_ms": "ms", "target_forwards": "",
    "target_forwards_wasted": "", "drafter_forwards": "", "gpu_seconds": "GPU-s", "gpu_seconds_per_token": "GPU-s",
    "peak_servers_busy": "", "tasks_queued": "", "mean_servers_busy": "", "queueing_delay_ms": "ms",
    "tokens_per_verification": "",
}

_SIM_ROWS = (
    ("latency per token (ms)", "latency_per_token_ms"), ("end-to-end latency (ms)", "latency_ms"),
    ("time to first token (ms)", "ttft_ms"), ("tokens per verification", "tokens_per_verification"),
    ("target forwards", "target_forwards"), ("  of which wasted", "target_forwards_wasted"),
    ("drafter forwards", "drafter_forwards"), ("GPU-seconds", "gpu_seconds"),
    ("GPU-seconds per token", "gpu_seconds_per_token"),
    ("peak servers busy", "peak_servers_busy"), ("mean servers busy", "mean_servers_busy"),
    ("tasks that queued", "tasks_queued"), ("queueing delay (ms)", "queueing_delay_ms"),
)


def _metric_property(name: str, unit: str):
    def getter(self: "SimulationResult") -> Estimate:
        return self.estimate(name)

    getter.__name__ = name
    getter.__doc__ = f"``{name}``: mean over replications with a 95% interval over the independent units ({unit or 'count'})."
    return cached_property(getter)


@dataclass(frozen=True)
class SimulationResult(TableRecord):
    """Replications of one algorithm on one scenario (discrete-event), with 95% intervals over independent units.

    Each metric of :data:`SIMULATION_METRICS` is an attribute holding an
    :class:`Estimate`; ``lookahead``, ``target_servers`` (the deployment's
    target instances, the chain's included; for unlimited servers, the no-wait
    count DSI uses at most), ``replications`` and ``independent_units`` are
    plain values, as in :class:`AlgorithmResult`.
    """

    algorithm: str
    scenario: dict[str, Any]
    runs: tuple[RunRecord, ...]
    options: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    target_servers: int = 1
    notes: str = ""

    @property
    def method(self) -> str:
        return "des"

    @property
    def replications(self) -> int:
        return len(self.runs)

    @property
    def independent_units(self) -> int:
        units = [r.unit for r in self.runs]
        if any(u is None for u in units):
            return len(self.runs)
        return len(set(units))

    @property
    def tokens(self) -> int:
        return self.runs[0].tokens

    @property
    def lookahead(self) -> int | str | None:
        return self.runs[0].lookahead

    @property
    def per_run_latency_ms(self) -> np.ndarray:
        """End-to-end latency of each replication: pair two results of the same seed with ``Estimate.ratio``."""
        return np.array([r.latency_ms for r in self.runs])

    @property
    def units(self) -> np.ndarray | None:
        """The independent unit of each run (None: every run is independent)."""
        units = [r.unit for r in self.runs]
        return None if any(u is None for u in units) else np.array(units)

    def estimate(self, name: str) -> Estimate:
        """The mean of metric ``name`` over the replications, with its interval over independent units."""
        if name not in SIMULATION_METRICS:
            raise AttributeError(f"no metric {name!r}; choose from {', '.join(SIMULATION_METRICS)}")
        x = np.array([getattr(r, name) for r in self.runs], dtype=float)
        unit = SIMULATION_METRICS[name]
        if x.size == 1:
            return Estimate.exact(float(x[0]), unit)
        return Estimate.from_samples(x, self.units, unit)

    def to_dict(self) -> dict[str, Any]:
        """Means, intervals (``<name>_ci``) and the scenario; JSON-ready."""
        out: dict[str, Any] = {"algorithm": self.algorithm, "method": "des", "replications": self.replications,
                               "independent_units": self.independent_units}
        for name in SIMULATION_METRICS:
            e = self.estimate(name)
            out[name] = e.mean
            if e.n > 1:
                out[name + "_ci"] = [e.low, e.high]
        out["tokens"] = self.tokens
        out["lookahead"] = self.lookahead
        out["target_servers"] = self.target_servers
        out["servers"] = self.runs[0].servers
        out["notes"] = self.notes
        out["options"] = dict(self.options)
        out["scenario"] = dict(self.scenario)
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """One plain row per replication (``to_frame(per_run=True)`` tabulates them)."""
        return [r.to_dict() for r in self.runs]

    def to_row(self) -> dict[str, Any]:
        """One summary row with interval columns and the scenario's (what ``to_frame()`` tabulates)."""
        values: dict[str, Any] = {"algorithm": self.algorithm, "method": "des", "replications": self.replications,
                                  "independent_units": self.independent_units, "tokens": self.tokens,
                                  "lookahead": self.lookahead, "target_servers": self.target_servers,
                                  "notes": self.notes}
        values.update({name: self.estimate(name) for name in SIMULATION_METRICS})
        return _flat_row(values, self.scenario)

    def to_frame(self, per_run: bool = False):
        """A pandas DataFrame: one summary row (concatenates with other results), or one row per run."""
        return to_frame(self.to_records() if per_run else [self.to_row()])

    def _table(self):
        sc = self.scenario
        name = _ALGORITHM_NAMES.get(self.algorithm, self.algorithm)
        setup = "" if self.algorithm == "nonsi" else f", lookahead {self.lookahead}"
        if self.algorithm == "dsi":
            setup += (f", servers {self.runs[0].servers or 'unlimited'}, queue {self.options.get('queue', 'fifo')}"
                      f"{'' if self.options.get('chain', True) else ', no chain'}")
        head = (f"{name} on simulated servers: target {sc['target_tpot_ms']:g} ms, drafter "
                f"{sc['drafter_tpot_ms']:g} ms (c = {sc['c']:.4g}), acceptance {sc['acceptance']}, "
                f"S = {sc['tokens']}{setup}")
        rows = [(label, [self.estimate(attr)]) for label, attr in _SIM_ROWS]
        if self.replications == 1:
            notes = ["(one replication: no confidence interval; use more replications)"]
        else:
            notes = _interval_notes([self])
        if self.notes:
            notes.insert(0, f"note: {self.notes}")
        return head, [""], rows, notes


for _name, _unit in SIMULATION_METRICS.items():
    _prop = _metric_property(_name, _unit)
    setattr(SimulationResult, _name, _prop)
    _prop.__set_name__(SimulationResult, _name)
del _name, _unit, _prop


def to_frame(records):
    """Turn a list of dicts (or records with ``to_dict``) into a pandas DataFrame."""
    try:
        import pandas as pd
    except ImportError:
        raise OptionalDependencyError(
            "to_frame() needs pandas, which simspec does not depend on; run `pip install pandas` "
            "(or `pip install simspec[frames]`)"
        ) from None
    rows = [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in records]
    return pd.DataFrame(rows)
