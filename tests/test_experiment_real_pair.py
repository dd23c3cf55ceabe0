"""experiments/real_pair on a tiny random-weight model: the pipeline runs and its predicted rounds are transformers' own."""

from __future__ import annotations

import json
import runpy
import sys

import pytest


def test_real_pair_pipeline_on_tiny_models(tmp_path, monkeypatch):
    """Two tiny models with different BPE tokenizers: universal assisted generation, as for the real pair."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    monkeypatch.setattr(sys, "argv", ["run.py", "--tiny", "--out", str(tmp_path), "--prompts", "2",
                                      "--tokens", "8,16", "--lookup", "2,4", "--ks", "1,3"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path("experiments/real_pair/run.py", run_name="__main__")
    assert done.value.code == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert [s["setting"] for s in res["summary"]] == ["prompt_lookup-k2", "prompt_lookup-k4", "assisted-k1-t0",
                                                      "assisted-k3-t0", "assisted-heuristic", "assisted-defaults"]
    # the predicted rounds (prompt lookup from the greedy output; the drafter's from client_rounds, the target
    # not run) are the rounds the instrumented generate() ran, drafter forward widths included
    assert all(s["rounds_match"] for s in res["summary"])
    assert len(res["rows"]) == 6 * 2  # one validation prompt x two lengths x six settings
    assert res["fit_prompts"] == ["zen-0"]
    assert set(res["fits"]) == {"prompt_lookup", "assisted"}
    assert res["assistant_defaults"]["num_assistant_tokens"] == 20
    assert "assisted-defaults" in (tmp_path / "summary.txt").read_text()
    assert set(res["in_loop_factors"]) == {"target", "drafter"} and all(v > 0 for v in res["in_loop_factors"].values())
    # the analysis again from the saved measurements and rounds (no model loaded): the same predictions
    again = tmp_path / "again"
    monkeypatch.setattr(sys, "argv", ["run.py", "--reuse", str(tmp_path / "results.json"), "--out", str(again)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path("experiments/real_pair/run.py", run_name="__main__")
    assert done.value.code == 0
    assert json.loads((again / "results.json").read_text())["summary"] == res["summary"]
