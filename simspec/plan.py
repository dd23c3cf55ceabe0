"""How many GPUs for my pair? SI and DSI over target servers ``1..N``, the knee and the Pareto front.

For each number of target instances ``N`` (the chain's included, as
:mod:`simspec.deployment` defines), DSI runs the lookahead the planner
(:func:`simspec.planner.best_lookahead`) picks on that deployment; SI uses one
target instance whatever ``N`` is.  Each row reports latency per token and
GPU-seconds per token (target and drafter busy time, wasted work included).

* the **knee** is the fewest servers whose DSI latency is within ``knee_tolerance``
  (default 1%) of the best DSI latency at any ``N ≤ max_servers``: more servers
  buy almost nothing;
* the **Pareto front** holds the options (SI, and DSI at each ``N``) that no
  other option beats on both latency and GPU-seconds.

>>> from simspec import Scenario
>>> from simspec.plan import plan
>>> p = plan(Scenario.from_ms(30.0, 3.0, 0.8), max_servers=12)
>>> p.knee, [r.servers for r in p.rows][:3]
(11, [1, 2, 3])
>>> round(p.rows[-1].dsi_latency_per_token_ms, 3), p.rows[-1].dsi_lookahead
(8.4, 1)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._checks import int_at_least
from .errors import InvalidParameterError, UnsupportedScenarioError
from .planner import Objective, best_lookahead, closed_form_applies
from .records import TableRecord, format_number, to_frame
from .scenario import Scenario

__all__ = ["PlanRow", "PlanResult", "plan", "plan_figure"]


@dataclass(frozen=True)
class PlanRow:
    """SI and DSI with ``servers`` target instances (DSI's fields are None where no lookahead fits)."""

    servers: int
    si_lookahead: int
    si_latency_per_token_ms: float
    si_gpu_seconds_per_token: float
    dsi_lookahead: int | None
    dsi_servers_used: int | None
    dsi_latency_per_token_ms: float | None
    dsi_gpu_seconds_per_token: float | None
    dsi_vs_si: float | None
    note: str = ""


@dataclass(frozen=True)
class PlanResult(TableRecord):
    """Rows over servers ``1..max_servers``, the knee and the Pareto front (see the module docstring)."""

    scenario: dict[str, Any]
    objective: str
    method: str
    rows: tuple[PlanRow, ...]
    knee: int | None
    pareto: tuple[str, ...]
    knee_tolerance: float = 0.01
    nonsi_latency_per_token_ms: float = field(default=float("nan"))

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": dict(self.scenario), "objective": self.objective, "method": self.method,
                "knee": self.knee, "knee_tolerance": self.knee_tolerance, "pareto": list(self.pareto),
                "nonsi_latency_per_token_ms": self.nonsi_latency_per_token_ms,
                "rows": [asdict(r) for r in self.rows]}

    def to_frame(self):
        """One row per server count, with the scenario's columns (needs pandas)."""
        return to_frame([{**asdict(r), "objective": self.objective, "method": self.method,
                          **{"scenario_" + k: v for k, v in self.scenario.items()}} for r in self.rows])

    def _table(self):
        sc = self.scenario
        head = (f"plan: target {sc['target_tpot_ms']:g} ms/token, drafter {sc['drafter_tpot_ms']:g} ms/token "
                f"(c = {sc['c']:.4g}), acceptance {sc['acceptance']}, objective {self.objective}, "
                f"method {self.method}; non-SI {format_number(self.nonsi_latency_per_token_ms)} ms/token")
        headers = ["SI k", "SI ms/token", "SI GPU-s/token", "DSI k", "DSI ms/token", "DSI GPU-s/token", "DSI vs SI"]
        rows = []
        for r in self.rows:
            mark = " <- knee" if r.servers == self.knee else ""
            rows.append((f"{r.servers} server{'s' if r.servers > 1 else ''}{mark}",
                         [r.si_lookahead, r.si_latency_per_token_ms, r.si_gpu_seconds_per_token, r.dsi_lookahead,
                          r.dsi_latency_per_token_ms, r.dsi_gpu_seconds_per_token,
                          None if r.dsi_vs_si is None else f"{r.dsi_vs_si:.3g}x"]))
        notes = [f"knee: {self.knee} target servers (DSI within {self.knee_tolerance:.0%} of its best latency at "
                 f"any N <= {self.rows[-1].servers})" if self.knee else "knee: none (DSI fits on no server count)",
                 "Pareto front (latency vs GPU-seconds): " + ", ".join(self.pareto),
                 "servers = target instances, the non-SI chain's included; SI uses one"]
        notes += sorted({r.note for r in self.rows if r.note})
        return head, headers, rows, notes

    def figure(self, ax=None):
        return plan_figure(self, ax)


