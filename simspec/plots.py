"""Figures.  Each function returns a matplotlib ``Figure``; nothing is shown or saved implicitly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import io

from .io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .heatmap import Heatmap

__all__ = ["heatmap_figure", "save_figure"]

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


def save_figure(fig: "Figure", path: str | Path, dpi: int = 110) -> Path:
    """Render ``fig`` to PNG (or the format of ``path``'s suffix) and write it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())
