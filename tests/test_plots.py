"""Gantt charts: windows, queue waits, a legend of what is drawn, long runs cut to their start."""

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
