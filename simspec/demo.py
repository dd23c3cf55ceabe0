"""The DSI paper's real-model table, run through simspec (the ``simspec demo`` job).

For each published model pair (:data:`simspec.reference.DSI_PAPER_TABLE`) two
simspec answers stand beside the published "DSI vs SI":

* *matched*: the paper's simulation protocol — lookahead ∈ {1, 5, 10} for both
  SI and DSI, at most 7 target servers (speculative tasks plus the non-SI chain,
  so that none waits), 50 tokens — by paired Monte Carlo (each replication's
  acceptance outcomes shared by SI and DSI), with a 95% interval;
* *best case*: closed forms, ``S → ∞``, SI at its best ``k ∈ 1..200`` and DSI at
  ``k = 1`` with as many servers as it needs.

Both assume i.i.d. acceptance at the published rate, constant latencies and
free communication — which is why the published numbers (from a thread-and-
``sleep`` simulator, ``models.md`` §7) may differ; the experiment
``experiments/dsi_heatmap`` explains the protocols.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import theory
from .latency import ConstantLatency
from .lookahead import StaticLookahead
from .montecarlo.dsi import dsi_run
from .montecarlo.si import si_run
from .records import Estimate
from .reference import DSI_PAPER_TABLE, PublishedPair

__all__ = ["TableRow", "dsi_paper_table", "format_table"]


@dataclass(frozen=True)
class TableRow:
    pair: PublishedPair
    matched_dsi_vs_si: Estimate
    matched_si_k: int
    matched_dsi_k: int
    matched_dsi_servers: int
    best_dsi_vs_si: float
    best_si_k: int
    best_dsi_servers: int

    def to_dict(self) -> dict:
        p = self.pair
        return {
            "target": p.target, "drafter": p.drafter, "dataset": p.dataset, "c": p.c, "acceptance": p.acceptance,
            "published_dsi_vs_si": p.dsi_vs_si,
            "matched_dsi_vs_si": self.matched_dsi_vs_si.mean,
            "matched_dsi_vs_si_ci": [self.matched_dsi_vs_si.low, self.matched_dsi_vs_si.high],
            "matched_si_lookahead": self.matched_si_k, "matched_dsi_lookahead": self.matched_dsi_k,
            "matched_dsi_servers": self.matched_dsi_servers,
            "best_dsi_vs_si": self.best_dsi_vs_si, "best_si_lookahead": self.best_si_k,
            "best_dsi_servers": self.best_dsi_servers,
        }


def dsi_paper_table(
    rng: int | np.random.Generator | None = 0,
    reps: int = 400,
    tokens: int = 50,
    lookaheads: tuple[int, ...] = (1, 5, 10),
    max_servers: int = 7,
) -> list[TableRow]:
    """One :class:`TableRow` per published pair (see the module docstring)."""
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    rows = []
    for pair in DSI_PAPER_TABLE:
        target, drafter = ConstantLatency(pair.target_ms), ConstantLatency(pair.drafter_ms)
        A = gen.random((reps, tokens)) < pair.acceptance
        si_t = {k: si_run(A, StaticLookahead(k), target, drafter)["decode_ms"] for k in lookaheads}
        feasible = [k for k in lookaheads if theory.dsi_servers_needed(pair.c, k) <= max_servers]
        dsi_t = {k: dsi_run(A, k, target, drafter)["decode_ms"] for k in feasible}
        k_si = min(si_t, key=lambda k: si_t[k].mean())
        k_dsi = min(dsi_t, key=lambda k: dsi_t[k].mean())
        k_best, si_best = theory.best_si_lookahead(pair.acceptance, pair.c, k_max=200)
        dsi_best = theory.dsi_latency_per_token(pair.acceptance, pair.c, 1)
        rows.append(
            TableRow(
                pair, Estimate.ratio(si_t[k_si], dsi_t[k_dsi]), k_si, k_dsi,
                int(theory.dsi_servers_needed(pair.c, k_dsi)),
                float(si_best / dsi_best), int(k_best), int(theory.dsi_servers_needed(pair.c, 1)),
            )
        )
    return rows


def format_table(rows: list[TableRow]) -> str:
    """A plain-text table, published vs simspec."""
    head = (
        f"{'target / drafter':<30} {'dataset':<10} {'c':>5} {'a':>5} | {'published':>9} | "
        f"{'matched (k,N<=7,S=50)':>24} {'k_SI':>4} {'k_DSI':>5} {'N':>2} | {'best case':>9} {'k_SI':>4} {'N':>3}"
    )
    lines = ["DSI vs SI: published (authors' thread simulator) vs simspec", head, "-" * len(head)]
    for r in rows:
        p = r.pair
        m = r.matched_dsi_vs_si
        lines.append(
            f"{p.target + ' / ' + p.drafter:<30} {p.dataset:<10} {p.c:5.3f} {p.acceptance:5.2f} | {p.dsi_vs_si:8.2f}x | "
            f"{m.mean:8.2f}x [{m.low:5.2f}, {m.high:5.2f}] {r.matched_si_k:>4} {r.matched_dsi_k:>5} "
            f"{r.matched_dsi_servers:>2} | {r.best_dsi_vs_si:8.2f}x {r.best_si_k:>4} {r.best_dsi_servers:>3}"
        )
    lines.append(
        "matched: paired Monte Carlo, i.i.d. acceptance, constant latencies, 95% CI; N = target servers incl. the "
        "non-SI chain.  best case: closed forms, S -> inf, SI best k<=200, DSI k=1 with N servers."
    )
    return "\n".join(lines)
