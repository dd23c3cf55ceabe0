"""The experiments' own figures follow simspec's figure style (``simspec.plots``), as the package's figures do.

Each experiment with a figure runs in quick mode with its figure on, and the figure it saves is checked:
at most 7 inches wide, no text under 7 pt, every axis naming its unit, and the colours of ``simspec.plots``
(an algorithm's colour, a policy's colour).
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    mod_name = f"_fig_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, ROOT / "experiments" / name / "run.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    return mod


def saved_figure(name: str, tmp_path, monkeypatch, *flags):
    """The figure the experiment's quick run saves (``simspec.plots.save_figure`` is where every one goes)."""
    import simspec.plots

    saved = {}
    real = simspec.plots.save_figure

    def keep(fig, path, *args, **kwargs):
        saved[Path(path).name] = fig
        return real(fig, path, *args, **kwargs)

    monkeypatch.setattr(simspec.plots, "save_figure", keep)
    assert _load(name).main(["--quick", "--out", str(tmp_path), *flags]) == 0
    assert len(saved) == 1, saved
    (file, fig), = saved.items()
    assert (tmp_path / file).read_bytes()[:4] == b"\x89PNG"
    return fig


def check_style(fig) -> None:
    from matplotlib.text import Text

    assert fig.get_size_inches()[0] <= 7.0 + 1e-9
    fig.savefig(io.BytesIO(), format="png", dpi=50)  # lays out the ticks and the legend
    small = {t.get_text(): t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text() and t.get_fontsize() < 7}
    assert not small, f"text under 7 pt: {small}"
    labels = [label for ax in fig.axes for label in (ax.get_xlabel(), ax.get_ylabel()) if label]
    assert labels
    for label in labels:
        assert re.search(r"\([^()]+\)$", label), f"{label!r} has no unit"


def _hex(colour) -> str:
    from matplotlib.colors import to_hex

    return to_hex(colour)


def test_dsi_servers_figure(tmp_path, monkeypatch):
    from simspec.plots import ALGORITHM_COLOURS

    fig = saved_figure("dsi_servers", tmp_path, monkeypatch, "--tokens", "40")
    check_style(fig)
    lines = {line.get_label(): _hex(line.get_color()) for line in fig.axes[0].get_lines()}
    assert lines["non-SI"] == ALGORITHM_COLOURS["nonsi"]
    assert lines["DSI, c = 0.05, best k"] == ALGORITHM_COLOURS["dsi"].lower()  # the cheapest drafter: the colour
    assert lines["SI, c = 0.05, best k"] == ALGORITHM_COLOURS["si"].lower()
    assert lines["DSI, c = 0.5, best k"] not in (ALGORITHM_COLOURS["dsi"].lower(), ALGORITHM_COLOURS["si"].lower())


def test_dynamic_lookahead_figure(tmp_path, monkeypatch):
    from simspec.plots import policy_colour

    fig = saved_figure("dynamic_lookahead", tmp_path, monkeypatch, "--no-real")
    check_style(fig)
    lines = {line.get_label(): _hex(line.get_color()) for line in fig.axes[0].get_lines() if
             not line.get_label().startswith("_")}
    assert lines["DISCO"] == _hex(policy_colour("disco"))
    assert lines["SpecDec++"] == _hex(policy_colour("specdec++"))
    assert lines["confidence 0.4"] == lines["confidence tuned"] == _hex(policy_colour("confidence"))
    assert lines["oracle"] == _hex(policy_colour("oracle"))


def test_rdk_pruning_figure(tmp_path, monkeypatch):
    from simspec.plots import VERIFIER_COLOURS

    fig = saved_figure("rdk_pruning", tmp_path, monkeypatch)
    check_style(fig)
    lines = {line.get_label(): _hex(line.get_color()) for line in fig.axes[0].get_lines()}
    assert lines["TLI"] == VERIFIER_COLOURS["tli"].lower()
    assert lines["RDK dense, validated tau"] == VERIFIER_COLOURS["rdk"].lower()


def test_tli_overlap_figure(tmp_path, monkeypatch):
    from simspec.plots import VERIFIER_COLOURS

    fig = saved_figure("tli_overlap", tmp_path, monkeypatch)
    check_style(fig)
    lines = {line.get_label(): _hex(line.get_color()) for line in fig.axes[0].get_lines()}
    assert {lines[k] for k in ("TLI", "union", "SLRS", "SLEM")} == {
        VERIFIER_COLOURS[v].lower() for v in ("tli", "union", "slrs", "slem")}
    assert lines["TLI"] == VERIFIER_COLOURS["tli"].lower()


def test_serving_load_figure(tmp_path, monkeypatch):
    from simspec.plots import ALGORITHM_COLOURS

    fig = saved_figure("serving_load", tmp_path, monkeypatch)
    check_style(fig)
    colours = [_hex(line.get_color()) for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert colours[0] == ALGORITHM_COLOURS["si"].lower()
