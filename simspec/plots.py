"""Figures.  Each function returns a matplotlib ``Figure``; nothing is shown or saved implicitly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import io

from .io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .heatmap import Heatmap

__all__ = ["heatmap_figure", "gantt_figure", "save_figure"]

_TITLES = {
    "si_vs_nonsi": "(a) non-SI / SI",
    "dsi_vs_si": "(b) SI / DSI",
    "dsi_vs_nonsi": "(c) non-SI / DSI",
    "dsi_vs_baseline": "(d) min(SI, non-SI) / DSI",
}


def heatmap_figure(hm: "Heatmap") -> "Figure":
    """The four-panel speedup heatmap (x: drafter/target latency ``c``, y: acceptance ``a``)."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 4, sharey=True)
    extent = (hm.c[0], hm.c[-1], hm.a[0], hm.a[-1])
    for ax, (name, title) in zip(axes, _TITLES.items()):
        z = hm.speedup[name]
        # log scale symmetric about 1 (white), capped so that one extreme cell does not wash out the rest
        lim = min(max(float(z.max()), 1.0 / float(z.min()), 1.05), 4.0)
        im = ax.imshow(z, origin="lower", aspect="auto", extent=extent, cmap="RdBu",
                       norm=LogNorm(vmin=1.0 / lim, vmax=lim), interpolation="nearest")
        ax.set_title(f"{title}\nmax {z.max():.2f}x, min {z.min():.2f}x", fontsize=9)
        ax.set_xlabel("drafter latency / target latency  c")
        cb = fig.colorbar(im, ax=ax, shrink=0.9, extend="both", label="speedup (blue > 1, log scale)")
        ticks = [t for t in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0) if 1.0 / lim <= t <= lim]
        cb.set_ticks(ticks, labels=[f"{t:g}x" for t in ticks])
        cb.minorticks_off()
    axes[0].set_ylabel("acceptance rate  a")
    fig.suptitle(f"Speedups, {hm.protocol} protocol — DSI: {hm.dsi_model}", fontsize=9)
    return fig


_KIND_COLOUR = {"draft": "#4C72B0", "verify": "#55A868", "chain": "#8172B2", "prefill": "#999999"}


def _intervals(events):
    """Pair start events with their end or cancel: ``(lane, kind, t0, t1, cancelled, positions)``."""
    open_: dict = {}
    out = []
    for e in events:
        kind, _, what = e["event"].partition("_")
        key = (e["lane"], kind, e.get("task"))
        if what == "start":
            open_[key] = (e["t"], e.get("positions"))
        elif what in ("end", "cancel") and key in open_:
            t0, pos = open_.pop(key)
            out.append((e["lane"], kind, t0, e["t"], what == "cancel", pos))
    return out


def gantt_figure(events, title: str = "", max_time: float | None = None) -> "Figure":
    """Drafter, non-SI chain and target servers over time, from a discrete-event run's event log.

    Bars: prefill (grey), drafting (blue), verification tasks (green), chain forwards (purple); hatched grey
    bars were cancelled (their work wasted).  Red lines mark rejected positions, the black line
    the last token.  ``max_time`` crops a long run to its start.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    bars = _intervals(events)
    if max_time is not None:
        bars = [b for b in bars if b[2] < max_time]
    order = {"prefill": -1, "drafter": 0, "chain": 1}
    lanes = sorted({b[0] for b in bars}, key=lambda l: (order.get(l, 2), int(l.split()[-1]) if l[-1].isdigit() else 0))
    row = {lane: i for i, lane in enumerate(lanes)}
    fig = Figure(figsize=(11, 0.45 * len(lanes) + 1.6), layout="constrained")
    ax = fig.subplots()
    for lane, kind, t0, t1, cancelled, pos in bars:
        colour = "#BBBBBB" if cancelled else _KIND_COLOUR.get(kind, "#DD8452")
        ax.broken_barh([(t0, max(t1 - t0, 1e-9))], (row[lane] - 0.38, 0.76), facecolors=colour,
                       edgecolor="white" if not cancelled else "#777777", hatch="///" if cancelled else None,
                       linewidth=0.4)
    for e in events:
        if max_time is not None and e["t"] > max_time:
            continue
        if e["event"] == "reject":
            ax.axvline(e["t"], color="#C44E52", linewidth=0.8, alpha=0.7)
        elif e["event"] == "done":
            ax.axvline(e["t"], color="black", linewidth=1.2)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.invert_yaxis()
    ax.set_xlabel("virtual time (ms)")
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=c, label=k) for k, c in _KIND_COLOUR.items()]
    handles += [Patch(facecolor="#BBBBBB", hatch="///", edgecolor="#777777", label="cancelled"),
                Patch(color="#C44E52", label="rejection")]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=8, frameon=False)
    ax.set_title(title or "discrete-event run", fontsize=10)
    return fig


def save_figure(fig: "Figure", path: str | Path, dpi: int = 110) -> Path:
    """Render ``fig`` to PNG (or the format of ``path``'s suffix) and write it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())
