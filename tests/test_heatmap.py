"""Heatmaps: the paper's claims as tests, and the repo protocol's grid."""

import numpy as np

from simspec.deployment import PAPER_SERVERS
import pytest

from simspec import theory
from simspec.heatmap import heatmap, paper_heatmap, repo_heatmap
from simspec.plots import heatmap_figure


@pytest.fixture(scope="module")
def paper():
    return paper_heatmap()


def test_paper_grid_and_dsi_never_slower(paper):
    assert paper.c.size == 100 and paper.a.size == 101
    for name in ("dsi_vs_si", "dsi_vs_nonsi", "dsi_vs_baseline"):
        assert paper.speedup[name].min() >= 1.0 - 1e-12, name


def test_paper_up_to_1_6x_over_baseline(paper):
    # "(d) DSI is up to 1.6x faster than the baseline": closed forms give 1.5717 at the best cell
    assert paper.speedup["dsi_vs_baseline"].max() == pytest.approx(1.5717, abs=5e-4)


def test_paper_si_slower_exactly_where_a_below_c(paper):
    slower = paper.speedup["si_vs_nonsi"] < 1 - 1e-12
    assert np.array_equal(slower, paper.a[:, None] < paper.c[None, :])


def test_paper_si_column_is_the_best_lookahead(paper):
    i, j = 80, 9  # a = 0.8, c = 0.1
    k, lat = theory.best_si_lookahead(paper.a[i], paper.c[j], 200)
    assert paper.si_lookahead[i, j] == k and paper.speedup["si_vs_nonsi"][i, j] == pytest.approx(1 / lat)


def test_repo_protocol_grid_and_handicap():
    hm = repo_heatmap(rng=0)
    # the paper's 7 speculative servers plus the chain's: PAPER_SERVERS = 8 target instances
    valid = theory.dsi_servers_needed(hm.c[None, :], np.arange(1, 21)[:, None]) <= PAPER_SERVERS
    assert PAPER_SERVERS == 8 and valid.sum() * hm.a.size == 8463
    assert np.array_equal(valid, theory.dsi_servers_needed(hm.c[None, :], np.arange(1, 21)[:, None], chain=False) <= 7)
    assert hm.speedup["dsi_vs_baseline"].min() >= 1.0 - 1e-12
    # the repo's restricted SI produces DSI/SI near 3 (published: "up to 3.0")
    assert 2.8 < hm.speedup["dsi_vs_si"].max() <= 3.05
    # the exact DSI is never slower than the repo's own DSI model on the same outcomes
    assert np.all(hm.speedup["dsi_vs_si"] >= hm.extra["dsi_vs_si_repo_model"] - 1e-12)


def test_repo_protocol_reproducible_by_seed():
    a, b, c = repo_heatmap(rng=5, tokens=200), repo_heatmap(rng=5, tokens=200), repo_heatmap(rng=6, tokens=200)
    assert np.array_equal(a.speedup["dsi_vs_si"], b.speedup["dsi_vs_si"])
    assert not np.array_equal(a.speedup["dsi_vs_si"], c.speedup["dsi_vs_si"])


def test_unknown_protocol():
    from simspec import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'paper' or 'repo'"):
        heatmap("nature")


def test_write_keeps_the_csv_numeric_and_the_metadata_in_a_sidecar(tmp_path):
    import csv
    import json

    hm = repo_heatmap(rng=3, tokens=100)
    paths = hm.write(tmp_path, png=False, command="simspec heatmap --protocol repo --seed 3")
    assert [p.name for p in paths] == ["heatmap.csv", "heatmap.json"]
    with open(tmp_path / "heatmap.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["c", "a", "si_vs_nonsi", "dsi_vs_si", "dsi_vs_nonsi", "dsi_vs_baseline", "si_lookahead",
                       "dsi_lookahead", "dsi_servers", "dsi_vs_si_repo_model"]
    assert len(rows) == 1 + 21 * 21
    for row in rows[1:]:
        [float(x) for x in row]  # every cell is a number
    meta = json.loads((tmp_path / "heatmap.json").read_text())
    assert meta["protocol"] == "repo" and meta["dsi_model"] == hm.dsi_model
    assert meta["command"] == "simspec heatmap --protocol repo --seed 3"
    assert meta["parameters"]["rng"] == 3 and meta["parameters"]["tokens"] == 100
    assert meta["grid"]["c"] == [float(x) for x in hm.c] and meta["grid"]["cells"] == 441
    assert meta["columns"] == rows[0]
    import simspec

    assert meta["simspec_version"] == simspec.__version__
    assert not list(tmp_path.glob(".*.tmp"))


def test_metadata_names_the_python_call_by_default(paper):
    assert paper.metadata()["command"] == "simspec.heatmap.heatmap('paper', k_max=200)"


def test_paper_csv_is_small(paper, tmp_path):
    paper.write(tmp_path, png=False)
    assert (tmp_path / "heatmap.csv").stat().st_size < 700_000  # was 1.4 MB with a sentence in every row


def test_to_frame_has_one_row_per_cell(paper):
    pd = pytest.importorskip("pandas")
    frame = paper.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 100 * 101
    assert list(frame.columns) == paper.columns()
    row = frame[(frame.c == 0.1) & (frame.a == 0.8)].iloc[0]
    assert row.dsi_vs_baseline == pytest.approx(paper.speedup["dsi_vs_baseline"][80, 9])
    assert row.si_lookahead == paper.si_lookahead[80, 9]


def test_heatmap_figure_marks_a_point_and_draws_the_1x_line(paper):
    fig = heatmap_figure(paper, mark=(0.1, 0.8))
    axes = fig.axes[:4]  # the four panels, then their colour bars
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["(a) non-SI / SI", "(b) SI / DSI",
                                                              "(c) non-SI / DSI", "(d) min(SI, non-SI) / DSI"]
    texts = [t.get_text() for t in axes[3].texts]
    assert "1.45x" in texts  # the nearest cell's panel (d) speedup, beside the star
    assert any(t.get_text() == "1x" for t in axes[0].texts)  # the labelled 1x contour of panel (a)
    assert "never below 1x" in axes[3].get_title()
    assert "own colour scale" in fig._suptitle.get_text()


def test_heatmap_figure_draws_into_given_axes(paper):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    assert heatmap_figure(paper, panels=["dsi_vs_baseline"], ax=ax) is fig
    from simspec import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="one Axes per panel"):
        heatmap_figure(paper, ax=ax)
    with pytest.raises(InvalidParameterError, match="unknown panel"):
        heatmap_figure(paper, panels=["speed"])
