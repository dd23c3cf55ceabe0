"""Figures.  Each function returns a matplotlib ``Figure``; nothing is shown or saved implicitly.

Each figure function also takes ``ax`` (an ``Axes``, or one per panel) to draw into a figure of
your own; it then returns that figure.

One style in every figure: an algorithm has one colour (:data:`ALGORITHM_COLOURS`: non-SI grey,
SI blue, DSI vermillion, tree SI green, PEARL purple, the pipeline orange — the Okabe–Ito palette,
safe for colour-blind readers) and so has a
lookahead policy (:data:`POLICY_COLOURS`) and a token-level verifier (:data:`VERIFIER_COLOURS`); every axis names its quantity and its unit in
parentheses; and a figure is at most 7 inches wide (a paper's text width) with no text under 7 pt,
so that it stays readable printed at a paper's text width.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .heatmap import Heatmap

__all__ = ["heatmap_figure", "gantt_figure", "ranking_figure", "save_figure", "ALGORITHM_COLOURS", "POLICY_COLOURS",
           "VERIFIER_COLOURS", "policy_colour", "shade"]

#: One colour per algorithm, in every figure (colour-blind safe, Okabe–Ito).
ALGORITHM_COLOURS = {"nonsi": "#7f7f7f", "si": "#0072B2", "dsi": "#D55E00", "tree": "#009E73", "pearl": "#CC79A7",
                     "pipeline": "#E69F00"}

# the widest a figure is drawn by default, in inches: a two-column paper's text width, so that
# a figure printed across the page keeps its text at the size it was set in (7 pt or more)
_PAPER_WIDTH = 7.0

#: One colour per lookahead policy, by the start of its name (``policy.name``).
POLICY_COLOURS = {"static": "#7f7f7f", "heuristic": "#E69F00", "confidence": "#0072B2",
                  "adaptive": "#56B4E9", "disco": "#009E73", "specdec++": "#CC79A7", "oracle": "#000000"}


#: One colour per token-level verifier (``simspec.sampling``), in every figure that compares them.
VERIFIER_COLOURS = {"std": "#000000", "tli": "#009E73", "union": "#E69F00", "slem": "#56B4E9", "slrs": "#CC79A7",
                    "rdk": "#D55E00"}


def policy_colour(name: str) -> str:
    """The colour of a policy, from its name (``"confidence θ=0.4 k_max=20"`` → the confidence stop's).

    >>> policy_colour("disco θ=0.6 k_max=20") == POLICY_COLOURS["disco"]
    True
    """
    for prefix, colour in POLICY_COLOURS.items():
        if name.startswith(prefix):
            return colour
    return "#999999"


def shade(colour: str, level: float) -> str:
    """``colour`` mixed with white (``level`` 0: the colour itself, 1: white): one hue, several lines.

    Figures that draw one algorithm or verifier several times (a line per drafter cost, per kernel) keep its
    colour and vary the shade.

    >>> shade("#0072B2", 0.0), shade("#000000", 0.5)
    ('#0072b2', '#808080')
    """
    from matplotlib.colors import to_hex, to_rgb

    return to_hex(tuple(x + (1.0 - x) * level for x in to_rgb(colour)))


def ranking_figure(ranking, ax: "Axes | None" = None) -> "Figure":
    """The gain of each policy over the best static lookahead, with its 95% interval (a :class:`PolicyRanking`).

    >>> from simspec import Scenario, MarkovAcceptance
    >>> from simspec.policy_ranking import rank_policies
    >>> r = rank_policies(Scenario.from_ms(30.0, 3.0, MarkovAcceptance.from_mean(0.8, 0.9), tokens=100),
    ...                   replications=20, rng=0)
    >>> fig = ranking_figure(r)
    >>> len(fig.axes[0].patches) == len(r.rows), fig.axes[0].get_xlabel()
    (True, 'gain over the best static k (x)')
    """
    fig, (axis,) = _axes_for(ax, 1, (_PAPER_WIDTH, 0.35 * len(ranking.rows) + 1.2))
    rows = list(ranking.rows)[::-1]  # fastest at the top
    names = [r.policy for r in rows]
    gains = [r.gain for r in rows]
    axis.barh(range(len(rows)), [g.mean - 1.0 for g in gains], left=1.0,
              xerr=[[g.mean - g.low for g in gains], [g.high - g.mean for g in gains]],
              color=[policy_colour(n) for n in names], error_kw={"elinewidth": 1, "capsize": 2})
    axis.set_yticks(range(len(rows)), names, fontsize=8)
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_xlabel("gain over the best static k (x)")
    n = rows[0].gain.n if rows else 0
    axis.set_title(f"lookahead policies on common outcomes ({n} independent units)", fontsize=9)
    return fig

_TITLES = {
    "si_vs_nonsi": "(a) non-SI / SI",
    "dsi_vs_si": "(b) SI / DSI",
    "dsi_vs_nonsi": "(c) non-SI / DSI",
    "dsi_vs_baseline": "(d) min(SI, non-SI) / DSI",
}
_CAP = 4.0  # colour scales stop at 4x (and 1/4x) so that one extreme cell does not wash out the rest
#: each panel's two sides: (who is faster below 1x, who is faster above 1x)
_SIDES = {
    "si_vs_nonsi": ("nonsi", "si"),
    "dsi_vs_si": ("si", "dsi"),
    "dsi_vs_nonsi": ("nonsi", "dsi"),
    "dsi_vs_baseline": ("baseline", "dsi"),
}
_NAMES = {"nonsi": "non-SI", "si": "SI", "dsi": "DSI", "baseline": "SI or non-SI"}
_BASELINE_COLOUR = "#009E73"  # "the faster of SI and non-SI" (Okabe–Ito bluish green), no algorithm's own colour


def _side_colour(side: str) -> str:
    return _BASELINE_COLOUR if side == "baseline" else ALGORITHM_COLOURS[side]


def _speedup_colormap(panel: str):
    """The colour map of a heatmap panel: the colour of the algorithm that is faster, white at 1x.

    >>> from matplotlib.colors import to_hex
    >>> cmap = _speedup_colormap("dsi_vs_si")
    >>> [to_hex(cmap(x)) for x in (0.0, 0.5, 1.0)] == [ALGORITHM_COLOURS["si"].lower(), "#ffffff", "#d55e00"]
    True
    """
    from matplotlib.colors import LinearSegmentedColormap

    low, high = _SIDES[panel]
    # an odd number of levels puts one exactly on 1x: white
    return LinearSegmentedColormap.from_list(f"simspec_{panel}", [_side_colour(low), "#ffffff", _side_colour(high)],
                                             N=255)


def _axes_for(ax, n: int, figsize, cols: int | None = None):
    """``(figure, [axes])``: ``n`` new panels, ``cols`` to a row (default all side by side), or the caller's."""
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout="constrained")
        cols = n if cols is None else cols
        rows = -(-n // cols)
        grid = list(fig.subplots(rows, cols, sharex=rows > 1, sharey=True, squeeze=False).ravel())
        for extra in grid[n:]:
            fig.delaxes(extra)
        return fig, grid[:n]
    axes = [ax] if hasattr(ax, "plot") else list(ax)
    if len(axes) != n:
        from .errors import InvalidParameterError

        raise InvalidParameterError(f"ax must hold one Axes per panel ({n}), got {len(axes)}")
    return axes[0].figure, axes


def _label_spot(cs, hm) -> tuple[float, float]:
    """Where to label a contour: its point nearest the middle of the grid."""
    import numpy as np

    pts = np.concatenate([p.vertices for p in cs.get_paths() if len(p.vertices)])
    mid = np.array([(hm.c[0] + hm.c[-1]) / 2, (hm.a[0] + hm.a[-1]) / 2])
    scale = np.array([hm.c[-1] - hm.c[0] or 1.0, hm.a[-1] - hm.a[0] or 1.0])
    best = pts[np.argmin((((pts - mid) / scale) ** 2).sum(axis=1))]
    return float(best[0]), float(best[1])


def heatmap_figure(
    hm: "Heatmap",
    *,
    mark: tuple[float, float] | None = None,
    panels: Sequence[str] | None = None,
    ax: "Axes | Sequence[Axes] | None" = None,
) -> "Figure":
    """The speedup heatmap: x the drafter/target latency ratio ``c``, y the acceptance ``a``.

    ``panels`` picks which of the four speedups to draw (default all, in the paper's order, two
    to a row); ``ax`` is one ``Axes`` per panel.  Each panel has its own colour scale,
    logarithmic and centred on 1 (white), in the colour of the algorithm that is faster
    (:data:`ALGORITHM_COLOURS`; panel (d) below 1: green, the faster of SI and non-SI), capped at
    4x; the figure says so.  A black line marks where the speedup crosses 1x; a panel that never
    drops below 1 says so in its title.  ``mark=(c, a)`` draws a star at your own scenario,
    labelled with the nearest cell's speedup.
    """
    import numpy as np
    from matplotlib.colors import LogNorm

    names = list(panels) if panels is not None else list(_TITLES)
    unknown = [n for n in names if n not in _TITLES]
    if unknown:
        from .errors import InvalidParameterError

        raise InvalidParameterError(f"unknown panel(s) {unknown}; choose from {list(_TITLES)}")
    n = len(names)
    cols = 2 if n > 2 else n
    fig, axes = _axes_for(ax, n, (_PAPER_WIDTH if n > 1 else _PAPER_WIDTH / 2 + 0.3, 3.0 * -(-n // cols) + 1.0),
                          cols=cols)
    for axis, name in zip(axes, names):
        z = hm.speedup[name]
        lo, hi = float(z.min()), float(z.max())
        lim = min(max(hi, 1.0 / lo, 1.05), _CAP)
        im = axis.pcolormesh(hm.c, hm.a, z, shading="nearest", cmap=_speedup_colormap(name),
                             norm=LogNorm(vmin=1.0 / lim, vmax=lim), rasterized=True)
        crosses = lo < 1.0 - 1e-9 and hi > 1.0 + 1e-9
        if crosses:
            cs = axis.contour(hm.c, hm.a, z, levels=[1.0], colors="black", linewidths=1.0)
            axis.clabel(cs, fmt={1.0: "1x"}, fontsize=8, inline=True, manual=[_label_spot(cs, hm)])
        note = "" if crosses else (" (never below 1x)" if lo >= 1.0 - 1e-9 else " (never above 1x)")
        axis.set_title(f"{_TITLES[name]}\nmax {hi:.2f}x, min {lo:.2f}x{note}", fontsize=9)
        if ax is not None or axis in axes[-cols:]:  # the bottom row of a grid of panels
            axis.set_xlabel("c = drafter / target latency (ms/ms)")
        if ax is not None or axes.index(axis) % cols == 0:
            axis.set_ylabel("acceptance rate a (per draft token)")
        cb = fig.colorbar(im, ax=axis, shrink=0.9, extend="both" if lim >= _CAP else "neither")
        low, high = _SIDES[name]
        cb.set_label(f"speedup (x): {_NAMES[high]} faster above 1x", fontsize=7)
        ticks = [t for t in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0) if 1.0 / lim <= t <= lim]
        cb.set_ticks(ticks, labels=[f"{t:g}x" for t in ticks])
        cb.minorticks_off()
        if mark is not None:
            mc, ma = float(mark[0]), float(mark[1])
            axis.plot([mc], [ma], marker="*", markersize=13, color="gold", markeredgecolor="black",
                      linestyle="none", zorder=5)
            inside = hm.c[0] <= mc <= hm.c[-1] and hm.a[0] <= ma <= hm.a[-1]
            if inside:
                j, i = int(np.abs(hm.c - mc).argmin()), int(np.abs(hm.a - ma).argmin())
                label = f"{z[i, j]:.2f}x"
            else:
                label = "outside the grid"
            right = mc > 0.5 * (hm.c[0] + hm.c[-1])
            axis.annotate(label, (mc, ma), xytext=(-8 if right else 8, -12), textcoords="offset points",
                          ha="right" if right else "left", fontsize=8, zorder=6,
                          bbox=dict(boxstyle="round,pad=0.2", facecolor="white", alpha=0.85, linewidth=0))
    if ax is None:
        import textwrap

        lines = [*textwrap.wrap(f"Speedups, {hm.protocol} protocol — DSI: {hm.dsi_model}", 110),
                 "Each panel has its own colour scale (log, white = 1x, capped at 4x) in the colour of the faster",
                 "algorithm: non-SI grey, SI blue, DSI vermillion; green: the faster of SI and non-SI; black line: 1x"]
        if mark is not None:
            lines.append(f"star: c = {mark[0]:g}, a = {mark[1]:g} (the value of the nearest grid cell)")
        fig.suptitle("\n".join(lines), fontsize=9)
    return fig


# the Gantt chart's activities, in the package's palette (Okabe–Ito): a chain forward is non-SI decoding, so it
# has non-SI's colour; no activity borrows SI's or DSI's
_KIND_COLOUR = {"prefill": "#F0E442", "draft": "#56B4E9", "verify": "#009E73", "chain": ALGORITHM_COLOURS["nonsi"]}
_KIND_LABEL = {"prefill": "prefill", "draft": "drafting", "verify": "verification", "chain": "chain forward"}
_WAIT_COLOUR = "#E69F00"
_WAIT_EDGE = "#8A5A00"
_CANCEL_COLOUR, _CANCEL_EDGE = "#DDDDDD", "#777777"
_REJECT_COLOUR = "#CC79A7"
#: a longer run is cut to its first this many verifications (or non-SI forwards) unless a window is given
AUTO_ROUNDS = 40


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


def _waits(events):
    """Queue waits ``(t_queued, t_left, started)``: until the task starts, or until it is dropped.

    A queued task that never starts was dropped at the next rejection (or at the end of the run),
    when every task in flight is cancelled; the log records only the rejection.
    """
    queued: dict = {}
    out = []
    for e in events:
        ev = e["event"]
        if ev == "verify_queued":
            queued[e.get("task")] = e["t"]
        elif ev == "verify_start" and e.get("task") in queued:
            out.append((queued.pop(e["task"]), e["t"], True))
        elif ev in ("reject", "done") and queued:
            out.extend((t0, e["t"], False) for t0 in queued.values())
            queued.clear()
    return out


def _slots(intervals):
    """Greedy lanes for overlapping intervals: a slot index for each, and the number of slots."""
    ends: list[float] = []
    slots = []
    for t0, t1, *_ in intervals:
        for s, end in enumerate(ends):
            if end <= t0:
                ends[s] = t1
                slots.append(s)
                break
        else:
            ends.append(t1)
            slots.append(len(ends) - 1)
    return slots, len(ends)


def _lane_key(lane: str):
    order = {"prefill": -1, "drafter": 0, "chain": 1}
    return order.get(lane, 2), int(lane.split()[-1]) if lane[-1].isdigit() else 0


def _auto_window(events, rounds: int):
    """``(end, shown, total, noun)`` when the run has more than ``rounds`` verifications, else ``None``."""
    starts, noun = [e for e in events if e["event"] == "verify_start"], "verifications"
    if not starts:  # non-SI: its forwards are the rounds
        starts, noun = [e for e in events if e["event"] == "chain_start"], "forwards"
    if len(starts) <= rounds:
        return None
    cut = starts[rounds]["t"]  # the first verification not shown starts here
    return cut, rounds, len(starts), noun


def gantt_figure(
    events,
    title: str = "",
    max_time: float | None = None,
    *,
    window: tuple[float | None, float | None] | None = None,
    rounds: int | None = AUTO_ROUNDS,
    ax: "Axes | None" = None,
) -> "Figure":
    """Drafter, non-SI chain and target servers over time, from a discrete-event run's event log.

    Bars: prefill (yellow), drafting (sky blue), verification tasks (green), chain forwards
    (grey, non-SI's colour in every figure); hatched light grey bars were cancelled (their work
    wasted).  Tasks that waited for a server are drawn in a ``queue`` lane, one thin orange bar
    per task from its submission to its start (hatched when it was dropped unstarted at a
    rejection).  Pink lines mark rejected positions, the black line the last token.  The legend
    names only what is drawn.

    ``window=(start, end)`` (ms; either may be ``None``) shows that stretch of the run.
    Without a window, a run with more than ``rounds`` verifications (non-SI: forwards) is cut
    to its first ``rounds``, and the title says so; ``rounds=None`` always draws the whole run.
    ``max_time`` is the older spelling of ``window=(0, max_time)``.  ``ax``: draw into this
    ``Axes`` (the legend then goes on it).
    """
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D

    events = list(events)
    t_end = max((e["t"] for e in events), default=0.0)
    note = ""
    if window is None and max_time is not None:
        window = (0.0, max_time)
    if window is None and rounds is not None:
        auto = _auto_window(events, rounds)
        if auto is not None:
            window = (0.0, auto[0])
            note = (f"first {auto[1]} of {auto[2]} {auto[3]}: 0–{auto[0]:,.0f} ms of {t_end:,.0f} ms "
                    "(pass a window to see more)")
    lo, hi = (window if window is not None else (None, None))
    lo = 0.0 if lo is None else float(lo)
    hi = t_end if hi is None else float(hi)
    if window is not None and not note:
        note = f"window {lo:,.0f}–{hi:,.0f} ms of {t_end:,.0f} ms"
    if not hi > lo:
        from .errors import InvalidParameterError

        raise InvalidParameterError(f"the window must end after it starts, got {lo:g}..{hi:g} ms")

    def visible(t0, t1):
        return t1 >= lo and t0 <= hi

    bars = [b for b in _intervals(events) if visible(b[2], b[3])]
    waits = [w for w in _waits(events) if w[1] > w[0] and visible(w[0], w[1])]
    waits.sort()
    lanes = sorted({b[0] for b in bars}, key=_lane_key)
    row = {lane: float(i) for i, lane in enumerate(lanes)}
    slots, n_slots = _slots(waits)
    queue_h = min(1.0 + n_slots / 8.0, 3.0)  # the queue lane grows with its depth, up to three lanes
    if waits:
        row["queue"] = len(lanes) - 0.5 + queue_h / 2
        lanes.append("queue")
    bottom = len(row) - 0.5 + (queue_h - 1.0 if waits else 0.0)

    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(_PAPER_WIDTH, 0.4 * (bottom + 0.5) + 1.9), layout="constrained")
        ax = fig.subplots()
        own = True
    else:
        fig, own = ax.figure, False
    drawn_kinds, drawn_cancel = set(), False
    span = hi - lo
    for lane, kind, t0, t1, cancelled, pos in bars:
        colour = _CANCEL_COLOUR if cancelled else _KIND_COLOUR.get(kind, _WAIT_COLOUR)
        ax.broken_barh([(t0, max(t1 - t0, span * 1e-4))], (row[lane] - 0.38, 0.76), facecolors=colour,
                       edgecolor="white" if not cancelled else _CANCEL_EDGE, hatch="///" if cancelled else None,
                       linewidth=0.4, gid="cancelled" if cancelled else kind)
        if cancelled:
            drawn_cancel = True
        else:
            drawn_kinds.add(kind)
    dropped = False
    if waits:
        height = (queue_h - 0.16) / n_slots
        for (t0, t1, started), s in zip(waits, slots):
            y = row["queue"] - queue_h / 2 + 0.08 + s * height
            ax.broken_barh([(t0, t1 - t0)], (y + 0.15 * height, 0.7 * height), facecolors=_WAIT_COLOUR,
                           edgecolor=_WAIT_COLOUR if started else _WAIT_EDGE, linewidth=0.3, alpha=0.85,
                           hatch=None if started else "////")
            dropped |= not started
    rejected = done = False
    for e in events:
        if not lo <= e["t"] <= hi:
            continue
        if e["event"] == "reject":
            ax.axvline(e["t"], color=_REJECT_COLOUR, linewidth=0.8, alpha=0.8)
            rejected = True
        elif e["event"] == "done":
            ax.axvline(e["t"], color="black", linewidth=1.2)
            done = True
    ax.set_yticks([row[lane] for lane in lanes], lanes, fontsize=8)
    ax.set_ylim(bottom, -0.5)
    ax.set_xlim(lo, hi if window is not None else hi + 0.01 * max(span, 1.0))
    ax.set_xlabel("virtual time (ms)")
    ax.grid(axis="x", alpha=0.3)

    handles = [Patch(color=c, label=_KIND_LABEL[k]) for k, c in _KIND_COLOUR.items() if k in drawn_kinds]
    if drawn_cancel:
        handles.append(Patch(facecolor=_CANCEL_COLOUR, hatch="///", edgecolor=_CANCEL_EDGE, label="cancelled"))
    if waits:
        handles.append(Patch(color=_WAIT_COLOUR, label="waiting for a server"))
    if dropped:
        handles.append(Patch(facecolor=_WAIT_COLOUR, hatch="////", edgecolor=_WAIT_EDGE,
                             label="dropped while waiting"))
    if rejected:
        handles.append(Line2D([], [], color=_REJECT_COLOUR, linewidth=1, label="rejection"))
    if done:
        handles.append(Line2D([], [], color="black", linewidth=1.2, label="last token"))
    if own:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4) or 1, fontsize=8,
                   frameon=False)
    elif handles:
        ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.9)
    head = title or "discrete-event run"
    ax.set_title(f"{head}\n{note}" if note else head, fontsize=9)
    return fig


def save_figure(fig: "Figure", path: str | Path, dpi: int = 110) -> Path:
    """Render ``fig`` to PNG (or the format of ``path``'s suffix) and write it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())