def plan(
    scenario: Scenario,
    max_servers: int = 16,
    *,
    objective: Objective = "latency",
    method: str = "auto",
    knee_tolerance: float = 0.01,
    rng: int | np.random.Generator | None = 0,
) -> PlanResult:
    """SI and DSI on ``scenario`` with ``1..max_servers`` target instances, each at its best lookahead.

    ``method``: ``"theory"`` (i.i.d. acceptance), ``"montecarlo"`` (any
    acceptance process; candidates scored on one pilot draw with ``rng``), or
    ``"auto"``.  The scenario's own ``servers`` is ignored; its chain setting
    is kept.
    """
    s = scenario
    max_servers = int_at_least("max_servers", max_servers, 1)
    if max_servers > 4096:
        raise InvalidParameterError(f"max_servers={max_servers} is more than any deployment plans for; give <= 4096")
    if not (0 <= knee_tolerance < 1):
        raise InvalidParameterError(f"knee_tolerance must be in [0, 1), got {knee_tolerance!r}")
    why_not = closed_form_applies(s)
    if why_not is not None:
        raise UnsupportedScenarioError(f"{why_not}; plan uses the closed forms or the Monte Carlo — simulate "
                                       "candidate deployments with simspec.simulate instead")
    if method == "auto":
        method = "theory" if s.acceptance.iid_rate is not None else "montecarlo"
    accepted = None
    if method == "montecarlo":
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        accepted = s.acceptance.sample(gen, s.tokens, 32)
    elif method != "theory":
        raise InvalidParameterError(f"method must be 'auto', 'theory' or 'montecarlo', got {method!r}")
    si = best_lookahead(s.replace(servers=None), "si", method=method, objective=objective, accepted=accepted)
    t1 = s.target.tpot_ms
    rows = []
    for n in range(1, max_servers + 1):
        sn = s.replace(servers=n)
        try:
            d = best_lookahead(sn, "dsi", method=method, objective=objective, accepted=accepted)
        except UnsupportedScenarioError:
            rows.append(PlanRow(n, si.k, si.latency_per_token_ms, si.gpu_seconds_per_token, None, None, None, None,
                                None, "-: no lookahead <= k_max keeps DSI's tasks from waiting (simulate to see "
                                      "the queueing)"))
            continue
        note = "1 server: the chain takes it, DSI is non-SI" if d.method == "none" else ""
        rows.append(PlanRow(n, si.k, si.latency_per_token_ms, si.gpu_seconds_per_token, d.k, d.servers,
                            d.latency_per_token_ms, d.gpu_seconds_per_token,
                            si.latency_per_token_ms / d.latency_per_token_ms, note))
    lat = np.array([np.nan if r.dsi_latency_per_token_ms is None else r.dsi_latency_per_token_ms for r in rows])
    knee = None
    if np.isfinite(lat).any():
        best = np.nanmin(lat)
        knee = int(rows[int(np.flatnonzero(lat <= best * (1 + knee_tolerance))[0])].servers)
    options = [("SI (1 server)", si.latency_per_token_ms, si.gpu_seconds_per_token)]
    seen = set()
    for r in rows:  # a configuration once, at the servers it uses (more servers than it needs change nothing)
        if r.dsi_lookahead is not None and r.note == "" and (r.dsi_lookahead, r.dsi_servers_used) not in seen:
            seen.add((r.dsi_lookahead, r.dsi_servers_used))
            options.append((f"DSI {r.dsi_servers_used} servers (k={r.dsi_lookahead})", r.dsi_latency_per_token_ms,
                            r.dsi_gpu_seconds_per_token))
    pareto = tuple(name for name, l, g in options
                   if not any((l2 <= l and g2 <= g) and (l2 < l or g2 < g) for _, l2, g2 in options))
    desc = s.describe() | {"servers": None}
    return PlanResult(desc, objective, method, tuple(rows), knee, pareto, knee_tolerance, float(t1))


