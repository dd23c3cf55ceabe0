"""The notebooks in docs/notebooks run top to bottom without an error, and answer with a figure first."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "docs" / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_shows_a_figure_first(path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
                            ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    # the question is answered with a figure within the first screen: the first code cell draws it
    assert any("image/png" in o.get("data", {}) for o in code[0].outputs)


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"lookahead_policies.ipynb", "speedup_bounds.ipynb", "dsi_design.ipynb",
                                           "real_pair.ipynb", "vocabulary.ipynb", "serving_load.ipynb", "trees_and_overlap.ipynb"}
