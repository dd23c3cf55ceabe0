"""Scenario builders for drafters that are not separate models: the costs they charge, pinned."""

from __future__ import annotations

import numpy as np
import pytest

from simspec import AffineLatency, ConstantLatency, ScaledLatency, early_exit_scenario, prompt_lookup_scenario
from simspec.des import run_once
from simspec.drafters import LOOKUP_FORWARD_MS
from simspec.errors import InvalidParameterError


def test_prompt_lookup_charges_the_lookup_once_per_round():
    s = prompt_lookup_scenario(ConstantLatency(30.0), 0.5, lookup_ms=0.2, lookahead=3, tokens=8)
    rec = run_once(s, "si", np.ones((8,), dtype=bool), np.random.default_rng(0))
    # all accepted: rounds at 0 and 4, three drafts each, one verification each
    assert rec.verifications == 2 and rec.drafter_forwards == 6
    assert rec.decode_ms == pytest.approx(2 * 30.0 + 6 * LOOKUP_FORWARD_MS + 2 * 0.2, abs=1e-9)


def test_early_exit_drafts_at_a_share_of_the_target():
    target = AffineLatency(40.0, 4.0)
    s = early_exit_scenario(target, 0.6, exit_layer=3, num_layers=12, lookahead=2)
    assert isinstance(s.drafter, ScaledLatency)
    assert s.drafter.forward(1) == 10.0 and list(s.drafter.forward(np.array([1, 3]))) == [10.0, 12.0]
    assert s.c == 0.25
    with pytest.raises(InvalidParameterError, match="exit_layer=12 must be below"):
        early_exit_scenario(target, 0.6, exit_layer=12, num_layers=12)
