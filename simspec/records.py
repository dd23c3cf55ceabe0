"""Result records: frozen dataclasses that print, serialise and become tables.

Every number that comes from simulation carries its confidence interval as an
:class:`Estimate`.  ``to_dict()`` gives plain JSON-ready values; ``to_frame()``
gives a pandas DataFrame without pandas being a dependency of simspec (it is
imported only when asked for).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from .errors import OptionalDependencyError

__all__ = ["Estimate", "AlgorithmResult", "Comparison"]

_Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A mean with a confidence interval (``low``, ``high``) at ``level``.

    Exact values (closed forms) have ``low == mean == high`` and ``n = 0``.
    """

    mean: float
    low: float
    high: float
    stderr: float = 0.0
    n: int = 0
    level: float = 0.95

    @classmethod
    def exact(cls, value: float) -> "Estimate":
        v = float(value)
        return cls(v, v, v, 0.0, 0)

    @classmethod
    def from_samples(cls, x: np.ndarray) -> "Estimate":
        """Normal-approximation 95% interval of the mean of i.i.d. replications."""
        x = np.asarray(x, dtype=float).ravel()
        m = float(x.mean())
        se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
        return cls(m, m - _Z95 * se, m + _Z95 * se, se, int(x.size))

    @classmethod
    def ratio(cls, num: np.ndarray, den: np.ndarray) -> "Estimate":
        """``mean(num)/mean(den)`` for paired replications, delta-method interval.

        Pairing (common random numbers) makes the covariance term shrink the
        interval of a speedup far below that of either latency.
        """
        num = np.asarray(num, dtype=float).ravel()
        den = np.asarray(den, dtype=float).ravel()
        mx, my = num.mean(), den.mean()
        q = float(mx / my)
        n = num.size
        if n < 2:
            return cls(q, math.nan, math.nan, math.nan, n)
        resid = (num - q * den) / my
        se = float(resid.std(ddof=1) / math.sqrt(n))
        return cls(q, q - _Z95 * se, q + _Z95 * se, se, n)

    def scaled(self, factor: float) -> "Estimate":
        f = float(factor)
        lo, hi = sorted((self.low * f, self.high * f))
        return Estimate(self.mean * f, lo, hi, abs(self.stderr * f), self.n, self.level)

    def __format__(self, spec: str) -> str:
        spec = spec or ".4g"
        if self.n == 0 or math.isnan(self.stderr) or self.stderr <= 1e-12 * abs(self.mean):
            return format(self.mean, spec)
        return f"{format(self.mean, spec)} ± {format(_Z95 * self.stderr, '.2g')}"

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high, "stderr": self.stderr, "n": self.n}


def _plain(value: Any) -> Any:
    if isinstance(value, Estimate):
        return value.mean
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


@dataclass(frozen=True)
class AlgorithmResult:
    """Latency and cost of one algorithm on one scenario."""

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
    #: End-to-end latency of each Monte Carlo replication (empty for closed forms): pair two
    #: results drawn with the same seed, S and reps with ``Estimate.ratio``.
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


@dataclass(frozen=True)
class Comparison:
    """non-SI, SI and DSI on one scenario, with paired speedups.

    ``speedup`` maps ``si_vs_nonsi``, ``dsi_vs_si``, ``dsi_vs_nonsi`` and
    ``dsi_vs_baseline`` (baseline = the faster of SI and non-SI) to estimates.
    """

    scenario: Mapping[str, Any]
    nonsi: AlgorithmResult
    si: AlgorithmResult
    dsi: AlgorithmResult
    speedup: Mapping[str, Estimate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scenario": dict(self.scenario)}
        for name in ("nonsi", "si", "dsi"):
            out[name] = getattr(self, name).to_dict()
        out["speedup"] = {k: v.mean for k, v in self.speedup.items()}
        out["speedup_ci"] = {k: [v.low, v.high] for k, v in self.speedup.items() if v.n > 0}
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """One flat row per algorithm (what ``to_frame`` tabulates)."""
        return [getattr(self, name).to_dict(ci=False) for name in ("nonsi", "si", "dsi")]

    def to_frame(self):
        """The three algorithms as a pandas DataFrame (needs pandas installed)."""
        return to_frame(self.to_records())


def to_frame(records):
    """Turn a list of dicts (or records with ``to_dict``) into a pandas DataFrame."""
    try:
        import pandas as pd
    except ImportError:
        raise OptionalDependencyError(
            "to_frame() needs pandas, which simspec does not depend on; run `pip install pandas`"
        ) from None
    rows = [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in records]
    return pd.DataFrame(rows)
