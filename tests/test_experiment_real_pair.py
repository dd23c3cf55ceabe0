"""experiments/real_pair on a tiny random-weight model: the pipeline runs and its predicted rounds are transformers' own."""

from __future__ import annotations

import json
import runpy
import sys

import pytest


def test_real_pair_pipeline_on_a_tiny_model(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    monkeypatch.setattr(sys, "argv", ["run.py", "--tiny", "--out", str(tmp_path), "--prompts", "2",
                                      "--tokens", "8,16", "--lookup", "2,4"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path("experiments/real_pair/run.py", run_name="__main__")
    assert done.value.code == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert [s["setting"] for s in res["summary"]] == ["prompt-lookup 2", "prompt-lookup 4"]
    # the rounds predicted from the greedy output are the rounds the instrumented generate() ran
    assert all(s["rounds_match"] for s in res["summary"])
    assert len(res["rows"]) == 2 * 2  # one validation prompt x two lengths x two settings
    assert res["fit_prompts"] == ["zen-0"]
