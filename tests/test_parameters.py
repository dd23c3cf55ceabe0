"""Latency models and scenarios: validation with named errors."""

import numpy as np
import pytest

from simspec import (
    AffineLatency,
    ConstantLatency,
    IIDAcceptance,
    InvalidParameterError,
    OracleLookahead,
    Scenario,
    SimspecError,
    StaticLookahead,
    UnsupportedScenarioError,
    compare,
)


def test_constant_and_affine_forward():
    assert ConstantLatency(30.0, 100.0).forward(5) == 30.0
    assert ConstantLatency(30.0, 100.0).forward(phase="prefill") == 100.0
    aff = AffineLatency(30.0, 0.5)
    assert np.allclose(aff.forward([1, 2, 6]), [30.0, 30.5, 32.5])
    with pytest.raises(InvalidParameterError, match="n_new"):
        aff.forward(0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ConstantLatency(-1.0), "tpot_ms must be a finite number >= 0"),
        (lambda: ConstantLatency(0.0), "tpot_ms must be > 0"),
        (lambda: ConstantLatency(float("inf")), "finite"),
        (lambda: ConstantLatency(1.0, ttft_ms=-2), "ttft_ms"),
        (lambda: AffineLatency(1.0, -0.1), "never faster"),
        (lambda: StaticLookahead(0), "lookahead must be an integer >= 1"),
        (lambda: StaticLookahead(2.5), "integer"),
        (lambda: Scenario.from_ms(30, 3, 0.8, lookahead=0), "lookahead"),
        (lambda: Scenario.from_ms(30, 3, 0.8, lookahead="fast"), "'best'"),
        (lambda: Scenario.from_ms(30, 3, 1.5), r"\[0, 1\]"),
        (lambda: Scenario.from_ms(30, 3, 0.8, servers=0), "servers"),
        (lambda: Scenario.from_ms(30, 3, 0.8, tokens=0), "tokens"),
        (lambda: Scenario(30.0, ConstantLatency(3), IIDAcceptance(0.5)), "latency model"),
        (lambda: Scenario(ConstantLatency(3), ConstantLatency(3), 0.5), "acceptance process"),
    ],
)
def test_bad_parameters_raise_named_errors(make, match):
    with pytest.raises(InvalidParameterError, match=match) as info:
        make()
    assert isinstance(info.value, SimspecError) and isinstance(info.value, ValueError)


def test_scenario_derived_quantities():
    s = Scenario(AffineLatency(20.0, 1.0), ConstantLatency(4.0), IIDAcceptance(0.6), lookahead=3)
    assert s.c == pytest.approx(0.2)
    assert s.verify_slope == pytest.approx(0.05)
    assert s.lookahead == StaticLookahead(3)
    assert s.describe()["lookahead"] == "static k=3"


def test_engines_refuse_what_they_cannot_model():
    s = Scenario.from_ms(30, 3, 0.8, lookahead=OracleLookahead())
    with pytest.raises(UnsupportedScenarioError, match="montecarlo"):
        compare(s, "theory")
    res = compare(s, "montecarlo", replications=4, rng=0, )  # a stop rule: SI and DSI run the oracle
    assert res.si.lookahead == res.dsi.lookahead == "oracle" and "discrete-event" in res.dsi.notes
    with pytest.raises(UnsupportedScenarioError, match="needs 11 target servers"):
        compare(Scenario.from_ms(30, 3, 0.8, lookahead=1, servers=4))
    with pytest.raises(InvalidParameterError, match="method"):
        compare(Scenario.from_ms(30, 3, 0.8), "exact")
    with pytest.raises(InvalidParameterError, match="replications"):
        compare(Scenario.from_ms(30, 3, 0.8), "montecarlo", replications=1)
