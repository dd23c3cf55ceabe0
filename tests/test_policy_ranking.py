"""rank_policies and `simspec lookahead`: every policy on common outcomes, the gain over the best static k."""

from __future__ import annotations

import json

import pytest

from simspec import IIDAcceptance, MarkovAcceptance, Scenario
from simspec.cli import main
from simspec.errors import InvalidParameterError
from simspec.policy_ranking import rank_policies
from simspec.signals import ConfidenceSignal
from simspec.traces import builtin_trace, builtin_trace_path


@pytest.fixture(scope="module")
def bursty():
    s = Scenario.from_ms(30.0, 3.0, MarkovAcceptance.from_mean(0.8, 0.9), tokens=150)
    return s, rank_policies(s, replications=60, rng=4)


def test_the_ranking_is_paired_and_ordered(bursty):
    _, r = bursty
    names = [row.policy for row in r.rows]
    assert len(names) == 8 and names[0] == "oracle"
    lat = [row.latency_per_token_ms.mean for row in r.rows]
    assert lat == sorted(lat)
    (static,) = [row for row in r.rows if row.policy.endswith("(best static)")]
    assert static.gain.mean == 1.0 and static.gain.low == static.gain.high == 1.0  # a policy against itself
    for row in r.rows:
        # the gain is the paired ratio of mean decode times: best static / this policy
        assert row.gain.mean == pytest.approx(static.latency_per_token_ms.mean / row.latency_per_token_ms.mean)
        assert row.gain.n == 60
    # bursty acceptance: every dynamic policy beats the best static k, and the oracle beats them all
    assert all(row.gain.low > 1.0 for row in r.rows if row is not static)
    assert r.scenario["best_static_k"] == int(static.policy.split("k=")[1].split()[0])
    assert any("no drafter signal" in n for n in r.notes)
    assert "gain vs best static" in str(r) and r.to_dict()["rows"][0]["policy"] == "oracle"


def test_a_process_with_signals_is_used_as_is_and_replays_count_traces():
    s = Scenario.from_ms(30.0, 3.0, ConfidenceSignal(IIDAcceptance(0.7)), tokens=80)
    r = rank_policies(s, replications=20, rng=1)
    assert not r.notes
    t = Scenario.from_ms(100.0, 58.0, builtin_trace("cpu-real-pair"), tokens=64)
    rt = rank_policies(t, replications=20, rng=1)
    assert 2 <= rt.rows[0].gain.n <= 8  # the recorded prompts picked (eight at most), not twenty replications
    assert any("same traces" in n for n in rt.notes)
    with pytest.raises(InvalidParameterError, match="replications"):
        rank_policies(s, replications=1)


def test_the_same_seed_gives_the_same_ranking(bursty):
    s, r = bursty
    again = rank_policies(s, replications=60, rng=4)
    assert again.to_dict() == r.to_dict()
    assert rank_policies(s, replications=60, rng=5).to_dict() != r.to_dict()


def test_cli_lookahead(capsys):
    argv = ["lookahead", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8", "--burstiness", "0.9",
            "--tokens", "150", "--reps", "60", "--seed", "4", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    s = Scenario.from_ms(30.0, 3.0, MarkovAcceptance.from_mean(0.8, 0.9), tokens=150)
    assert out["rows"] == rank_policies(s, replications=60, rng=4).to_records()
    assert main(["lookahead", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8", "--lookahead", "3"]) == 2
    assert "drop --lookahead" in capsys.readouterr().err
    assert main(["lookahead", "--target-ms", "100", "--drafter-ms", "58", "--acceptance-trace",
                 builtin_trace_path("cpu-real-pair"), "--tokens", "64", "--reps", "10"]) == 0
    assert "same traces" in capsys.readouterr().out


def test_train_learned_and_the_cli_policies(capsys):
    from simspec.learned_lookahead import DiscoLookahead, SpecDecPPLookahead
    from simspec.policy_ranking import train_learned, with_signal

    acc, note = with_signal(MarkovAcceptance.from_mean(0.8, 0.9))
    assert isinstance(acc, ConfidenceSignal) and "no drafter signal" in note
    assert with_signal(acc) == (acc, None)
    s = Scenario.from_ms(30.0, 3.0, acc, tokens=150)
    disco = train_learned(s, "disco", replications=50, rng=1)
    spec = train_learned(s, "specdec", replications=50, rng=1, k_max=8)
    assert isinstance(disco, DiscoLookahead) and isinstance(spec, SpecDecPPLookahead) and spec.k_max == 8
    assert train_learned(s, "disco", replications=50, rng=1) == disco  # seeded: the same training
    with pytest.raises(InvalidParameterError, match="no 'top1_prob' signal"):
        train_learned(Scenario.from_ms(30.0, 3.0, 0.8, tokens=50), "disco", replications=4)
    with pytest.raises(InvalidParameterError, match="kind must be"):
        train_learned(s, "oracle")
    # the command line trains on seed + 1 and says when it adds a signal
    assert main(["simulate", "--algorithm", "si", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8",
                 "--burstiness", "0.9", "--policy", "disco", "--tokens", "150", "--replications", "2", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["lookahead"] == train_learned(s, "disco", rng=1).name
    assert "note: no drafter signal" in out.err