def plan_figure(result: PlanResult, ax=None):
    """Two panels: latency per token vs servers, and latency vs GPU cost (the Pareto front); returns the Figure.

    ``ax``: two ``Axes`` of your own to draw the panels into (the figure they belong to is returned).
    Non-SI, SI and DSI have their colours of every figure (:data:`simspec.plots.ALGORITHM_COLOURS`).
    """
    from .plots import _PAPER_WIDTH, ALGORITHM_COLOURS, _axes_for

    fig, (ax1, ax2) = _axes_for(ax, 2, (_PAPER_WIDTH, 3.4))
    n = np.array([r.servers for r in result.rows])
    dsi = np.array([np.nan if r.dsi_latency_per_token_ms is None else r.dsi_latency_per_token_ms for r in result.rows])
    dsi_g = np.array([np.nan if r.dsi_gpu_seconds_per_token is None else r.dsi_gpu_seconds_per_token
                      for r in result.rows])
    si = result.rows[0].si_latency_per_token_ms
    ax1.axhline(result.nonsi_latency_per_token_ms, color=ALGORITHM_COLOURS["nonsi"], ls=":", label="non-SI")
    ax1.axhline(si, color=ALGORITHM_COLOURS["si"], ls="--", label=f"SI (k={result.rows[0].si_lookahead}, 1 server)")
    ax1.plot(n, dsi, "o-", color=ALGORITHM_COLOURS["dsi"], label="DSI (best k per N)")
    if result.knee:
        ax1.axvline(result.knee, color=ALGORITHM_COLOURS["dsi"], alpha=0.3, lw=6, label=f"knee: {result.knee} servers")
    ax1.set_xlabel("target servers N, the chain's included (count)")
    ax1.set_ylabel("latency per token (ms)")
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=7)
    ax2.plot(dsi_g * 1000, dsi, "o-", color=ALGORITHM_COLOURS["dsi"], label="DSI, N = 1..max")
    for r in result.rows:
        if r.dsi_latency_per_token_ms is not None and (r.servers in (1, result.knee) or r.servers % 4 == 0):
            ax2.annotate(f"N={r.servers}", (r.dsi_gpu_seconds_per_token * 1000, r.dsi_latency_per_token_ms),
                         fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax2.plot([result.rows[0].si_gpu_seconds_per_token * 1000], [si], "s", color=ALGORITHM_COLOURS["si"], label="SI")
    ax2.set_xlabel("GPU cost per token (GPU-ms)")
    if ax is not None:  # side by side in a figure of ours, the panels share the latency axis
        ax2.set_ylabel("latency per token (ms)")
    front = [r for r in result.rows if r.dsi_lookahead is not None and
             f"DSI {r.dsi_servers_used} servers (k={r.dsi_lookahead})" in result.pareto]
    ax2.plot([r.dsi_gpu_seconds_per_token * 1000 for r in front], [r.dsi_latency_per_token_ms for r in front],
             "o", ms=12, mfc="none", mec="k", label="Pareto front")
    if "SI (1 server)" in result.pareto:
        ax2.plot([result.rows[0].si_gpu_seconds_per_token * 1000], [si], "o", ms=12, mfc="none", mec="k")
    ax2.set_title("latency against GPU cost", fontsize=9)
    ax2.legend(fontsize=7)
    sc = result.scenario
    ax1.set_title("latency against target servers", fontsize=9)
    if ax is None:
        fig.suptitle(f"c = {sc['c']:.3g}, acceptance {sc['acceptance_mean']:.3g}: how many target servers?",
                     fontsize=10)
    return fig
