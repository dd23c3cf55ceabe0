"""CLI options around acceptance shapes and figures: --burstiness with --easy/--hard-acceptance,
--gantt-window, heatmap --mark, and where demo writes."""

import json
import tempfile

import pytest

from simspec.cli import main

MC = ["compare", "--target-ms", "30", "--drafter-ms", "3", "--method", "montecarlo", "--reps", "10",
      "--tokens", "200", "--json"]
SIM = ["simulate", "--algorithm", "dsi", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8",
       "--replications", "1", "--seed", "3"]


def run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("mean", ["0.05", "0.15", "0.97", "0.99"])
def test_burstiness_works_outside_the_old_range(capsys, mean):
    code, out, err = run(capsys, MC + ["--acceptance", mean, "--burstiness", "0.9"])
    assert code == 0, err
    assert json.loads(out)["scenario"]["acceptance_mean"] == pytest.approx(float(mean))


@pytest.mark.parametrize("mean", ["0", "1"])
def test_burstiness_at_a_deterministic_mean(capsys, mean):
    code, out, err = run(capsys, MC + ["--acceptance", mean, "--burstiness", "0.9"])
    assert code == 0, err
    assert json.loads(out)["scenario"]["acceptance_mean"] == float(mean)


def test_state_acceptance_flags_shape_the_chain(capsys):
    code, out, err = run(capsys, MC + ["--acceptance", "0.8", "--burstiness", "0.9", "--easy-acceptance", "0.99",
                                       "--hard-acceptance", "0.5"])
    assert code == 0, err
    assert "alpha_easy=0.99, alpha_hard=0.5" in json.loads(out)["scenario"]["acceptance"]


@pytest.mark.parametrize("extra, needle", [
    (["--acceptance", "0.97", "--burstiness", "0.9", "--easy-acceptance", "0.9"],
     "--acceptance 0.97 must lie between --hard-acceptance (0.2) and --easy-acceptance (0.9)"),
    (["--acceptance", "0.5", "--burstiness", "0.9", "--hard-acceptance", "1.5"],
     "--hard-acceptance must be a probability in [0, 1]"),
    (["--acceptance", "0.5", "--easy-acceptance", "0.9"], "add --burstiness B"),
    (["--acceptance", "0.5", "--burstiness", "1"], "--burstiness must be in [0, 1)"),
])
def test_burstiness_errors_name_a_flag_that_works(capsys, extra, needle):
    code, out, err = run(capsys, MC + extra)
    assert code == 2 and needle in err and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "widen" not in err


def test_gantt_window_draws_a_stretch_of_the_run(capsys, tmp_path, monkeypatch):
    import simspec.plots as plots

    seen = {}
    original = plots.gantt_figure

    def spy(events, title="", max_time=None, **kwargs):
        fig = original(events, title, max_time, **kwargs)
        seen["window"], seen["xlim"], seen["title"] = kwargs.get("window"), fig.axes[0].get_xlim(), fig.axes[0].get_title()
        return fig

    monkeypatch.setattr(plots, "gantt_figure", spy)
    png = tmp_path / "g.png"
    code, out, err = run(capsys, SIM + ["--servers", "4", "--lookahead", "1", "--tokens", "300", "--gantt", str(png),
                                        "--gantt-window", "500:900"])
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert seen["window"] == (500.0, 900.0) and seen["xlim"] == (500.0, 900.0)
    assert "window 500–900 ms of" in seen["title"]


@pytest.mark.parametrize("value, needle", [
    ("5:1", "0 <= START < END"), ("a:b", "START:END in ms"), ("1:2:3", "START:END in ms"),
])
def test_gantt_window_bad_input(capsys, tmp_path, value, needle):
    code, out, err = run(capsys, SIM + ["--gantt", str(tmp_path / "g.png"), "--gantt-window", value])
    assert code == 2 and needle in err


def test_gantt_window_needs_gantt(capsys):
    code, _, err = run(capsys, SIM + ["--gantt-window", "0:100"])
    assert code == 2 and "--gantt-window needs --gantt FILE" in err


def test_heatmap_mark(capsys, tmp_path, monkeypatch):
    import simspec.plots as plots

    marks = []
    original = plots.heatmap_figure
    monkeypatch.setattr(plots, "heatmap_figure", lambda hm, **kw: (marks.append(kw.get("mark")), original(hm, **kw))[1])
    code, out, err = run(capsys, ["heatmap", "--protocol", "repo", "--out", str(tmp_path), "--mark", "0.1,0.8"])
    assert code == 0, err
    assert marks == [(0.1, 0.8)]
    assert (tmp_path / "heatmap.png").exists()
    for bad in ("0.1", "x,0.8", "0.1,1.5", "0,0.5"):
        code, _, err = run(capsys, ["heatmap", "--protocol", "repo", "--out", str(tmp_path), "--mark", bad])
        assert code == 2 and "--mark" in err


def test_demo_writes_to_the_temporary_folder_by_default_and_says_where(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    code, out, err = run(capsys, ["demo", "--reps", "2"])
    assert code == 0, err
    where = tmp_path / "tmp" / "simspec-demo"
    assert f"wrote {where / 'heatmap.csv'}" in out and (where / "heatmap.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # nothing in the current folder
    meta = json.loads((where / "heatmap.json").read_text())
    assert meta["command"] == "simspec demo"
