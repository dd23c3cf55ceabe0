"""The two questions of serving under load, each as one call with a table and a figure.

* :func:`load_curve` — SI's (and DSI's) speedup over non-SI as the request rate grows, and
  the rate at which it crosses 1 (:attr:`LoadCurve.crossover`);
* :func:`best_k_by_batch` — SI's throughput for each lookahead at each batch size (a closed
  batch: every request arrives at once), and the best ``k`` per batch.

Both call :func:`simspec.serving.serve`, so every point carries its interval over replications.

>>> from simspec import AffineLatency, ConstantLatency, IIDAcceptance
>>> target = AffineLatency(tpot_ms=30.0, per_extra_token_ms=1.0, ttft_ms=60.0)
>>> drafter = ConstantLatency(tpot_ms=3.0, ttft_ms=6.0)
>>> curve = load_curve([0.5, 5.0, 20.0, 40.0], target, drafter, IIDAcceptance(0.8), prompt_len=128,
...                    output_len=128, requests=100, lookahead=4, replications=2, rng=0)
>>> [round(x, 2) for x in curve.speedup("si")], round(curve.crossover("si"), 1)
([2.09, 1.14, 1.02, 0.98], 26.4)
>>> table = best_k_by_batch([1, 32], [1, 2, 4], target, drafter, IIDAcceptance(0.8), prompt_len=128,
...                         output_len=128, replications=1, rng=0)
>>> table.best_k()
{1: 4, 32: 1}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .._checks import int_at_least, positive
from ..errors import InvalidParameterError
from ..records import Estimate, TableRecord, format_number, to_frame
from .batching import Batching
from .serve import _NAMES, ServingResult, serve
from .workload import PoissonArrivals, Workload

__all__ = ["load_curve", "LoadCurve", "best_k_by_batch", "BestKTable"]


def _crossing(x: Sequence[float], y: Sequence[float]) -> float:
    """The first ``x`` where ``y`` falls to 1, linear in ``log x`` between points; ``nan`` if it never does."""
    for i, (xi, yi) in enumerate(zip(x, y)):
        if yi <= 1.0:
            if i == 0:
                return float(xi)
            x0, y0 = x[i - 1], y[i - 1]
            t = (y0 - 1.0) / (y0 - yi)
            return float(math.exp(math.log(x0) + t * (math.log(xi) - math.log(x0))))
    return math.nan


@dataclass(frozen=True, eq=False)
class LoadCurve(TableRecord):
    """Serving results at each request rate (``results[i]`` at ``rates[i]``)."""

    rates: tuple[float, ...]
    results: tuple[ServingResult, ...] = field(repr=False)

    def speedup(self, algorithm: str = "si", metric: str = "") -> list[float]:
        """``algorithm``'s speedup over non-SI at each rate: mean latency, or ``metric`` ``"tpot"``/``"throughput"``."""
        key = f"{algorithm}_vs_nonsi" + (f"_{metric}" if metric else "")
        return [r.speedup[key].mean for r in self.results]

    def estimates(self, algorithm: str = "si", metric: str = "") -> list[Estimate]:
        key = f"{algorithm}_vs_nonsi" + (f"_{metric}" if metric else "")
        return [r.speedup[key] for r in self.results]

    def crossover(self, algorithm: str = "si", metric: str = "") -> float:
        """The request rate at which the speedup falls to 1 (interpolated in log rate); ``nan`` if it never does."""
        return _crossing(self.rates, self.speedup(algorithm, metric))

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(a for a in self.results[0].metrics if a != "nonsi")

    def to_records(self) -> list[dict[str, Any]]:
        rows = []
        for rate, res in zip(self.rates, self.results):
            for row in res.to_records():
                rows.append({"rate": rate, **row})
        return rows

    def to_frame(self):
        return to_frame(self.to_records())

    def _table(self):
        head = f"load curve: {self.results[0].scenario.get('batching', '')}; speedup over non-SI per request rate"
        headers = []
        for a in self.algorithms:
            headers += [f"{_NAMES[a]} latency", f"{_NAMES[a]} TPOT", f"{_NAMES[a]} throughput"]
        headers.append("non-SI batch")
        rows = []
        for rate, res in zip(self.rates, self.results):
            vals: list[Any] = []
            for a in self.algorithms:
                vals += [res.speedup[f"{a}_vs_nonsi"], res.speedup[f"{a}_vs_nonsi_tpot"],
                         res.speedup[f"{a}_vs_nonsi_throughput"]]
            vals.append(res.metrics["nonsi"]["mean_batch"])
            rows.append((f"{format_number(rate)} req/s", vals))
        notes = []
        for a in self.algorithms:
            for metric, label in (("", "mean latency"), ("tpot", "median TPOT")):
                x = self.crossover(a, metric)
                notes.append(f"{_NAMES[a]} {label}: " + (f"stops paying at {format_number(x, 3)} req/s"
                                                          if not math.isnan(x) else "pays at every rate tried"))
        return head, headers, rows, notes

    def figure(self, ax=None):
        """Speedup over non-SI against the request rate (log axis), with intervals and the 1x line."""
        from ..plots import ALGORITHM_COLOURS, _axes_for

        fig, (ax,) = _axes_for(ax, 1, (5.5, 3.6))
        for a in self.algorithms:
            for metric, style in (("", "-o"), ("tpot", "--s")):
                est = self.estimates(a, metric)
                y = np.array([e.mean for e in est])
                err = np.array([[e.mean - e.low for e in est], [e.high - e.mean for e in est]])
                ax.errorbar(self.rates, y, yerr=np.nan_to_num(err), fmt=style,
                            color=ALGORITHM_COLOURS[a],
                            label=f"{_NAMES[a]}, {'mean latency' if not metric else 'median TPOT'}", capsize=2)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("request rate (requests/s)")
        ax.set_ylabel("speedup over non-SI (x)")
        ax.legend(fontsize=8)
        return fig


