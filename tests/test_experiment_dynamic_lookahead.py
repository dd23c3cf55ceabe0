"""experiments/dynamic_lookahead: facts its quick numbers must show (the regeneration test checks the numbers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simspec.io import read_numbers

REF = read_numbers(Path(__file__).resolve().parents[1] / "experiments" / "dynamic_lookahead" / "quick_reference.json")


def _rows(section):
    return [r for r in REF["records"] if r["section"] == section]


def test_the_oracle_bounds_every_si_policy_and_the_best_static_is_the_unit():
    si = _rows("si")
    for key in {(r["acceptance"], r["c"], r["burstiness"]) for r in si}:
        at = {r["policy"]: r["gain"] for r in si if (r["acceptance"], r["c"], r["burstiness"]) == key}
        assert at["best static"] == 1.0
        assert all(at["oracle"] >= g for g in at.values())


def test_dynamic_stop_rules_gain_more_on_bursty_acceptance():
    si = _rows("si")
    for policy in ("confidence tuned", "DISCO", "SpecDec++", "oracle"):
        iid = np.mean([r["gain"] for r in si if r["policy"] == policy and r["burstiness"] == 0])
        bursty = np.mean([r["gain"] for r in si if r["policy"] == policy and r["burstiness"] == 0.9])
        assert bursty > iid > 1.0, policy
    # DISCO's published shape: about 10% over the best static k
    disco = [r["gain"] for r in si if r["policy"] == "DISCO"]
    assert 1.05 < np.mean(disco) < 1.25


def test_the_mbpp_example_has_the_blog_s_shape():
    by = {r["policy"]: r for r in _rows("mbpp")}
    for name in ("static k=5", "oracle"):
        r = by[name]
        assert r["target_forwards"] == r["published_target_forwards"]  # the blog's target forwards, exactly
        assert abs(r["drafter_forwards"] - r["published_drafter_forwards"]) <= 2  # its draft forwards, within 2
