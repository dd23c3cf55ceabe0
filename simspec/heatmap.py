"""The DSI paper's four-panel speedup heatmap, under two protocols.

*paper* (Timor et al., Figure 1 of the workshop version, Figure 2 of ICLR
2025): ``c ∈ {0.01, …, 1}`` × ``a ∈ {0, 0.01, …, 1}``; SI picks the best
``k ∈ 1..200`` per cell; DSI runs ``k = 1`` with ``⌈1/c⌉`` servers for speculative tasks
(``⌈1/c⌉ + 1`` target instances with the chain's, the count :mod:`simspec.deployment` defines).
All cells are closed forms; DSI uses the exact epoch map, which at ``k = 1`` is
Prop. 1's ``a c + 1 − a`` exactly (``theory/dsi_prop1.md``), so the column is
both.

*repo* (the authors' ``dsi`` repository): ``c, a ∈ linspace(0, 1, 21)``
clipped to ``c ≥ 0.01``, ``0.01 ≤ a ≤ 0.99``; ``k ∈ 1..20``; the paper's 7 servers for
speculative tasks, i.e. :data:`~simspec.deployment.PAPER_SERVERS` ``= 8`` target instances with the
chain's, keeping only ``⌈1/(k c)⌉ + 1 ≤ 8`` (8463 configurations); ``S = 1000`` tokens, 5 repeats;
Monte Carlo.  SI is restricted to the same lookaheads and server filter as DSI,
as the repo did — the handicap ``docs/model.md`` §7 describes.  DSI uses simspec's
exact epoch map; ``dsi_vs_si_repo_model`` gives what the repo's own offline DSI
model (``theory/dsi_repo_model.md``) yields on the same outcomes.

Panels: (a) non-SI/SI, (b) SI/DSI, (c) non-SI/DSI, (d) min(SI, non-SI)/DSI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import theory
from .deployment import PAPER_SERVERS
from .io import write_csv, write_json
from .montecarlo.positions import epoch_histogram
from .montecarlo.sweep import dsi_sweep, si_sweep

__all__ = ["Heatmap", "paper_heatmap", "repo_heatmap", "heatmap", "SPEEDUP_COLUMNS"]

SPEEDUP_COLUMNS = ("si_vs_nonsi", "dsi_vs_si", "dsi_vs_nonsi", "dsi_vs_baseline")
Protocol = Literal["paper", "repo"]


@dataclass(frozen=True)
class Heatmap:
    """Speedups on a ``(a, c)`` grid; every array has shape ``(len(a), len(c))``.

    ``dsi_model`` says how the DSI latencies were computed and ``params`` holds the protocol's
    parameters; both go to the metadata file ``heatmap.json`` that :meth:`write` puts beside the
    (purely numeric) ``heatmap.csv``.
    """

    protocol: str
    c: np.ndarray
    a: np.ndarray
    speedup: dict[str, np.ndarray]
    si_lookahead: np.ndarray
    dsi_lookahead: np.ndarray
    dsi_servers: np.ndarray
    dsi_model: str
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> list[str]:
        """The CSV's columns, every one numeric."""
        return ["c", "a", *SPEEDUP_COLUMNS, "si_lookahead", "dsi_lookahead", "dsi_servers", *self.extra]

    def rows(self):
        """One row per ``(c, a)`` cell, in the order of :meth:`columns` (``c`` outer, ``a`` inner)."""
        for j, c in enumerate(self.c):
            for i, a in enumerate(self.a):
                yield [
                    float(c),
                    float(a),
                    *(float(self.speedup[name][i, j]) for name in SPEEDUP_COLUMNS),
                    int(self.si_lookahead[i, j]),
                    int(self.dsi_lookahead[i, j]),
                    int(self.dsi_servers[i, j]),
                    *(float(v[i, j]) for v in self.extra.values()),
                ]

    def metadata(self, command: str | None = None) -> dict[str, Any]:
        """What ``heatmap.json`` holds: protocol, DSI model, grid, parameters, version and command.

        ``command`` is what produced the heatmap (the CLI passes its command line); by default the
        Python call that recomputes it.
        """
        from . import __version__

        if command is None:
            args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
            command = f"simspec.heatmap.heatmap({self.protocol!r}{', ' + args if args else ''})"
        return {
            "protocol": self.protocol,
            "dsi_model": self.dsi_model,
            "grid": {"c": [float(x) for x in self.c], "a": [float(x) for x in self.a],
                     "cells": int(self.c.size * self.a.size), "order": "c outer, a inner"},
            "parameters": dict(self.params),
            "columns": self.columns(),
            "simspec_version": __version__,
            "command": command,
        }

    def write(
        self, out_dir: str | Path, png: bool = True, *, command: str | None = None,
        mark: tuple[float, float] | None = None,
    ) -> list[Path]:
        """Write ``heatmap.csv``, ``heatmap.json`` (and ``heatmap.png``) into ``out_dir``, atomically.

        The CSV is numeric, one row per cell; the JSON sidecar holds the metadata
        (:meth:`metadata`, with ``command``).  ``mark=(c, a)`` marks a point on the PNG.
        """
        out = Path(out_dir)
        paths = [write_csv(out / "heatmap.csv", self.columns(), self.rows()),
                 write_json(out / "heatmap.json", self.metadata(command))]
        if png:
            from .plots import heatmap_figure, save_figure

            paths.append(save_figure(heatmap_figure(self, mark=mark), out / "heatmap.png"))
        return paths

    def to_frame(self):
        """The cells as a pandas DataFrame, with the CSV's columns (needs pandas installed)."""
        from .records import to_frame

        return to_frame([dict(zip(self.columns(), row)) for row in self.rows()])