def _workload(rate, prompt_len, output_len, requests):
    return Workload(PoissonArrivals(rate), prompt_len=prompt_len, output_len=output_len, requests=requests)


def load_curve(rates: Sequence[float], target, drafter, acceptance, *, prompt_len=128, output_len=128,
               requests: int = 200, **serve_kwargs) -> LoadCurve:
    """:func:`serve` at each Poisson request rate in ``rates`` (increasing); ``serve_kwargs`` go to every call.

    The same ``rng`` seeds every rate, so the rates share their outcome streams.
    """
    rs = [positive("rate", r, "requests per second") for r in rates]
    if not rs or any(b <= a for a, b in zip(rs, rs[1:])):
        raise InvalidParameterError(f"rates must be increasing request rates, got {list(rates)!r}")
    results = tuple(serve(_workload(r, prompt_len, output_len, requests), target, drafter, acceptance,
                          **serve_kwargs) for r in rs)
    return LoadCurve(tuple(rs), results)


@dataclass(frozen=True, eq=False)
class BestKTable(TableRecord):
    """SI's throughput (tokens/s) for each lookahead ``ks[j]`` at each batch size ``batches[i]``, and non-SI's."""

    batches: tuple[int, ...]
    ks: tuple[int, ...]
    si: Mapping[tuple[int, int], Estimate]
    nonsi: Mapping[int, Estimate]

    def best_k(self) -> dict[int, int]:
        """The lookahead with the highest SI throughput at each batch size (the smaller ``k`` on ties)."""
        return {b: max(self.ks, key=lambda k: (self.si[(b, k)].mean, -k)) for b in self.batches}

    def to_records(self) -> list[dict[str, Any]]:
        rows = []
        for b in self.batches:
            for k in self.ks:
                e = self.si[(b, k)]
                rows.append({"batch": b, "k": k, "si_tok_s": e.mean, "si_tok_s_ci_low": e.low,
                             "si_tok_s_ci_high": e.high, "nonsi_tok_s": self.nonsi[b].mean,
                             "speedup": e.mean / self.nonsi[b].mean})
        return rows

    def to_frame(self):
        return to_frame(self.to_records())

    def _table(self):
        head = "SI throughput (tokens/s) per lookahead and batch size (closed batch: every request arrives at once)"
        headers = [f"k = {k}" for k in self.ks] + ["non-SI", "best k"]
        best = self.best_k()
        rows = [(f"batch {b}", [self.si[(b, k)] for k in self.ks] + [self.nonsi[b], best[b]]) for b in self.batches]
        return head, headers, rows, []

    def figure(self, ax=None):
        """SI's throughput over non-SI's against ``k``, one line per batch size."""
        from ..plots import _axes_for

        fig, (ax,) = _axes_for(ax, 1, (5.5, 3.6))
        for b in self.batches:
            ax.plot(self.ks, [self.si[(b, k)].mean / self.nonsi[b].mean for k in self.ks], "-o", label=f"batch {b}")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xlabel("lookahead k (drafts per round)")
        ax.set_ylabel("SI throughput / non-SI throughput (x)")
        ax.legend(fontsize=8)
        return fig


class _AtOnce:
    """Every request arrives at time 0: a closed batch."""

    rate = math.inf

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.zeros(n)


def best_k_by_batch(batches: Sequence[int], ks: Sequence[int], target, drafter, acceptance, *, prompt_len=128,
                    output_len=128, waves: int = 2, batching: Batching | None = None, **serve_kwargs) -> BestKTable:
    """SI's throughput for every ``k`` in ``ks`` at every batch size in ``batches`` (``waves × batch`` requests,
    all arriving at once, so the batch stays full); ``batching`` sets everything but ``max_batch``."""
    bs = [int_at_least("batch size", b, 1) for b in batches]
    kk = [int_at_least("lookahead", k, 1) for k in ks]
    if not bs or not kk:
        raise InvalidParameterError("best_k_by_batch needs at least one batch size and one lookahead")
    base = batching if batching is not None else Batching()
    from dataclasses import replace

    waves = int_at_least("waves", waves, 1)
    si, nonsi = {}, {}
    for b in bs:
        # a closed batch: every request at time 0 (lengths drawn per replication when they are distributions)
        table = Workload(_AtOnce(), prompt_len, output_len, waves * b)
        cfg = replace(base, max_batch=b)
        for k in kk:
            res = serve(table, target, drafter, acceptance, lookahead=k, batching=cfg, **serve_kwargs)
            si[(b, k)] = res.metrics["si"]["throughput_tok_s"]
            nonsi[b] = res.metrics["nonsi"]["throughput_tok_s"]
    return BestKTable(tuple(bs), tuple(kk), si, nonsi)

