"""simspec vocab and the bridge from token-level verification to the timing engines."""

import json

import numpy as np
import pytest

from simspec import ConstantLatency, Scenario, compare, simulate
from simspec.cli import main
from simspec.sampling.bridge import TokenLevelAcceptance, vocabulary_latency
from simspec.sampling.setups import synthetic_pair


@pytest.mark.parametrize("algorithm", ["std", "union", "tli", "slem", "slrs", "rdk"])
def test_vocab_json_reports_acceptance_closed_form_and_distance(capsys, algorithm):
    argv = ["vocab", "--algorithm", algorithm, "--contexts", "8", "--samples", "4000", "--json", "--seed", "2"]
    if algorithm not in ("std",):
        argv += ["--overlap", "0.6", "--prune", "0.3"]
    assert main(argv) == 0
    obj = json.loads(capsys.readouterr().out)
    for key in ("acceptance", "acceptance_closed_form", "tv_to_target"):
        assert key in obj
    assert obj["tv_to_target"] < 1e-12  # the exact output law is the target's
    lo, hi = obj["acceptance_ci"]
    # the closed form lies within the empirical 95% interval widened by 3x (false alarm < 1e-6 per run)
    half = (hi - lo) / 2
    assert abs(obj["acceptance"] - obj["acceptance_closed_form"]) <= 3 * half + 1e-9
    assert obj["tv_to_target_empirical"] < 4 * obj["tv_sampling_noise"] + 0.01
    if algorithm == "slrs":
        assert obj["drafter_forwards_per_verification"] > 1  # SLRS pays for enumerating tokenizations


@pytest.mark.parametrize("argv, needle", [
    (["--algorithm", "std", "--overlap", "0.5"], "shared vocabulary"),
    (["--algorithm", "tli", "--overlap", "1.5"], "--overlap must be in [0, 1]"),
    (["--algorithm", "tli", "--temperature", "-1"], "--temperature must be >= 0"),
])
def test_vocab_bad_input(capsys, argv, needle):
    assert main(["vocab"] + argv) == 2
    assert needle in capsys.readouterr().err


def test_token_level_acceptance_drives_the_timing_engines():
    pair = synthetic_pair(overlap=0.8, seed=1, kernel=False)
    proc = TokenLevelAcceptance(pair, "tli")
    draw = proc.draw(np.random.default_rng(0), 120, 3)
    assert draw.accepted.shape == (3, 120) and {"top1", "entropy", "alpha"} <= set(draw.signals)
    # outcomes follow the exact per-position acceptance on average (5 standard errors)
    a = draw.accepted.ravel().astype(float)
    alpha = draw.signals["alpha"].ravel()
    assert abs(a.mean() - alpha.mean()) < 5 * np.sqrt(alpha.mean() * (1 - alpha.mean()) / a.size)
    drafter = vocabulary_latency(2.0, 0.05, len(pair.drafter.vocab))
    s = Scenario(ConstantLatency(30.0), drafter, proc, lookahead=3, tokens=60)
    assert compare(s, "montecarlo", replications=2, rng=0).dsi.latency_per_token_ms.mean < 30.0
    assert simulate(s, "dsi", replications=2, rng=0).latency_per_token_ms.mean < 30.0


def test_pruning_makes_the_drafter_faster():
    assert vocabulary_latency(2.0, 0.05, 8_000).tpot_ms < vocabulary_latency(2.0, 0.05, 32_000).tpot_ms