def _speedups(si: np.ndarray, dsi: np.ndarray, nonsi: np.ndarray | float = 1.0) -> dict[str, np.ndarray]:
    return {
        "si_vs_nonsi": nonsi / si,
        "dsi_vs_si": si / dsi,
        "dsi_vs_nonsi": nonsi / dsi,
        "dsi_vs_baseline": np.minimum(si, nonsi) / dsi,
    }


def paper_heatmap(k_max: int = 200) -> Heatmap:
    """The paper protocol, all closed forms (100 × 101 cells)."""
    c = np.arange(1, 101) / 100.0
    a = np.arange(0, 101) / 100.0
    aa, cc = np.meshgrid(a, c, indexing="ij")
    k_si, si = theory.best_si_lookahead(aa, cc, k_max=k_max)
    dsi = theory.dsi_latency_per_token(aa, cc, 1)
    servers = theory.dsi_servers_needed(cc, 1)  # target instances, the chain's included (simspec.deployment)
    return Heatmap(
        "paper", c, a, _speedups(si, dsi), k_si, np.ones_like(k_si), servers,
        "exact epoch map, k=1 (= Prop. 1); servers = ceil(1/c) + 1 target instances (the paper's ceil(1/c) "
        "plus the chain's own)",
        params={"k_max": k_max},
    )


def repo_heatmap(
    rng: int | np.random.Generator | None = 0,
    reps: int = 5,
    tokens: int = 1000,
    servers: int = PAPER_SERVERS,
    k_max: int = 20,
    points: int = 21,
) -> Heatmap:
    """The repo protocol by Monte Carlo (one acceptance draw per ``a``, shared by every ``(c, k)``).

    ``servers`` counts target instances, the chain's included (:mod:`simspec.deployment`): the
    paper's 7 servers for speculative tasks are :data:`~simspec.deployment.PAPER_SERVERS` ``= 8``.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    grid = np.linspace(0, 1, points)
    c = np.clip(grid, 0.01, None)
    a = np.clip(grid, 0.01, 0.99)
    ks = np.arange(1, k_max + 1)
    A = gen.random((a.size, reps, tokens)) < a[:, None, None]
    A = A.reshape(a.size * reps, tokens)
    rounds, drafts = si_sweep(A, ks)  # (rows, k)
    si_t = drafts[:, :, None] * c[None, None, :] + rounds[:, :, None]  # (rows, k, c), target TPOTs
    dsi_t = dsi_sweep(A, ks, c)
    hist = epoch_histogram(A)[:, 1:].astype(float)
    r = np.arange(1, tokens + 1)
    repo_table = np.minimum(-(-r[None, None, :] // ks[:, None, None]) * ks[:, None, None] * c[None, :, None] + 1.0, r)
    repo_t = np.einsum("nr,kcr->nkc", hist, repo_table, optimize=True)

    def per_a(x: np.ndarray) -> np.ndarray:  # mean over repeats -> (a, k, c)
        return x.reshape(a.size, reps, ks.size, c.size).mean(axis=1)

    si_m, dsi_m, repo_m = per_a(si_t), per_a(dsi_t), per_a(repo_t)
    valid = theory.dsi_servers_needed(c[None, :], ks[:, None]) <= servers  # (k, c), the chain's server included
    big = np.where(valid[None], 0.0, np.inf)
    k_si_idx = np.argmin(si_m + big, axis=1)  # (a, c)
    k_dsi_idx = np.argmin(dsi_m + big, axis=1)
    take = lambda x, idx: np.take_along_axis(x, idx[:, None, :], axis=1)[:, 0, :]
    si_best, dsi_best = take(si_m, k_si_idx), take(dsi_m, k_dsi_idx)
    repo_best = (repo_m + big).min(axis=1)
    nonsi = float(tokens)
    k_dsi = ks[k_dsi_idx]
    return Heatmap(
        "repo", c, a, _speedups(si_best, dsi_best, nonsi), ks[k_si_idx], k_dsi,
        theory.dsi_servers_needed(c[None, :], k_dsi),
        f"exact epoch map, Monte Carlo S={tokens} x {reps} repeats, k<={k_max} with ceil(1/(kc)) + 1 <= {servers} "
        "target instances (the chain's included)",
        {"dsi_vs_si_repo_model": si_best / repo_best},
        {"rng": rng if isinstance(rng, int) or rng is None else "a numpy Generator", "reps": reps,
         "tokens": tokens, "servers": servers, "k_max": k_max, "points": points},
    )


def heatmap(protocol: Protocol = "paper", **kwargs) -> Heatmap:
    """The heatmap of ``protocol`` (``"paper"`` or ``"repo"``)."""
    if protocol == "paper":
        return paper_heatmap(**kwargs)
    if protocol == "repo":
        return repo_heatmap(**kwargs)
    from .errors import InvalidParameterError

    raise InvalidParameterError(f"protocol must be 'paper' or 'repo', got {protocol!r}")
