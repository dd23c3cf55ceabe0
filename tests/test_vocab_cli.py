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
    assert 0.0 <= lo <= obj["acceptance"] <= hi <= 1.0
    # same contexts on both sides, so only the sampling within contexts separates the empirical rate from the
    # mean closed form: its standard deviation is at most sqrt(1/4 / (contexts * samples)); 5 of them
    assert abs(obj["acceptance"] - obj["acceptance_closed_form"]) <= 5 * np.sqrt(0.25 / (8 * 4000))
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


# ---- the acceptance interval: Wilson over contexts, never past 0 or 1 ----------------------------------


@pytest.mark.parametrize("extra, mean, interval", [
    (["--overlap", "0.8", "--closeness", "1", "--seed", "0"], 0.975, (0.8712, 0.9956)),  # was "0.975 ± 0.049"
    (["--overlap", "0.8", "--closeness", "1", "--seed", "1"], 1.0, (0.9124, 1.0)),  # was "1" (no interval)
])
def test_vocab_temperature_zero_interval_stays_in_0_1(capsys, extra, mean, interval):
    """At temperature 0 each context accepts all or nothing; the interval over 40 contexts is Wilson's."""
    argv = ["vocab", "--algorithm", "tli", "--temperature", "0"] + extra
    assert main(argv + ["--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    lo, hi = obj["acceptance_ci"]
    assert obj["acceptance"] == mean
    assert (round(lo, 4), round(hi, 4)) == interval
    assert 0.0 <= lo <= mean <= hi <= 1.0
    assert main(argv) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "acceptance (empirical)" in x)
    assert f"95% interval {interval[0]:.4g} to {interval[1]:.4g}, Wilson, 40 contexts" in line
    assert "±" not in line


# ---- the verifier registry: one registration makes a CLI choice ------------------------------------


@pytest.fixture
def toy_verifier():
    """A toy verifier registered for one test: the drafter proposes the target's own law (acceptance 1)."""
    from simspec.sampling.verifiers import proposal_law, register_verifier, unregister_verifier

    def target_as_drafter(pair, p, q, context):
        return proposal_law("toy-oracle", p, q, p)

    register_verifier("toy-oracle", target_as_drafter, description="the target drafts for itself")
    try:
        yield "toy-oracle"
    finally:
        unregister_verifier("toy-oracle")


def test_registered_verifier_is_a_cli_choice_and_runs(capsys, toy_verifier):
    from simspec.cli import build_parser

    vocab = build_parser()._subparsers._group_actions[0].choices["vocab"]
    algorithm = next(a for a in vocab._actions if a.dest == "algorithm")
    assert toy_verifier in algorithm.choices
    assert "toy-oracle: the target drafts for itself" in " ".join(vocab.format_help().split())
    assert main(["vocab", "--algorithm", toy_verifier, "--overlap", "0.7", "--contexts", "5", "--samples", "500",
                 "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["algorithm"] == toy_verifier
    assert obj["acceptance"] == 1.0 and obj["acceptance_closed_form"] == 1.0 and obj["tv_to_target"] < 1e-12


def test_unregistered_verifier_is_not_a_choice(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["vocab", "--algorithm", "toy-oracle"])
    assert exit_.value.code == 2
    assert "invalid choice: 'toy-oracle'" in capsys.readouterr().err


def test_registry_lists_the_built_ins_in_order_and_rejects_bad_registrations():
    from simspec.errors import InvalidParameterError
    from simspec.sampling.verifiers import register_verifier, unregister_verifier, verifiers

    assert list(verifiers())[:6] == ["std", "union", "tli", "slem", "slrs", "rdk"]
    assert verifiers()["std"].shared_vocabulary and verifiers()["rdk"].kernel
    with pytest.raises(InvalidParameterError, match="'tli' is already registered; pick another name or pass replace="):
        register_verifier("tli", lambda pair, p, q, context: None)
    with pytest.raises(InvalidParameterError, match="non-empty word"):
        register_verifier("two words", lambda pair, p, q, context: None)
    with pytest.raises(InvalidParameterError, match="fn must be callable"):
        register_verifier("x", "not a function")
    with pytest.raises(InvalidParameterError, match="no verifier named 'nope'"):
        unregister_verifier("nope")
    with pytest.raises(TypeError):
        verifiers()["x"] = None  # a read-only view: registration goes through register_verifier
    pair = synthetic_pair(overlap=0.8, seed=1, kernel=False)
    with pytest.raises(InvalidParameterError, match=r"must be one of std, union, .*register_verifier adds one"):
        pair.step("nope", "ab")
