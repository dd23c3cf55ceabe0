"""Figures: Gantt charts (windows, queue waits, a legend of what is drawn, long runs cut to their start), and one
style in every figure (the algorithms' colours, units on the axes, readable at paper size, drawn into your axes)."""

import pytest

from simspec import InvalidParameterError, Scenario, simulate
from simspec.plots import AUTO_ROUNDS, gantt_figure


def _events(algorithm="dsi", **kw):
    s = Scenario.from_ms(30.0, 3.0, 0.8, **kw)
    return simulate(s, algorithm, replications=1, rng=3, trace=True).events


def _legend(fig):
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


@pytest.fixture(scope="module")
def queued():
    return _events(lookahead=1, servers=4, tokens=150)


def test_short_run_drawn_whole_with_its_queue(capsys):
    ev = _events(lookahead=2, servers=3, tokens=40)
    fig = gantt_figure(ev, title="DSI")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["drafter", "chain", "server 0", "server 1", "queue"]
    assert ax.get_title() == "DSI"  # no window, no note
    assert ax.get_xlim()[1] > max(e["t"] for e in ev)
    assert _legend(fig) == ["drafting", "verification", "chain forward", "cancelled", "waiting for a server",
                            "dropped while waiting", "rejection", "last token"]


def test_legend_names_only_what_is_drawn():
    ev = _events("si", lookahead=5, tokens=30)
    fig = gantt_figure(ev)
    assert _legend(fig) == ["drafting", "verification", "rejection", "last token"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["drafter", "server 0"]


def test_long_runs_are_cut_to_their_first_rounds_and_say_so(queued):
    n = sum(e["event"] == "verify_start" for e in queued)
    assert n > AUTO_ROUNDS
    ax = gantt_figure(queued).axes[0]
    cut = [e["t"] for e in queued if e["event"] == "verify_start"][AUTO_ROUNDS]
    assert ax.get_xlim() == (0.0, cut)
    assert f"first {AUTO_ROUNDS} of {n} verifications" in ax.get_title()
    whole = gantt_figure(queued, rounds=None).axes[0]
    assert whole.get_xlim()[1] > max(e["t"] for e in queued)
    nonsi = gantt_figure(_events("nonsi", tokens=100)).axes[0]
    assert f"first {AUTO_ROUNDS} of 100 forwards" in nonsi.get_title()


def test_window_crops_and_is_named(queued):
    fig = gantt_figure(queued, "w", window=(500, 900))
    ax = fig.axes[0]
    assert ax.get_xlim() == (500.0, 900.0) and "window 500–900 ms of" in ax.get_title()
    assert gantt_figure(queued, max_time=300).axes[0].get_xlim() == (0.0, 300.0)  # the older spelling
    open_end = gantt_figure(queued, window=(1000, None)).axes[0]
    assert open_end.get_xlim()[0] == 1000.0
    with pytest.raises(InvalidParameterError, match="end after it starts"):
        gantt_figure(queued, window=(900, 500))


def test_queue_waits_pair_submission_with_start_or_drop(queued):
    from simspec.plots import _waits

    waits = _waits(queued)
    starts = {e["task"]: e["t"] for e in queued if e["event"] == "verify_start"}
    submitted = {e["task"]: e["t"] for e in queued if e["event"] == "verify_queued"}
    assert len(waits) == len(submitted)
    assert sum(started for *_, started in waits) == len(set(submitted) & set(starts))
    assert all(t1 >= t0 for t0, t1, _ in waits)


def test_draws_into_a_given_axes(queued):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    assert gantt_figure(queued, ax=ax, window=(0, 200)) is fig
    assert ax.get_legend() is not None and not fig.legends


# ---- one style in every figure: the algorithms' colours, units on the axes, paper size, ax= -------------------

@pytest.fixture(scope="module")
def paper_hm():
    from simspec.heatmap import paper_heatmap

    return paper_heatmap()


@pytest.fixture(scope="module")
def planned():
    from simspec.plan import plan

    return plan(Scenario.from_ms(30.0, 3.0, 0.8), max_servers=6)


def _figures(paper_hm, planned, queued):
    from simspec.plots import heatmap_figure

    return {"heatmap": heatmap_figure(paper_hm, mark=(0.1, 0.8)), "plan": planned.figure(),
            "gantt": gantt_figure(queued, "DSI")}


def _hex(colour):
    from matplotlib.colors import to_hex

    return to_hex(colour)


def test_the_algorithms_have_their_colours_in_every_figure(paper_hm, planned, queued):
    from simspec.plots import ALGORITHM_COLOURS, heatmap_figure

    colour = {name: _hex(c) for name, c in ALGORITHM_COLOURS.items()}
    lines = {line.get_label(): _hex(line.get_color()) for line in planned.figure().axes[0].get_lines()}
    assert lines["non-SI"] == colour["nonsi"]
    assert lines[next(k for k in lines if k.startswith("SI (k="))] == colour["si"]
    assert lines["DSI (best k per N)"] == colour["dsi"]
    # each heatmap panel runs from the colour of the algorithm faster below 1x, through white, to the one above
    sides = {"si_vs_nonsi": ("nonsi", "si"), "dsi_vs_si": ("si", "dsi"), "dsi_vs_nonsi": ("nonsi", "dsi")}
    fig = heatmap_figure(paper_hm)
    for axis, (name, (low, high)) in zip(fig.axes, sides.items()):
        cmap = axis.collections[0].get_cmap()
        assert (_hex(cmap(0.0)), _hex(cmap(0.5)), _hex(cmap(1.0))) == (colour[low], "#ffffff", colour[high]), name
    assert _hex(fig.axes[3].collections[0].get_cmap()(1.0)) == colour["dsi"]
    # in a Gantt chart the chain's forwards are non-SI decoding, in non-SI's colour
    chain = [c for c in gantt_figure(queued).axes[0].collections if c.get_gid() == "chain"]
    assert chain and {_hex(c.get_facecolor()[0]) for c in chain} == {colour["nonsi"]}


def test_every_axis_names_its_unit(paper_hm, planned, queued):
    import re

    for name, fig in _figures(paper_hm, planned, queued).items():
        labels = [label for axis in fig.axes[:4] for label in (axis.get_xlabel(), axis.get_ylabel()) if label]
        assert labels, name
        for label in labels:
            assert re.search(r"\([^()]+\)$", label), f"{name}: {label!r} has no unit"


def test_figures_fit_a_paper_page_with_readable_text(paper_hm, planned, queued):
    import io

    from matplotlib.text import Text

    for name, fig in _figures(paper_hm, planned, queued).items():
        assert fig.get_size_inches()[0] <= 7.0 + 1e-9, name
        fig.savefig(io.BytesIO(), format="png", dpi=50)  # lays out the ticks and the legend
        sizes = {t.get_text(): t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text()}
        small = {text: size for text, size in sizes.items() if size < 7}
        assert not small, f"{name}: text under 7 pt {small}"


def test_figures_draw_into_your_axes_and_return_their_figure(paper_hm, planned):
    from matplotlib.figure import Figure

    from simspec.plots import heatmap_figure

    fig = Figure()
    ax = fig.subplots()
    assert heatmap_figure(paper_hm, panels=["dsi_vs_si"], ax=ax) is fig
    assert ax.get_xlabel().endswith("(ms/ms)") and ax.get_ylabel().endswith("(per draft token)")
    fig = Figure()
    pair = fig.subplots(1, 2)
    assert planned.figure(ax=pair) is fig and pair[1].get_lines() and fig._suptitle is None
    assert pair[1].get_ylabel() == "latency per token (ms)"
    with pytest.raises(InvalidParameterError, match="one Axes per panel"):
        planned.figure(ax=pair[0])
